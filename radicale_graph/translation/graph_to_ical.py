"""Graph events -> iCalendar resource (Graph ``event`` -> RFC 5545 VEVENT).

One resource per single event or series: the series master's VEVENT with RRULE and EXDATE
(from ``cancelledOccurrences``), plus one VEVENT with RECURRENCE-ID per exception
(``exceptionOccurrences`` or ``/instances`` with ``type`` ``exception``). Times are written in
the organizer's zone (``originalStartTimeZone``) as IANA TZIDs with their VTIMEZONE.
What the gateway kept for CalDAV clients (:mod:`.kept`) is applied last, so a client reads back
what it wrote while Graph's values win wherever they changed. The mapping is docs/mapping.md.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import icalendar

from . import extended, kept, lines
from .body import body_text
from .recurrence import first_occurrence, recurrence_to_rrule
from .timezones import (
    UTC,
    graph_wall_date,
    iana_from_graph,
    parse_graph_datetime,
    parse_graph_offset_datetime,
    zone,
)
from .values import (
    IMPORTANCE_TO_PRIORITY,
    ONLINE_LABELS,
    RESPONSE_TO_PARTSTAT,
    SENSITIVITY_TO_CLASS,
    SHOW_AS,
    SHOW_AS_TO_BUSYSTATUS,
    SHOW_AS_TRANSPARENT,
    TYPE_TO_ROLE,
    enum,
)

# The event properties the translation reads (the storage plugin $selects exactly these).
GRAPH_FIELDS = ("id", "subject", "body", "start", "end", "isAllDay", "location", "locations",
                "organizer", "attendees", "recurrence", "type", "seriesMasterId",
                "originalStartTimeZone", "originalEndTimeZone", "originalStart", "iCalUId",
                "changeKey", "createdDateTime", "lastModifiedDateTime", "sensitivity",
                "showAs", "importance", "categories", "isReminderOn",
                "reminderMinutesBeforeStart", "isCancelled", "isOrganizer",
                "responseRequested", "responseStatus", "cancelledOccurrences",
                "isOnlineMeeting", "onlineMeetingProvider", "onlineMeeting",
                "onlineMeetingUrl", "allowNewTimeProposals")
PRODID = "-//radicale-graph//CalDAV gateway to Microsoft Graph//EN"
# Radicale's item time ranges are POSIX seconds; open-ended series reach this bound.
TIMESTAMP_MAX = 253402300799  # 9999-12-31T23:59:59Z
# RFC 9073 STRUCTURED-DATA schema naming a Graph location in a VLOCATION.
LOCATION_SCHEMA = "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.location"
LOCATION_FIELDS = ("displayName", "locationEmailAddress", "address", "coordinates",
                   "locationUri", "locationType")


@dataclass(frozen=True)
class Resource:
    """A CalDAV resource built from Graph events.

    ``uid``: the client's UID if the gateway stored one, else Graph's ``iCalUId``.
    ``href``: the resource name the client used, or ``None`` for events made elsewhere.
    ``text``: the VCALENDAR text. ``time_range``: (start, end) POSIX seconds UTC covering
    every occurrence (end is an upper bound for open or long series).
    """

    uid: str
    href: str | None
    text: str
    time_range: tuple[int, int]


@dataclass(frozen=True)
class Context:
    """How one resource is rendered: its UID, the IANA zone of its times, room mailboxes
    (lower-case addresses) and the mailbox owner's address (or None)."""

    uid: str
    zone: str
    rooms: frozenset[str] = frozenset()
    owner: str | None = None


def series_zone(master: dict) -> str:
    """IANA zone a resource is written in: the organizer's ``originalStartTimeZone``, else the
    recurrence's zone (``tzone://Microsoft/Custom`` events), else UTC."""
    rng = (master.get("recurrence") or {}).get("range") or {}
    return (iana_from_graph(master.get("originalStartTimeZone"))
            or iana_from_graph(rng.get("recurrenceTimeZone"))
            or iana_from_graph((master.get("start") or {}).get("timeZone")) or "UTC")


def to_resource(master: dict, exceptions: list[dict] | tuple = (),
                rooms: frozenset[str] = frozenset(), owner: str | None = None) -> Resource:
    """Build the CalDAV resource for a Graph single event or series master.

    ``master``: Graph event JSON (``start``/``end`` in any zone; the gateway asks for UTC).
    ``exceptions``: Graph exception instances of the series (``type`` ``exception`` with
    ``originalStart``). ``rooms``: lower-case addresses of room mailboxes, whose attendee
    entries get ``CUTYPE=ROOM`` (Graph only says ``resource``). ``owner``: the mailbox's
    address; when the owner did not organize the event, their own ATTENDEE line carries
    ``responseStatus.response`` as PARTSTAT (Graph tracks the owner's reply there).
    Raises ``ValueError``/``KeyError`` for events it cannot read.
    """
    found = extended.read(master)
    data = kept.decode(found.get(extended.KEPT_PROPERTY))
    uid = found.get(extended.UID_PROPERTY) or master.get("iCalUId") or master["id"]
    ctx = Context(uid=str(uid), zone=series_zone(master), rooms=frozenset(rooms),
                  owner=owner.lower() if owner else None)
    vevents = []
    items, start, end = derive(master, ctx)
    items = kept.apply(items, kept.entry(data, None), master)
    vevents.append(items)
    low, high = start, end
    if master.get("recurrence"):
        high = _series_end(master["recurrence"], start, end, ctx.zone)
    for exception in sorted(exceptions, key=lambda e: e.get("originalStart") or ""):
        key = occurrence_key_of(exception, master, ctx.zone)
        own = kept.decode(extended.read(exception).get(extended.KEPT_PROPERTY))
        if not kept.entry(data, key) and not own and redundant(exception, master):
            continue
        ex_items, ostart, oend = derive(exception, ctx, master)
        ex_items = kept.apply(ex_items, kept.entry(data, key) or kept.entry(own, None),
                              exception)
        vevents.append(ex_items)
        low, high = min(low, ostart), max(high, oend)
    text = calendar_text(vevents, data, low, high)
    return Resource(uid=str(uid), href=found.get(extended.HREF_PROPERTY), text=text,
                    time_range=(int(low.timestamp()),
                                int(min(high.timestamp(), TIMESTAMP_MAX))))


def occurrence_key_of(exception: dict, master: dict, zone_name: str) -> str:
    """The occurrence key (see ``ical_to_graph.occurrence_key``) of a Graph exception."""
    from .ical_to_graph import occurrence_key

    original = parse_graph_offset_datetime(exception["originalStart"])
    return occurrence_key(original, zone_name, bool(master.get("isAllDay")))


# Occurrence values an exception can change (api/event-update.md's writable properties).
OCCURRENCE_FIELDS = ("subject", "body", "location", "locations", "attendees", "sensitivity",
                     "showAs", "importance", "categories", "isReminderOn",
                     "reminderMinutesBeforeStart", "isCancelled", "responseRequested",
                     "isAllDay")


def redundant(exception: dict, master: dict) -> bool:
    """True when a Graph exception holds exactly what its occurrence would (Graph keeps an
    occurrence an exception once it was changed, even when changed back): RFC 5545 needs no
    override for it."""
    original = parse_graph_offset_datetime(exception["originalStart"])
    try:
        start = parse_graph_datetime(exception["start"])
        length = parse_graph_datetime(exception["end"]) - start
        master_length = parse_graph_datetime(master["end"]) - parse_graph_datetime(
            master["start"])
    except (KeyError, ValueError):
        return False
    if master.get("isAllDay"):
        if graph_wall_date(exception["start"]) != original.date() or \
                graph_wall_date(exception["end"]) - graph_wall_date(exception["start"]) != \
                graph_wall_date(master["end"]) - graph_wall_date(master["start"]):
            return False
    elif start != original or length != master_length:
        return False
    for name in OCCURRENCE_FIELDS:
        if name in exception and name in master and kept.canonical_field(
                name, exception) != kept.canonical_field(name, master):
            return False
    return True


def calendar_text(vevents: list[list[tuple[str, str]]], data: dict, low: dt.datetime,
                  high: dt.datetime) -> str:
    """The VCALENDAR text for rendered VEVENT items, with a VTIMEZONE for every TZID used
    (IANA zones generated from tzdata, a client's custom zones from what was kept)."""
    used: set[str] = set()
    for items in vevents:
        for _, text in items:
            used |= lines.tzids(text)
    first = low.year - 1
    last = max(2038, min(high.year, 9998) + 1) if high.year < 9000 else max(2038, low.year + 30)
    zones = []
    custom = data.get("tz") or {}
    for tzid in sorted(used):
        if tzid in custom:
            zones.append(custom[tzid])
        else:
            text = lines.vtimezone_text(tzid, first, last)
            if text:
                zones.append(text)
    head = "".join(lines.fold(text) for text in data.get("cal") or [])
    body = "".join(zones) + "".join(lines.vevent_text([t for _, t in items])
                                    for items in vevents)
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\n{head}{body}"
            "END:VCALENDAR\r\n")


def _series_end(recurrence: dict, start: dt.datetime, end: dt.datetime,
                zone_name: str) -> dt.datetime:
    rng = recurrence.get("range") or {}
    if rng.get("type") == "endDate" and rng.get("endDate"):
        last = dt.datetime.combine(dt.date.fromisoformat(str(rng["endDate"])[:10]),
                                   dt.time(23, 59, 59)).replace(tzinfo=zone(zone_name))
        return last + (end - start) + dt.timedelta(days=1)
    if rng.get("type") == "numbered":
        pattern = recurrence.get("pattern") or {}
        interval = int(pattern.get("interval") or 1)
        count = int(rng.get("numberOfOccurrences") or 1)
        unit = {"daily": 1, "weekly": 7, "absoluteMonthly": 31, "relativeMonthly": 31,
                "absoluteYearly": 366, "relativeYearly": 366}.get(pattern.get("type"), 366)
        span = dt.timedelta(days=unit * interval * count + 7)
        if span < dt.timedelta(days=365 * 5000):
            return end + span
    return dt.datetime.max.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------
# Derived lines: what Graph's values say, item by item


def times(event: dict, ctx: Context, master: dict | None = None):
    """(DTSTART value, DTEND value, start instant, end instant) of an event as written: dates
    for all-day events, aware datetimes in ``ctx.zone`` otherwise. A series master starts at
    its first occurrence."""
    all_day = bool(event.get("isAllDay"))
    tz = zone(ctx.zone)
    if all_day:
        start_value = graph_wall_date(event["start"])
        end_value = graph_wall_date(event["end"])
        if end_value <= start_value:
            end_value = start_value + dt.timedelta(days=1)
    else:
        start_value = parse_graph_datetime(event["start"]).astimezone(tz)
        end_value = parse_graph_datetime(event["end"]).astimezone(tz)
    if master is None and event.get("recurrence"):
        first = first_occurrence(event["recurrence"], start_value)
        if first != start_value:
            if all_day:
                end_value = first + (end_value - start_value)
            else:
                wall = first.replace(tzinfo=None) + (end_value.replace(tzinfo=None)
                                                     - start_value.replace(tzinfo=None))
                end_value = wall.replace(tzinfo=tz)
                first = first.replace(tzinfo=None).replace(tzinfo=tz)
            start_value = first
    if all_day:
        start_at = dt.datetime.combine(start_value, dt.time(), tzinfo=tz)
        end_at = dt.datetime.combine(end_value, dt.time(), tzinfo=tz)
    else:
        start_at, end_at = start_value, end_value
    return start_value, end_value, start_at.astimezone(UTC), end_at.astimezone(UTC)


def derive(event: dict, ctx: Context, master: dict | None = None):
    """The VEVENT items Graph's values give for ``event`` (a single event, series master or,
    with ``master``, an exception), and its (start, end) instants (UTC)."""
    items: list[tuple[str, str]] = []

    def add(name: str, value, params: dict | None = None, group: str | None = None) -> None:
        items.append((group or lines.group_of(name), lines.line(name, value, params)))

    add("UID", ctx.uid)
    stamp = event.get("lastModifiedDateTime") or event.get("createdDateTime")
    add("DTSTAMP", parse_graph_offset_datetime(stamp) if stamp
        else dt.datetime(1970, 1, 1, tzinfo=UTC))
    if stamp:
        add("LAST-MODIFIED", parse_graph_offset_datetime(stamp))
    if event.get("createdDateTime"):
        add("CREATED", parse_graph_offset_datetime(event["createdDateTime"]))
    start_value, end_value, start_at, end_at = times(event, ctx, master)
    add("DTSTART", start_value)
    add("DTEND", end_value)
    if master is not None:
        original = parse_graph_offset_datetime(event["originalStart"])
        if master.get("isAllDay"):
            add("RECURRENCE-ID", original.astimezone(zone(ctx.zone)).date())
        else:
            add("RECURRENCE-ID", original.astimezone(zone(ctx.zone)))
    if event.get("subject"):
        add("SUMMARY", event["subject"])
    _body(event, add)
    _location(event, items, add)
    _people(event, ctx, add)
    sensitivity = enum(event.get("sensitivity"), SENSITIVITY_TO_CLASS, "normal")
    if sensitivity != "normal":
        add("CLASS", SENSITIVITY_TO_CLASS[sensitivity])
    show_as = enum(event.get("showAs"), SHOW_AS, "busy")
    add("TRANSP", "TRANSPARENT" if show_as in SHOW_AS_TRANSPARENT else "OPAQUE")
    if show_as not in ("free", "busy"):
        add("X-MICROSOFT-CDO-BUSYSTATUS", SHOW_AS_TO_BUSYSTATUS[show_as])
    importance = enum(event.get("importance"), IMPORTANCE_TO_PRIORITY, "normal")
    if importance != "normal":
        add("PRIORITY", IMPORTANCE_TO_PRIORITY[importance])
    if event.get("categories"):
        add("CATEGORIES", list(event["categories"]))
    if event.get("isCancelled"):
        add("STATUS", "CANCELLED")
    if event.get("allowNewTimeProposals") is False:
        add("X-MICROSOFT-DISALLOW-COUNTER", "TRUE")
    _online(event, add)
    if master is None and event.get("recurrence"):
        add("RRULE", recurrence_to_rrule(event["recurrence"], start_value))
        for text in event.get("cancelledOccurrences") or []:
            day = dt.date.fromisoformat(str(text).rsplit(".", 1)[-1][:10])
            add("EXDATE", _occurrence_value(day, start_value))
    if event.get("isReminderOn"):
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", "Reminder")
        minutes = int(event.get("reminderMinutesBeforeStart") or 0)
        alarm.add("TRIGGER", -dt.timedelta(minutes=minutes))
        items.append(("VALARM", lines.component_text(alarm)))
    return items, start_at, end_at


def _occurrence_value(day: dt.date, dtstart):
    if isinstance(dtstart, dt.datetime):
        return dt.datetime.combine(day, dtstart.replace(tzinfo=None).time()).replace(
            tzinfo=dtstart.tzinfo)
    return day


def _body(event: dict, add) -> None:
    body = event.get("body") or {}
    text = body_text(body)
    if text:
        add("DESCRIPTION", text)
    if str(body.get("contentType") or "").lower() == "html" and body.get("content"):
        add("X-ALT-DESC", icalendar.vText(str(body["content"])), {"FMTTYPE": "text/html"})


def graph_locations(event: dict) -> list[dict]:
    """The event's locations with their writable fields (``locations``, else ``location``)."""
    found = event.get("locations")
    if not found:
        found = [event["location"]] if (event.get("location") or {}).get("displayName") else []
    out = []
    for item in found or []:
        entry = {k: item[k] for k in LOCATION_FIELDS if item.get(k) not in (None, "", {})}
        if entry.get("locationType", "default").lower() == "default":
            entry.pop("locationType", None)
        for inner in ("address", "coordinates"):
            if isinstance(entry.get(inner), dict):
                entry[inner] = {k: v for k, v in entry[inner].items()
                                if v not in (None, "") and not k.startswith("@")}
                if not entry[inner]:
                    del entry[inner]
        if entry:
            out.append(entry)
    return out


def _location(event: dict, items: list, add) -> None:
    name = (event.get("location") or {}).get("displayName")
    if name:
        add("LOCATION", name)
    found = graph_locations(event)
    if not found or (len(found) == 1 and set(found[0]) <= {"displayName"}):
        return
    for number, entry in enumerate(found, 1):
        component = icalendar.cal.Component()
        component.name = "VLOCATION"
        component.add("UID", f"location-{number}")
        if entry.get("displayName"):
            component.add("NAME", entry["displayName"])
        component.add("STRUCTURED-DATA", json.dumps(entry, separators=(",", ":"),
                                                     sort_keys=True),
                      parameters={"VALUE": "TEXT", "FMTTYPE": "application/json",
                                  "SCHEMA": LOCATION_SCHEMA})
        items.append(("LOCATION", lines.component_text(component)))


def _people(event: dict, ctx: Context, add) -> None:
    attendees = list(event.get("attendees") or [])
    organizer = ((event.get("organizer") or {}).get("emailAddress")) or {}
    organizer_address = str(organizer.get("address") or "").lower()
    owner_attends = bool(ctx.owner) and event.get("isOrganizer") is False and \
        organizer_address != ctx.owner
    if organizer.get("address") and (attendees or event.get("isOrganizer") is False):
        add("ORGANIZER", _cal_address(organizer))
    requested = event.get("responseRequested", True) is not False
    listed = False
    for attendee in attendees:
        email = attendee.get("emailAddress") or {}
        address = str(email.get("address") or "").lower()
        response = ((attendee.get("status") or {}).get("response")) or "none"
        if owner_attends and address == ctx.owner:
            listed = True
            response = (event.get("responseStatus") or {}).get("response") or "none"
        mine = owner_attends and address == ctx.owner
        add("ATTENDEE", _attendee(attendee, response, requested, ctx.rooms),
            group="OWNER" if mine else "ATTENDEE:" + address)
    if owner_attends and not listed:
        response = (event.get("responseStatus") or {}).get("response") or "none"
        owner = {"emailAddress": {"address": ctx.owner}, "type": "required"}
        add("ATTENDEE", _attendee(owner, response, requested, ctx.rooms), group="OWNER")


def _online(event: dict, add) -> None:
    provider = event.get("onlineMeetingProvider")
    if event.get("isOnlineMeeting") and provider and provider != "unknown":
        add("X-RADICALE-GRAPH-ONLINE-MEETING", provider)
    join = ((event.get("onlineMeeting") or {}).get("joinUrl")) or event.get("onlineMeetingUrl")
    if join:
        label = ONLINE_LABELS.get(str(provider), "Online meeting")
        add("CONFERENCE", icalendar.vUri(join), {"VALUE": "URI", "FEATURE": "AUDIO,VIDEO",
                                                 "LABEL": label}, group="CONFERENCE")


def _cal_address(email: dict) -> icalendar.vCalAddress:
    value = icalendar.vCalAddress(f"mailto:{email['address']}")
    if email.get("name") and str(email["name"]).lower() != str(email["address"]).lower():
        value.params["CN"] = email["name"]
    return value


def _attendee(attendee: dict, response: str, requested: bool,
              rooms: frozenset[str]) -> icalendar.vCalAddress:
    email = attendee.get("emailAddress") or {}
    value = _cal_address(email)
    kind = enum(attendee.get("type"), TYPE_TO_ROLE, "required")
    if kind == "resource":
        address = str(email.get("address", "")).lower()
        value.params["CUTYPE"] = "ROOM" if address in rooms else "RESOURCE"
    value.params["ROLE"] = TYPE_TO_ROLE[kind]
    value.params["PARTSTAT"] = RESPONSE_TO_PARTSTAT.get(
        enum(response, RESPONSE_TO_PARTSTAT, "none"), "NEEDS-ACTION")
    if requested and kind != "resource":
        value.params["RSVP"] = "TRUE"
    return value
