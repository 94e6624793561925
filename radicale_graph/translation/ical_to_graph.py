"""iCalendar resource -> Graph request bodies (RFC 5545 VEVENT -> Graph ``event``).

The mapping is listed in docs/mapping.md. A CalDAV resource holds one series: a master VEVENT
(or a single event) and its RECURRENCE-ID overrides. Graph cannot create a series with
exceptions in one call (notes: "No single call creates a series with exceptions"), so the
result is a plan: the master body, the occurrences to cancel (EXDATE) and the bodies to PATCH
onto instances (overrides).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import icalendar

from . import extended
from .errors import SUPPORTED_COMPONENT, UnsupportedObject
from .recurrence import rrule_to_recurrence
from .timezones import UTC, graph_datetime, tzinfo_name

ROLE_TO_TYPE = {"REQ-PARTICIPANT": "required", "CHAIR": "required",
                "OPT-PARTICIPANT": "optional", "NON-PARTICIPANT": "optional"}
PARTSTAT_TO_RESPONSE = {"NEEDS-ACTION": "notResponded", "ACCEPTED": "accepted",
                        "DECLINED": "declined", "TENTATIVE": "tentativelyAccepted",
                        "DELEGATED": "notResponded"}
CLASS_TO_SENSITIVITY = {"PUBLIC": "normal", "PRIVATE": "private",
                        "CONFIDENTIAL": "confidential"}


@dataclass
class EventPlan:
    """What to write to Graph for one CalDAV resource.

    ``master``: body for POST (new) or PATCH (update) of the single event or series master,
    including the extended properties that keep the client's UID and href.
    ``cancelled``: occurrence keys (see :func:`occurrence_key`) of EXDATEs.
    ``overrides``: occurrence key -> PATCH body for that instance (a RECURRENCE-ID override).
    ``zone``: IANA zone of the series (``"UTC"`` for UTC or floating times).
    """

    uid: str
    master: dict
    zone: str
    all_day: bool
    cancelled: list[str] = field(default_factory=list)
    overrides: dict[str, dict] = field(default_factory=dict)

    @property
    def is_series(self) -> bool:
        return "recurrence" in self.master


def occurrence_key(value: dt.datetime | dt.date, zone_name: str, all_day: bool) -> str:
    """Stable key of one occurrence: ``YYYY-MM-DD`` for all-day series, else its original
    start as a UTC instant ``YYYY-MM-DDTHH:MM:SSZ``. ``value`` is a RECURRENCE-ID/EXDATE value
    (aware, floating = in ``zone_name``, or a date) or Graph's ``originalStart`` (UTC)."""
    from .timezones import zone

    if all_day:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(zone(zone_name))
            return value.date().isoformat()
        return value.isoformat()
    if not isinstance(value, dt.datetime):
        raise UnsupportedObject("RECURRENCE-ID or EXDATE with VALUE=DATE",
                                "the series has timed occurrences")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(zone_name))
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> icalendar.Calendar:
    """Parse a CalDAV resource. Raises :class:`UnsupportedObject` if it is not iCalendar."""
    try:
        return icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise UnsupportedObject("iCalendar data", f"it does not parse: {exc}",
                                "valid-calendar-data") from None


def event_plan(text: str, href: str, default_zone: str = "UTC") -> EventPlan:
    """Plan the Graph writes for one CalDAV calendar object resource (RFC 4791 section 4.1).

    ``text`` is the resource (one VCALENDAR with VEVENTs sharing one UID); ``href`` is the
    resource name the client used; ``default_zone`` (IANA) is used for floating times.
    Raises :class:`UnsupportedObject` naming the construct for anything Graph cannot hold
    without changing meaning (VTODO, VJOURNAL, RDATE, EXRULE, several RRULEs, unsupported RRULE
    parts, overrides of a non-recurring event).
    """
    calendar = parse(text)
    events = []
    for component in calendar.subcomponents:
        if component.name in ("VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY"):
            raise UnsupportedObject(component.name,
                                    "this calendar holds events (VEVENT) only",
                                    SUPPORTED_COMPONENT)
        if component.name == "VEVENT":
            events.append(component)
    if not events:
        raise UnsupportedObject("VCALENDAR without VEVENT", "there is no event to store",
                                SUPPORTED_COMPONENT)
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    overrides = [e for e in events if "RECURRENCE-ID" in e]
    uid = str(events[0].get("UID", "")).strip()
    if not uid:
        raise UnsupportedObject("VEVENT without UID", "RFC 5545 requires a UID")
    if any(str(e.get("UID", "")).strip() != uid for e in events):
        raise UnsupportedObject("VEVENTs with different UIDs",
                                "a calendar object resource holds one UID (RFC 4791 4.1)")
    if len(masters) > 1:
        raise UnsupportedObject("several VEVENTs without RECURRENCE-ID",
                                "a resource holds one event or one series")
    if not masters:
        raise UnsupportedObject("RECURRENCE-ID override without its series",
                                "the series master is not in the resource")
    master = masters[0]
    body, zone_name, all_day, start = _event_body(master, default_zone)
    if master.get("RDATE") is not None:
        raise UnsupportedObject("RDATE", "Graph series recur by pattern only")
    if master.get("EXRULE") is not None:
        raise UnsupportedObject("EXRULE", "Graph cannot exclude occurrences by rule")
    rrules = master.get("RRULE")
    if isinstance(rrules, list):
        if len(rrules) > 1:
            raise UnsupportedObject("several RRULEs", "Graph holds one recurrence pattern")
        rrules = rrules[0]
    plan = EventPlan(uid=uid, master=body, zone=zone_name, all_day=all_day)
    if rrules is not None:
        body["recurrence"] = rrule_to_recurrence(dict(rrules), start, zone_name)
        plan.cancelled = _exdates(master, zone_name, all_day)
    elif overrides or master.get("EXDATE") is not None:
        raise UnsupportedObject("RECURRENCE-ID or EXDATE on a non-recurring event",
                                "there is no series to apply it to")
    for override in overrides:
        key = occurrence_key(override.decoded("RECURRENCE-ID"), zone_name, all_day)
        override_body, _, _, _ = _event_body(override, zone_name)
        plan.overrides[key] = override_body
    body["singleValueExtendedProperties"] = extended.values(uid, href)
    return plan


def _exdates(master, zone_name: str, all_day: bool) -> list[str]:
    raw = master.get("EXDATE")
    if raw is None:
        return []
    groups = raw if isinstance(raw, list) else [raw]
    keys = []
    for group in groups:
        for value in group.dts:
            key = occurrence_key(value.dt, zone_name, all_day)
            if key not in keys:
                keys.append(key)
    return keys


def _event_body(event, default_zone: str) -> tuple[dict, str, bool, dt.date | dt.datetime]:
    """Graph body for one VEVENT's own properties; returns (body, zone, all_day, start)."""
    if "DTSTART" not in event:
        raise UnsupportedObject("VEVENT without DTSTART",
                                "Graph events need a start (RFC 4791 4.1 requires it too)")
    start = event.decoded("DTSTART")
    if "DTEND" in event:
        end = event.decoded("DTEND")
    elif "DURATION" in event:
        end = start + event.decoded("DURATION")
    elif isinstance(start, dt.datetime):
        end = start
    else:
        end = start + dt.timedelta(days=1)
    all_day = not isinstance(start, dt.datetime)
    body: dict = {}
    if all_day:
        if isinstance(end, dt.datetime):
            raise UnsupportedObject("DTSTART as DATE with DTEND as DATE-TIME",
                                    "start and end must both be dates")
        if end <= start:
            end = start + dt.timedelta(days=1)
        zone_name = "UTC"
        body["isAllDay"] = True
        body["start"] = {"dateTime": f"{start.isoformat()}T00:00:00", "timeZone": "UTC"}
        body["end"] = {"dateTime": f"{end.isoformat()}T00:00:00", "timeZone": "UTC"}
    else:
        if not isinstance(end, dt.datetime):
            raise UnsupportedObject("DTSTART as DATE-TIME with DTEND as DATE",
                                    "start and end must both be date-times")
        try:
            zone_name = tzinfo_name(start.tzinfo) or default_zone
            end_zone = tzinfo_name(end.tzinfo) or zone_name
        except ValueError as exc:
            raise UnsupportedObject("VTIMEZONE", str(exc)) from None
        from .timezones import zone

        if start.tzinfo is None:
            start = start.replace(tzinfo=zone(zone_name))
        if end.tzinfo is None:
            end = end.replace(tzinfo=zone(end_zone))
        if end < start:
            raise UnsupportedObject("DTEND before DTSTART", "an event cannot end before it starts")
        body["isAllDay"] = False
        body["start"] = graph_datetime(start, zone_name)
        body["end"] = graph_datetime(end, end_zone)
    body["subject"] = str(event.get("SUMMARY", ""))
    description = event.get("DESCRIPTION")
    body["body"] = {"contentType": "text", "content": str(description or "")}
    location = event.get("LOCATION")
    body["location"] = {"displayName": str(location or "")}
    organizer = event.get("ORGANIZER")
    if organizer is not None:
        body["organizer"] = {"emailAddress": _email(organizer)}
    attendees = event.get("ATTENDEE")
    if attendees is not None:
        attendees = attendees if isinstance(attendees, list) else [attendees]
        body["attendees"] = [_attendee(a) for a in attendees]
    else:
        body["attendees"] = []
    klass = str(event.get("CLASS", "PUBLIC")).upper()
    body["sensitivity"] = CLASS_TO_SENSITIVITY.get(klass, "private")
    body["showAs"] = "free" if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT" \
        else "busy"
    categories = event.get("CATEGORIES")
    if categories is not None:
        groups = categories if isinstance(categories, list) else [categories]
        body["categories"] = [str(c) for g in groups for c in g.cats]
    body.update(_reminder(event))
    return body, zone_name, all_day, start


def _address(value) -> str:
    text = str(value)
    return text[7:] if text.lower().startswith("mailto:") else text


def _email(prop) -> dict:
    result = {"address": _address(prop)}
    if prop.params.get("CN"):
        result["name"] = str(prop.params["CN"])
    return result


def _attendee(prop) -> dict:
    params = prop.params
    cutype = str(params.get("CUTYPE", "INDIVIDUAL")).upper()
    role = str(params.get("ROLE", "REQ-PARTICIPANT")).upper()
    attendee_type = "resource" if cutype in ("ROOM", "RESOURCE") else \
        ROLE_TO_TYPE.get(role, "required")
    result: dict = {"emailAddress": _email(prop), "type": attendee_type}
    partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    result["status"] = {"response": PARTSTAT_TO_RESPONSE.get(partstat, "none")}
    return result


def _reminder(event) -> dict:
    for alarm in event.walk("VALARM"):
        trigger = alarm.get("TRIGGER")
        if trigger is None:
            continue
        value = alarm.decoded("TRIGGER")
        related = str(trigger.params.get("RELATED", "START")).upper()
        if isinstance(value, dt.timedelta) and related == "START" and value <= dt.timedelta(0):
            minutes = int(-value.total_seconds() // 60)
            return {"isReminderOn": True, "reminderMinutesBeforeStart": minutes}
    return {"isReminderOn": False}
