"""Graph events -> iCalendar resource (Graph ``event`` -> RFC 5545 VEVENT).

One resource per single event or series: the series master's VEVENT with RRULE and EXDATE
(from ``cancelledOccurrences``), plus one VEVENT with RECURRENCE-ID per exception
(``exceptionOccurrences`` or ``/instances`` with ``type`` ``exception``). Times are written in
the organizer's zone (``originalStartTimeZone``) as IANA TZIDs with their VTIMEZONE.
The mapping is listed in docs/mapping.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import icalendar

from . import extended
from .recurrence import recurrence_to_rrule
from .timezones import (
    UTC,
    iana_from_graph,
    parse_graph_datetime,
    parse_graph_offset_datetime,
    zone,
)

RESPONSE_TO_PARTSTAT = {"none": "NEEDS-ACTION", "notResponded": "NEEDS-ACTION",
                        "accepted": "ACCEPTED", "declined": "DECLINED",
                        "tentativelyAccepted": "TENTATIVE", "organizer": "ACCEPTED"}
TYPE_TO_ROLE = {"required": "REQ-PARTICIPANT", "optional": "OPT-PARTICIPANT",
                "resource": "NON-PARTICIPANT"}
SENSITIVITY_TO_CLASS = {"private": "PRIVATE", "confidential": "CONFIDENTIAL",
                        "personal": "PRIVATE"}
# The event properties the translation reads (the storage plugin $selects exactly these).
GRAPH_FIELDS = ("id", "subject", "body", "start", "end", "isAllDay", "location", "organizer",
                "attendees", "recurrence", "type", "seriesMasterId", "originalStartTimeZone",
                "originalEndTimeZone", "originalStart", "iCalUId", "changeKey",
                "createdDateTime", "lastModifiedDateTime", "sensitivity", "showAs",
                "importance", "categories", "isReminderOn", "reminderMinutesBeforeStart",
                "isCancelled", "isOrganizer", "responseRequested", "responseStatus",
                "cancelledOccurrences")
PRODID = "-//radicale-graph//CalDAV gateway to Microsoft Graph//EN"
# Radicale's item time ranges are POSIX seconds; open-ended series reach this bound.
TIMESTAMP_MAX = 253402300799  # 9999-12-31T23:59:59Z


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


def to_resource(master: dict, exceptions: list[dict] | tuple = (),
                rooms: frozenset[str] = frozenset()) -> Resource:
    """Build the CalDAV resource for a Graph single event or series master.

    ``master``: Graph event JSON (``start``/``end`` in any zone; the gateway asks for UTC).
    ``exceptions``: Graph exception instances of the series (``type`` ``exception`` with
    ``originalStart``). ``rooms``: lower-case addresses of room mailboxes, whose attendee
    entries get ``CUTYPE=ROOM`` (Graph only says ``resource``).
    """
    kept = extended.read(master)
    uid = kept.get(extended.UID_PROPERTY) or master.get("iCalUId") or master["id"]
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    zone_name = iana_from_graph(master.get("originalStartTimeZone")) or "UTC"
    vevent, start, end = _vevent(master, uid, zone_name, rooms)
    low, high = start, end
    all_day = bool(master.get("isAllDay"))
    recurrence = master.get("recurrence")
    if recurrence:
        vevent.add("RRULE", recurrence_to_rrule(recurrence, vevent.decoded("DTSTART")))
        for text in master.get("cancelledOccurrences") or []:
            day = dt.date.fromisoformat(text.rsplit(".", 1)[-1][:10])
            vevent.add("EXDATE", _occurrence_value(day, vevent.decoded("DTSTART")))
        high = _series_end(recurrence, start, end, zone_name)
    calendar.add_component(vevent)
    for exception in sorted(exceptions, key=lambda e: e.get("originalStart") or ""):
        override, ostart, oend = _vevent(exception, uid, zone_name, rooms)
        original = parse_graph_offset_datetime(exception["originalStart"])
        if all_day:
            recurrence_id = original.astimezone(zone(zone_name)).date()
        else:
            recurrence_id = original.astimezone(zone(zone_name))
        override.add("RECURRENCE-ID", recurrence_id)
        calendar.add_component(override)
        low, high = min(low, ostart), max(high, oend)
    calendar.add_missing_timezones()
    return Resource(uid=str(uid), href=kept.get(extended.HREF_PROPERTY),
                    text=calendar.to_ical().decode(),
                    time_range=(int(low.timestamp()), int(min(high.timestamp(), TIMESTAMP_MAX))))


def _occurrence_value(day: dt.date, dtstart):
    if isinstance(dtstart, dt.datetime):
        return dt.datetime.combine(day, dtstart.timetz().replace(tzinfo=None)).replace(
            tzinfo=dtstart.tzinfo)
    return day


def _series_end(recurrence: dict, start: dt.datetime, end: dt.datetime,
                zone_name: str) -> dt.datetime:
    rng = recurrence.get("range") or {}
    if rng.get("type") == "endDate" and rng.get("endDate"):
        last = dt.datetime.combine(dt.date.fromisoformat(rng["endDate"][:10]),
                                   dt.time(23, 59, 59), tzinfo=zone(zone_name))
        return last + (end - start) + dt.timedelta(days=1)
    return dt.datetime.max.replace(tzinfo=UTC)


def _vevent(event: dict, uid: str, zone_name: str, rooms: frozenset[str]):
    vevent = icalendar.Event()
    vevent.add("UID", uid)
    stamp = event.get("lastModifiedDateTime") or event.get("createdDateTime")
    if stamp:
        vevent.add("DTSTAMP", parse_graph_offset_datetime(stamp))
        vevent.add("LAST-MODIFIED", parse_graph_offset_datetime(stamp))
    else:
        vevent.add("DTSTAMP", dt.datetime(1970, 1, 1, tzinfo=UTC))
    if event.get("createdDateTime"):
        vevent.add("CREATED", parse_graph_offset_datetime(event["createdDateTime"]))
    start = parse_graph_datetime(event["start"]).astimezone(UTC)
    end = parse_graph_datetime(event["end"]).astimezone(UTC)
    tz = zone(zone_name)
    if event.get("isAllDay"):
        vevent.add("DTSTART", start.astimezone(tz).date())
        vevent.add("DTEND", end.astimezone(tz).date())
    else:
        vevent.add("DTSTART", start.astimezone(tz))
        vevent.add("DTEND", end.astimezone(tz))
    if event.get("subject"):
        vevent.add("SUMMARY", event["subject"])
    body = (event.get("body") or {}).get("content")
    if body:
        vevent.add("DESCRIPTION", body)
    location = (event.get("location") or {}).get("displayName")
    if location:
        vevent.add("LOCATION", location)
    organizer = (event.get("organizer") or {}).get("emailAddress") or {}
    attendees = event.get("attendees") or []
    if organizer.get("address") and (attendees or not event.get("isOrganizer", True)):
        vevent.add("ORGANIZER", _cal_address(organizer))
    for attendee in attendees:
        vevent.add("ATTENDEE", _attendee(attendee, rooms))
    sensitivity = event.get("sensitivity")
    if sensitivity in SENSITIVITY_TO_CLASS:
        vevent.add("CLASS", SENSITIVITY_TO_CLASS[sensitivity])
    if event.get("showAs") == "free":
        vevent.add("TRANSP", "TRANSPARENT")
    if event.get("categories"):
        vevent.add("CATEGORIES", list(event["categories"]))
    if event.get("isReminderOn"):
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", event.get("subject") or "Reminder")
        alarm.add("TRIGGER", -dt.timedelta(minutes=int(event.get("reminderMinutesBeforeStart")
                                                       or 0)))
        vevent.add_component(alarm)
    return vevent, start, end


def _cal_address(email: dict) -> icalendar.vCalAddress:
    value = icalendar.vCalAddress(f"mailto:{email['address']}")
    if email.get("name"):
        value.params["CN"] = email["name"]
    return value


def _attendee(attendee: dict, rooms: frozenset[str]) -> icalendar.vCalAddress:
    email = attendee.get("emailAddress") or {}
    value = _cal_address(email)
    kind = attendee.get("type") or "required"
    if kind == "resource":
        address = str(email.get("address", "")).lower()
        value.params["CUTYPE"] = "ROOM" if address in rooms else "RESOURCE"
    value.params["ROLE"] = TYPE_TO_ROLE.get(kind, "REQ-PARTICIPANT")
    response = ((attendee.get("status") or {}).get("response")) or "none"
    value.params["PARTSTAT"] = RESPONSE_TO_PARTSTAT.get(response, "NEEDS-ACTION")
    return value
