"""iCalendar resource -> Graph request bodies (RFC 5545 VEVENT -> Graph ``event``).

The mapping is listed in docs/mapping.md. A CalDAV resource holds one series: a master VEVENT
(or a single event) and its RECURRENCE-ID overrides. Graph cannot create a series with
exceptions in one call (notes: "No single call creates a series with exceptions"), so the
result is a plan: the master body, the occurrences to cancel (EXDATE, and RECURRENCE-ID
overrides with STATUS:CANCELLED) and the bodies to PATCH onto instances (overrides). What
Graph has no field for is kept for CalDAV clients (:mod:`.kept`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import icalendar

from . import extended, kept, lines
from .errors import SUPPORTED_COMPONENT, SUPPORTED_DATA, UnsupportedObject
from .events import EventParts, event_parts
from .occurrences import occurrence_key
from .recurrence import check_same_occurrences, dateutil_rule, rrule_to_recurrence
from .timezones import iana_from_graph

__all__ = ["EventPlan", "check_against", "event_plan", "occurrence_key", "parse"]
UNSUPPORTED_COMPONENTS = ("VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY", "AVAILABLE")


@dataclass
class EventPlan:
    """What to write to Graph for one CalDAV resource.

    ``master``: body for POST (new) or PATCH (update) of the single event or series master,
    including the extended properties that keep the client's UID, href and what Graph cannot
    hold; ``None`` when the resource holds only overrides (Apple stores invitations so): then
    each override body carries those extended properties itself.
    ``cancelled``: occurrence keys (see :func:`occurrence_key`) of the occurrences to cancel
    (the storage DELETEs those instances; Graph then lists them in the master's
    ``cancelledOccurrences``, resources/event.md): EXDATEs (RFC 5545 3.8.5.1) and
    RECURRENCE-ID overrides with STATUS:CANCELLED (3.8.4.4, 3.8.1.11), whose VEVENT is kept
    verbatim (:func:`.kept.cancelled_entry`) so the client reads it back as written.
    ``overrides``: occurrence key -> PATCH body for that instance (a RECURRENCE-ID override).
    ``zone``: IANA zone of the series (``"UTC"`` for UTC times; floating times are pinned to
    the default zone). ``owner_partstat``: the PARTSTAT the mailbox owner gives themself in an
    ATTENDEE line of someone else's meeting (None otherwise); the owner's own entry is then
    left out of every body (Graph takes it from accept/decline/tentativelyAccept).
    ``organizer``: the ORGANIZER's address (lower case) or None. ``status_cancelled``:
    STATUS:CANCELLED, which Graph cannot be told by PATCH (see :func:`check_against`).
    """

    uid: str
    master: dict | None
    zone: str
    all_day: bool
    cancelled: list[str] = field(default_factory=list)
    overrides: dict[str, dict] = field(default_factory=dict)
    owner_partstat: str | None = None
    organizer: str | None = None
    status_cancelled: bool = False

    @property
    def is_series(self) -> bool:
        """True for a recurring series, or an override-only resource (its series exists)."""
        return self.master is None or "recurrence" in self.master


def parse(text: str) -> icalendar.Calendar:
    """Parse a CalDAV resource. Raises :class:`UnsupportedObject` if it is not iCalendar."""
    try:
        return icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UnsupportedObject("iCalendar data", f"it does not parse: {exc}",
                                "valid-calendar-data") from None


def event_plan(text: str, href: str, default_zone: str = "UTC",
               owner: str | None = None, acting: str | None = None) -> EventPlan:
    """Plan the Graph writes for one CalDAV calendar object resource (RFC 4791 section 4.1).

    ``text`` is the resource (one VCALENDAR with VEVENTs sharing one UID); ``href`` is the
    resource name the client used; ``default_zone`` (IANA) is used for floating times unless
    the calendar names X-WR-TIMEZONE; ``owner`` is the mailbox's address, if known;
    ``acting`` the address of someone who writes on the owner's behalf (a delegate, or a sharee
    with write access): an ORGANIZER naming them is the owner's, since Graph makes the mailbox
    owner the organizer of a meeting a delegate creates
    (concepts/outlook-create-event-in-shared-delegated-calendar.md, step 2).
    Raises :class:`UnsupportedObject` naming the construct for anything Graph cannot hold
    without changing meaning (see docs/mapping.md, "Refused").
    """
    calendar = parse(text)
    if str(calendar.get("CALSCALE", "GREGORIAN")).upper() != "GREGORIAN":
        raise UnsupportedObject(f"CALSCALE:{calendar['CALSCALE']}",
                                "Graph calendars are Gregorian", SUPPORTED_DATA)
    events = []
    for component in calendar.subcomponents:
        if component.name in UNSUPPORTED_COMPONENTS:
            raise UnsupportedObject(component.name, "this calendar holds events (VEVENT) only",
                                    SUPPORTED_COMPONENT)
        if component.name == "VEVENT":
            events.append(component)
    if not events:
        raise UnsupportedObject("VCALENDAR without VEVENT", "there is no event to store",
                                SUPPORTED_COMPONENT)
    uid = str(events[0].get("UID", "")).strip()
    if not uid:
        raise UnsupportedObject("VEVENT without UID", "RFC 5545 requires a UID")
    if any(str(e.get("UID", "")).strip() != uid for e in events):
        raise UnsupportedObject("VEVENTs with different UIDs",
                                "a calendar object resource holds one UID (RFC 4791 4.1)")
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    overrides = [e for e in events if "RECURRENCE-ID" in e]
    if len(masters) > 1:
        raise UnsupportedObject("several VEVENTs without RECURRENCE-ID",
                                "a resource holds one event or one series")
    floating = _floating_zone(calendar, default_zone)
    owner = owner.lower() if owner else None
    if owner and acting and acting.lower() != owner:
        _organizer_for(events, acting.lower(), owner)
    data: dict = {"cal": _calendar_lines(calendar)}
    if masters:
        plan = _plan_with_master(masters[0], overrides, uid, floating, owner, data)
    else:
        plan = _plan_overrides_only(overrides, uid, floating, owner, data)
    _custom_zones(calendar, data)
    value = kept.encode(data)
    if plan.master is not None:
        plan.master["singleValueExtendedProperties"] = extended.values(uid, href, value)
    else:
        for body in plan.overrides.values():
            body["singleValueExtendedProperties"] = extended.values(uid, href, value)
    return plan


def check_against(plan: EventPlan, existing: dict | None) -> None:
    """Refuse what a plan cannot do to the Graph event ``existing`` (``None`` = creating).

    Graph makes the mailbox owner the organizer of every event it creates and sends the
    attendees invitations (api/user-post-events.md), and ``isCancelled`` cannot be written
    (api/event-update.md lists the writable properties). So: creating a meeting organized by
    someone else, changing the organizer, and setting or clearing STATUS:CANCELLED are refused.
    Raises :class:`UnsupportedObject`.
    """
    attendees = bool(plan.master and plan.master.get("attendees")) or any(
        body.get("attendees") for body in plan.overrides.values())
    if existing is None:
        if plan.master is None:
            raise UnsupportedObject("RECURRENCE-ID override without its series",
                                    "the series is not in this calendar")
        if plan.owner_partstat is not None:
            raise _foreign(plan.organizer or "")
        if plan.status_cancelled:
            raise UnsupportedObject("STATUS:CANCELLED", "Graph creates no cancelled events; "
                                    "a meeting is cancelled by its organizer in Outlook")
        return
    organizer = (((existing.get("organizer") or {}).get("emailAddress") or {})
                 .get("address") or "").lower()
    if plan.organizer and organizer and attendees and plan.organizer != organizer:
        raise UnsupportedObject(f"ORGANIZER {plan.organizer}",
                                f"Graph's organizer is {organizer} and cannot be changed")
    if plan.status_cancelled != bool(existing.get("isCancelled")):
        raise UnsupportedObject("STATUS:CANCELLED" if plan.status_cancelled else
                                "removal of STATUS:CANCELLED",
                                "Graph's isCancelled cannot be written; the organizer cancels "
                                "a meeting in Outlook")


def _foreign(organizer: str) -> UnsupportedObject:
    return UnsupportedObject(f"ORGANIZER {organizer}", "Graph makes the mailbox owner the "
                             "organizer of every event it creates and invites the attendees; "
                             "meetings organized by others arrive through Exchange")


# ------------------------------------------------------------------------------------------


def _floating_zone(calendar, default_zone: str) -> str:
    wr = str(calendar.get("X-WR-TIMEZONE", "") or "").strip()
    return iana_from_graph(wr) or default_zone


def _calendar_lines(calendar) -> list[str]:
    out = []
    for text in lines.component_lines_without_children(calendar):
        name, _, _ = lines.parts(text)
        if name not in ("VERSION", "PRODID"):
            out.append(text)
    return out


def _custom_zones(calendar, data: dict) -> None:
    """Keep the client's VTIMEZONE for every TZID a kept line uses that no zone database
    knows (Outlook's and Apple's custom names)."""
    used: set[str] = set()
    for part in [data.get("m") or {}] + list((data.get("o") or {}).values()):
        for text in (part.get("x") or []) + (part.get("c") or []) + (part.get("d") or []):
            used |= lines.tzids(text)
        for _, texts in (part.get("s") or {}).values():
            for text in texts:
                used |= lines.tzids(text)
    custom = {}
    for component in calendar.walk("VTIMEZONE"):
        tzid = str(component.get("TZID", ""))
        if tzid in used and iana_from_graph(tzid) is None:
            custom[tzid] = lines.component_text(component)
    if custom:
        data["tz"] = custom


def _organizer_for(events, acting: str, owner: str) -> None:
    """Make ``owner`` the ORGANIZER of ``events`` (parsed VEVENTs) where ``acting`` is."""
    for event in events:
        organizer = event.get("ORGANIZER")
        if organizer is not None and lines.address_of(organizer) == acting:
            event["ORGANIZER"] = icalendar.vCalAddress(f"mailto:{owner}")


def _plan_with_master(master, overrides, uid: str, floating: str, owner: str | None,
                      data: dict) -> EventPlan:
    for name, reason in (("RDATE", "Graph series recur by pattern only"),
                         ("EXRULE", "Graph cannot exclude occurrences by rule")):
        if master.get(name) is not None:
            raise UnsupportedObject(name, reason)
    rules = master.get("RRULE")
    if isinstance(rules, list):
        if len(rules) > 1:
            raise UnsupportedObject("several RRULEs", "Graph holds one recurrence pattern")
        rules = rules[0]
    parts = event_parts(master, floating, owner)
    recurrence = None
    walls: list[dt.datetime] = []
    rule: dict = {}
    if rules is not None:
        rule = {str(k).upper(): v for k, v in dict(rules).items()}
        recurrence = rrule_to_recurrence(rule, parts.start, parts.iana or "UTC", "UTC",
                                         tz=parts.tz)
        walls = check_same_occurrences(rule, recurrence, parts.start, parts.tz)
    elif overrides:
        raise UnsupportedObject("RECURRENCE-ID or EXDATE on a non-recurring event",
                                "there is no series to apply it to")
    elif master.get("EXDATE") is not None and _exdate_names_start(master, parts):
        raise UnsupportedObject("EXDATE of the only occurrence of a non-recurring event",
                                "Graph holds no event without an occurrence")
    parts.choose_zone(walls)
    if recurrence is not None:
        recurrence["range"]["recurrenceTimeZone"] = parts.windows
    plan = EventPlan(uid=uid, master=None, zone=parts.series_zone, all_day=parts.all_day,
                     organizer=parts.organizer, owner_partstat=parts.owner_partstat,
                     status_cancelled=parts.cancelled)
    body = parts.body()
    if recurrence is not None:
        body["recurrence"] = recurrence
        plan.cancelled, cancelled_dates = _exdates(master, parts, rule, walls)
    else:
        cancelled_dates = []
    plan.master = body
    read = [_override(override, parts, floating, owner) for override in overrides]
    seen: set[str] = set()
    for key, _, _ in read:
        if key in seen:
            raise UnsupportedObject("two overrides of one occurrence",
                                    f"RECURRENCE-ID {key} appears twice")
        seen.add(key)
    # A STATUS:CANCELLED override cancels its occurrence (RFC 5545 3.8.1.11): Graph holds
    # that as a cancelled occurrence (resources/event.md, cancelledOccurrences), as for an
    # EXDATE; the client's VEVENT is kept verbatim so it reads back as written.
    exdates = set(plan.cancelled)
    for key, other, original in read:
        if other.cancelled and key not in exdates:
            plan.cancelled.append(key)
            cancelled_dates.append(parts.local_date(original))
    neighbours = _Neighbours(rule, parts, plan.cancelled) if recurrence is not None else None
    for key, other, original in read:
        if neighbours is not None:
            if not neighbours.is_slot(original):
                raise UnsupportedObject(f"RECURRENCE-ID {key} that is not an occurrence",
                                        "Graph holds exceptions of occurrences of the "
                                        "pattern only")
            if not other.cancelled:
                neighbours.check_move(original, other.start)
        if other.cancelled:
            data.setdefault("o", {})[key] = kept.cancelled_entry(
                lines.property_items(other.vevent), other.span())
            continue
        if key in exdates:
            raise UnsupportedObject(f"RECURRENCE-ID {key} of an EXDATE occurrence",
                                    "the occurrence is both excluded and overridden")
        plan.overrides[key] = other.body()
        data.setdefault("o", {})[key] = other.kept_entry(
            plan.overrides[key], original=key, series=parts)
    shown = [key for key, other, _ in read if other.cancelled]
    data["m"] = parts.kept_entry(body, cancelled_dates=cancelled_dates, shown=shown)
    return plan


def _plan_overrides_only(overrides, uid: str, floating: str, owner: str | None,
                         data: dict) -> EventPlan:
    first = event_parts(overrides[0], floating, owner, override=True)
    first.choose_zone([])
    plan = EventPlan(uid=uid, master=None, zone=first.series_zone, all_day=first.all_day,
                     organizer=first.organizer, owner_partstat=first.owner_partstat)
    for override in overrides:
        key, other, _ = _override(override, first, floating, owner)
        if other.cancelled:
            raise UnsupportedObject("STATUS:CANCELLED in a RECURRENCE-ID override without "
                                    "its series", "a cancelled occurrence is held on its "
                                    "series master, which this resource does not carry")
        plan.overrides[key] = other.body()
        data.setdefault("o", {})[key] = other.kept_entry(plan.overrides[key], original=key,
                                                         series=first)
        if other.owner_partstat is not None:
            plan.owner_partstat = other.owner_partstat
    return plan


def _exdates(master, parts: EventParts, rule: dict, walls) -> tuple[list[str], list[str]]:
    """Occurrence keys of the EXDATEs that name occurrences of the series (others have no
    effect in RFC 5545 and are only kept as text), and their dates in the series zone."""
    raw = master.get("EXDATE")
    if raw is None:
        return [], []
    keys, dates = [], []
    for group in raw if isinstance(raw, list) else [raw]:
        for value in group.dts:
            for when in _exdate_occurrences(rule, parts, value.dt):
                key = occurrence_key(when, parts.series_zone, parts.all_day)
                if key not in keys:
                    keys.append(key)
                    dates.append(parts.local_date(when))
    return keys, dates


def _exdate_occurrences(rule: dict, parts: EventParts, when) -> list:
    """The occurrences an EXDATE value excludes: the one it names, or for a DATE in a timed
    series every occurrence on that date (as recurring-ical-events reads it)."""
    expand = dateutil_rule(rule, parts.wall(parts.start), _until_wall(rule, parts))
    if isinstance(when, dt.datetime) or parts.all_day:
        if isinstance(when, dt.datetime) and when.tzinfo is None:
            when = parts.aware(when)
        wall = parts.wall(when)
        return [when] if expand.between(wall, wall, inc=True) else []
    day = dt.datetime.combine(when, dt.time())
    return [parts.aware(w) for w in expand.between(day, day + dt.timedelta(days=1))]


def _until_wall(rule: dict, parts: EventParts):
    if not rule.get("UNTIL"):
        return None
    value = rule["UNTIL"][0]
    if isinstance(value, dt.datetime):
        return parts.wall(value)
    return dt.datetime.combine(value, dt.time(23, 59, 59))


class _Neighbours:
    """Original occurrence slots of a series, to refuse overrides Graph would refuse."""

    def __init__(self, rule: dict, parts: EventParts, cancelled: list[str]) -> None:
        self.rule = dateutil_rule(rule, parts.wall(parts.start), _until_wall(rule, parts))
        self.parts = parts
        self.cancelled = set(cancelled)

    def is_slot(self, when) -> bool:
        wall = self.parts.wall(when)
        return bool(self.rule.between(wall, wall, inc=True))

    def check_move(self, original, new_start) -> None:
        """api/event-update.md: an occurrence cannot be moved to or before the day of the
        previous occurrence, nor to or after the day of the next one."""
        wall = self.parts.wall(original)
        day = self.parts.wall(new_start).date()
        before = self._live(wall, -1)
        after = self._live(wall, +1)
        if (before is not None and day <= before.date()) or (
                after is not None and day >= after.date()):
            raise UnsupportedObject("RECURRENCE-ID override moved onto another occurrence's "
                                    "day", "Outlook refuses moving an occurrence to or past "
                                    "the day of an adjacent occurrence "
                                    "(ErrorOccurrenceCrossingBoundary)")

    def _live(self, wall, direction):
        current = wall
        for _ in range(400):
            current = (self.rule.before(current) if direction < 0 else self.rule.after(current))
            if current is None:
                return None
            key = occurrence_key(self.parts.aware(current), self.parts.series_zone,
                                 self.parts.all_day)
            if key not in self.cancelled:
                return current
        return None


def _exdate_names_start(master, parts: EventParts) -> bool:
    """Whether an EXDATE of a non-recurring VEVENT names its DTSTART (RFC 5545 3.8.5.1: the
    recurrence set is DTSTART alone, so the event would have no occurrence; a DATE names
    the start's day). Any other EXDATE has no effect and is only kept as text."""
    start = parts.wall(parts.start)
    raw = master.get("EXDATE")
    for group in raw if isinstance(raw, list) else [raw]:
        for value in group.dts:
            when = value.dt
            if isinstance(when, dt.datetime):
                if parts.wall(when if when.tzinfo else parts.aware(when)) == start:
                    return True
            elif when == start.date():
                return True
    return False


def _exdate_values(vevent) -> set:
    """The instants (UTC) or dates an EXDATE property of ``vevent`` lists."""
    raw = vevent.get("EXDATE")
    values = set()
    for group in (raw if isinstance(raw, list) else [raw] if raw is not None else []):
        for value in group.dts:
            when = value.dt
            if isinstance(when, dt.datetime) and when.tzinfo is not None:
                when = when.astimezone(dt.UTC)
            values.add(when)
    return values


def _override(override, series: EventParts, floating: str, owner: str | None):
    """One RECURRENCE-ID override of ``series`` (RFC 5545 3.8.4.4): ``(occurrence key,
    EventParts, original start)``; the original start is aware (floating read in the
    series' zone) or a date. Raises :class:`UnsupportedObject` for RANGE=THISANDFUTURE and
    for recurrence properties inside the override (a repeat of the master's EXDATEs aside)."""
    prop = override["RECURRENCE-ID"]
    if str(prop.params.get("RANGE", "")).upper() == "THISANDFUTURE":
        raise UnsupportedObject("RECURRENCE-ID;RANGE=THISANDFUTURE",
                                "Graph's exceptions change one occurrence each")
    for name in ("RRULE", "RDATE", "EXDATE", "EXRULE"):
        if override.get(name) is None:
            continue
        if name == "EXDATE" and _exdate_values(override) <= _exdate_values(series.vevent):
            continue  # ical4j (DAVx5) repeats the master's EXDATEs in overrides: no meaning
        raise UnsupportedObject(f"{name} in a RECURRENCE-ID override",
                                "an override is one occurrence")
    original = override.decoded("RECURRENCE-ID")
    if isinstance(original, dt.datetime) and original.tzinfo is None:
        original = original.replace(tzinfo=series.tz)
    key = occurrence_key(original, series.series_zone, series.all_day)
    other = event_parts(override, floating, owner, override=True)
    other.choose_zone([])
    return key, other, original
