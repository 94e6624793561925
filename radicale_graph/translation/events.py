"""One VEVENT's own properties -> a Graph event body (times, text, people, flags, reminder),
and the kept entry that lets a client read back its own spelling (:mod:`.kept`).

Sources: RFC 5545 section 3.6.1 (VEVENT), 3.8 (properties); Graph resources/event.md,
attendee.md, location.md, itembody.md; api/event-update.md for the writable properties.
"""

from __future__ import annotations

import datetime as dt
import json

from . import kept, lines
from .body import body_text
from .errors import UnsupportedObject
from .timezones import (
    UTC,
    graph_datetime,
    graph_zone,
    iana_from_graph,
    is_utc_name,
    tzid_of,
    zone,
)
from .values import (
    BUSYSTATUS_TO_SHOW_AS,
    CLASS_TO_SENSITIVITY,
    ONLINE_PROVIDERS,
    PARTSTAT_TO_RESPONSE,
    RESOURCE_CUTYPES,
    ROLE_TO_TYPE,
    priority_to_importance,
)

ALARM_ACTIONS = {"DISPLAY", "AUDIO", "EMAIL"}


def occurrence_key(value: dt.datetime | dt.date, zone_name: str, all_day: bool) -> str:
    """Stable key of one occurrence: ``YYYY-MM-DD`` for all-day series, else its original
    start as a UTC instant ``YYYY-MM-DDTHH:MM:SSZ``. ``value`` is a RECURRENCE-ID/EXDATE value
    (aware, floating = in ``zone_name``, or a date) or Graph's ``originalStart`` (UTC)."""
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


def _values(event, name: str) -> list:
    found = event.get(name)
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


class EventParts:
    """The Graph view of one VEVENT. Build with :func:`event_parts`, then call
    :meth:`choose_zone` before :meth:`body`.

    ``start``/``end``: DTSTART and the end (dates for all-day events; aware datetimes, with
    floating times pinned to the floating zone). ``tz``: the zone wall times are read in.
    ``iana``: the IANA name of the client's zone when it has one. ``windows``/``series_zone``:
    the Windows zone sent to Graph and its IANA zone (after :meth:`choose_zone`).
    """

    def __init__(self, vevent, floating: str, owner: str | None, override: bool) -> None:
        self.vevent = vevent
        self.owner = owner
        self.override = override
        if "DTSTART" not in vevent:
            raise UnsupportedObject("VEVENT without DTSTART",
                                    "Graph events need a start (RFC 4791 4.1 requires it too)")
        start = vevent.decoded("DTSTART")
        self.all_day = not isinstance(start, dt.datetime)
        self.floating = not self.all_day and start.tzinfo is None
        if self.all_day:
            self.tz: dt.tzinfo = UTC
        elif self.floating:
            # A floating start with a zoned end (issue 1847 of Radicale: some clients write
            # DTEND;TZID only) is read in the end's zone; else in the floating zone.
            end_value = vevent.decoded("DTEND") if "DTEND" in vevent else None
            end_zone = getattr(end_value, "tzinfo", None)
            self.tz = end_zone if end_zone is not None else zone(floating)
            self.floating = end_zone is None
            start = start.replace(tzinfo=self.tz)
        else:
            self.tz = start.tzinfo
        label = tzid_of(self.tz) or "UTC"
        self.iana = "UTC" if is_utc_name(label) else iana_from_graph(label)
        if "DTEND" in vevent:
            end = vevent.decoded("DTEND")
        elif "DURATION" in vevent:
            end = start + vevent.decoded("DURATION")
        elif self.all_day:
            end = start + dt.timedelta(days=1)
        else:
            end = start
        if self.all_day:
            if isinstance(end, dt.datetime):
                raise UnsupportedObject("DTSTART as DATE with DTEND as DATE-TIME",
                                        "start and end must both be dates")
            if end <= start:
                end = start + dt.timedelta(days=1)
        else:
            if not isinstance(end, dt.datetime):
                raise UnsupportedObject("DTSTART as DATE-TIME with DTEND as DATE",
                                        "start and end must both be date-times")
            if end.tzinfo is None:
                end = end.replace(tzinfo=self.tz)
            if end < start:
                raise UnsupportedObject("DTEND before DTSTART",
                                        "an event cannot end before it starts")
        self.start, self.end = start, end
        self.windows = "UTC"
        self.series_zone = "UTC"
        self._people()
        status = str(vevent.get("STATUS", "")).upper()
        self.cancelled = status == "CANCELLED"
        if self.cancelled and override:
            raise UnsupportedObject("STATUS:CANCELLED in a RECURRENCE-ID override",
                                    "Graph cancels an occurrence by deleting it: use EXDATE")

    # -- time ------------------------------------------------------------------------------
    def wall(self, value) -> dt.datetime:
        """Naive wall time of a DTSTART-like value in :attr:`tz`."""
        if isinstance(value, dt.datetime):
            return value.astimezone(self.tz).replace(tzinfo=None) if value.tzinfo else value
        return dt.datetime.combine(value, dt.time())

    def aware(self, wall: dt.datetime) -> dt.datetime:
        """The instant of a naive wall time in :attr:`tz`."""
        return wall.replace(tzinfo=self.tz)

    def local_date(self, value) -> str:
        """The date of an occurrence in the series zone, as Graph's cancelledOccurrences
        strings carry it."""
        if not isinstance(value, dt.datetime):
            return value.isoformat()
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(zone(self.series_zone)).date().isoformat()

    def choose_zone(self, walls: list[dt.datetime]) -> None:
        """Pick the Windows zone (see ``timezones.graph_zone``): it must give every
        occurrence wall time (``walls``; the start and end for a single event) the client's
        UTC offset. A single event in a zone no Windows zone matches is sent as UTC instants
        (exact); a series is refused."""
        if self.all_day:
            return
        probe = list(walls) or [self.wall(self.start), self.wall(self.end)]
        try:
            self.windows = graph_zone(self.tz, probe)
        except ValueError as exc:
            if len(walls) > 1:
                raise UnsupportedObject(f"VTIMEZONE {tzid_of(self.tz)}",
                                        f"{exc}, and a series recurs on the wall clock of "
                                        "its zone") from None
            self.windows = "UTC"
        self.series_zone = iana_from_graph(self.windows) or "UTC"

    # -- people ----------------------------------------------------------------------------
    def _people(self) -> None:
        organizer = self.vevent.get("ORGANIZER")
        self.organizer = lines.address_of(organizer) if organizer is not None else None
        self.attendees = _values(self.vevent, "ATTENDEE")
        addresses = [lines.address_of(a) for a in self.attendees]
        self.owner_partstat = None
        self.owner_line = None
        self.self_line = None
        # A copy of a meeting the owner neither organizes nor attends (an imported schedule):
        # Graph would make the owner its organizer and invite the attendees, so it is stored
        # as the owner's appointment without attendees; the ORGANIZER and ATTENDEE lines are
        # kept for CalDAV clients (kept.build fingerprints the body as sent).
        self.detached = False
        owner = self.owner
        if owner and self.organizer and self.organizer != owner:
            if owner in addresses:
                prop = self.attendees[addresses.index(owner)]
                self.owner_partstat = str(prop.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
                self.owner_line = owner
            elif any(a != self.organizer for a in addresses):
                self.detached = True
        elif owner and self.organizer == owner and owner in addresses:
            self.self_line = owner

    def _attendee_bodies(self) -> list[dict]:
        if self.detached:
            return []
        out = []
        for prop in self.attendees:
            address = lines.address_of(prop)
            if address in (self.owner_line, self.self_line):
                continue
            raw = str(prop).strip()
            if raw.lower().startswith("mailto:"):
                raw = raw[7:]
            if "@" not in raw or ":" in raw.split("@")[0]:
                raise UnsupportedObject(f"ATTENDEE {prop}", "Graph's attendees are email "
                                        "recipients; this one has no email address")
            params = prop.params
            cutype = str(params.get("CUTYPE", "INDIVIDUAL")).upper()
            role = str(params.get("ROLE", "REQ-PARTICIPANT")).upper()
            kind = "resource" if cutype in RESOURCE_CUTYPES else ROLE_TO_TYPE.get(role,
                                                                               "required")
            email = {"address": raw}
            if params.get("CN"):
                email["name"] = str(params["CN"])
            partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
            out.append({"emailAddress": email, "type": kind,
                        "status": {"response": PARTSTAT_TO_RESPONSE.get(partstat, "none")}})
        return out

    def _response_requested(self) -> bool | None:
        others = [a for a in self.attendees
                  if lines.address_of(a) not in (self.owner_line, self.self_line)]
        if not others or self.detached:
            return None
        return any(str(a.params.get("RSVP", "FALSE")).upper() == "TRUE" for a in others)

    # -- body ------------------------------------------------------------------------------
    def body(self) -> dict:
        """The Graph ``event`` body for this VEVENT (no recurrence, no extended properties).
        Every mapped field is written, so a PATCH also clears what the client removed."""
        event = self.vevent
        body: dict = {}
        if self.all_day:
            body["isAllDay"] = True
            body["start"] = {"dateTime": f"{self.start.isoformat()}T00:00:00",
                             "timeZone": "UTC"}
            body["end"] = {"dateTime": f"{self.end.isoformat()}T00:00:00", "timeZone": "UTC"}
        else:
            body["isAllDay"] = False
            body["start"] = graph_datetime(self.start, self.windows)
            body["end"] = graph_datetime(self.end, self.windows)
        body["subject"] = str(event.get("SUMMARY", ""))
        body["body"] = _item_body(event)
        body.update(_locations(event))
        body["attendees"] = self._attendee_bodies()
        requested = self._response_requested()
        if requested is not None:
            body["responseRequested"] = requested
        klass = str(event.get("CLASS", "PUBLIC")).upper()
        body["sensitivity"] = CLASS_TO_SENSITIVITY.get(klass, "private")
        body["showAs"] = _show_as(event)
        body["importance"] = _importance(event)
        body["categories"] = [str(c) for g in _values(event, "CATEGORIES") for c in g.cats]
        self.alarm_index, reminder = _reminder(event, self.start)
        body.update(reminder)
        provider = event.get("X-RADICALE-GRAPH-ONLINE-MEETING")
        if provider is not None:
            name = ONLINE_PROVIDERS.get(str(provider).strip().lower())
            if name is None:
                raise UnsupportedObject(f"X-RADICALE-GRAPH-ONLINE-MEETING:{provider}",
                                        "Graph's providers are teamsForBusiness, "
                                        "skypeForBusiness and skypeForConsumer")
            body["isOnlineMeeting"] = True
            body["onlineMeetingProvider"] = name
        counter = event.get("X-MICROSOFT-DISALLOW-COUNTER")
        if counter is not None:
            body["allowNewTimeProposals"] = str(counter).strip().upper() != "TRUE"
        return body

    # -- kept ------------------------------------------------------------------------------
    def simulate(self, body: dict, cancelled_dates=(), original: str | None = None) -> dict:
        """The event as Graph will return it for ``body`` (the fields the rendering reads)."""
        event = json.loads(json.dumps(body))
        event.pop("singleValueExtendedProperties", None)
        # The storage reads bodies as text: Graph's text rendering of an HTML body.
        event["body"] = {"contentType": "text", "content": body_text(body.get("body"))}
        event["originalStartTimeZone"] = body["start"]["timeZone"]
        event["originalEndTimeZone"] = body["end"]["timeZone"]
        attending = self.owner_line is not None
        event["isOrganizer"] = not attending
        address = self.organizer if attending else (self.owner or self.organizer or "")
        event["organizer"] = {"emailAddress": {"address": address}}
        event["responseStatus"] = {"response": PARTSTAT_TO_RESPONSE.get(
            self.owner_partstat or "", "none") if attending else "organizer"}
        event["isCancelled"] = self.cancelled
        if cancelled_dates:
            event["cancelledOccurrences"] = [f"OID.x.{d}" for d in cancelled_dates]
        if original is not None:
            event["originalStart"] = (original if "T" in original
                                      else f"{original}T00:00:00Z")
        return event

    def client_items(self) -> list[tuple[str, str]]:
        """The client's VEVENT as ``(group, text)`` items (see :mod:`.lines`)."""
        items = []
        alarm = 0
        for group, text in lines.property_items(self.vevent):
            if group == "VALARM":
                group = "VALARM" if alarm == self.alarm_index else lines.KEPT
                alarm += 1
            elif group.startswith("ATTENDEE:") and group[9:] == self.owner_line:
                group = "OWNER"
            items.append((group, text))
        return items

    def kept_entry(self, body: dict, cancelled_dates=(), original: str | None = None,
                   series: EventParts | None = None) -> dict:
        """The kept entry for this VEVENT written as ``body`` (see :func:`kept.build`)."""
        from .graph_to_ical import Context, derive

        event = self.simulate(body, cancelled_dates, original)
        ctx = Context(uid=str(self.vevent.get("UID", "")),
                      zone=(series or self).series_zone, owner=self.owner)
        master = None
        if original is not None:
            master = {"isAllDay": (series or self).all_day}
        derived, _, _ = derive(event, ctx, master)
        return kept.build(self.client_items(), derived, event)


def event_parts(vevent, floating: str, owner: str | None, override: bool = False) -> EventParts:
    """:class:`EventParts` of a VEVENT; ``floating`` is the IANA zone for floating times,
    ``owner`` the mailbox address (lower case) or None. Raises :class:`UnsupportedObject`."""
    return EventParts(vevent, floating, owner, override)


def _item_body(event) -> dict:
    alt = [p for p in _values(event, "X-ALT-DESC")
           if str(p.params.get("FMTTYPE", "")).lower() == "text/html"]
    if alt:
        # X- values parse as unknown (still escaped) values: unescape as TEXT (RFC 5545 3.3.11)
        return {"contentType": "html",
                "content": lines.unescape_text(alt[0].to_ical().decode())}
    descriptions = _values(event, "DESCRIPTION")
    text = str(descriptions[0]) if descriptions else ""
    return {"contentType": "text", "content": text}


def _locations(event) -> dict:
    from .graph_to_ical import LOCATION_SCHEMA

    name = str(event.get("LOCATION", "") or "")
    location: dict = {"displayName": name}
    structured = []
    for component in event.subcomponents:
        if component.name != "VLOCATION":
            continue
        entry = None
        data = component.get("STRUCTURED-DATA")
        if data is not None and str(data.params.get("SCHEMA", "")) == LOCATION_SCHEMA:
            try:
                entry = json.loads(str(data))
            except ValueError:
                entry = None
        if not isinstance(entry, dict):
            entry = {"displayName": str(component.get("NAME", ""))}
            geo = _geo(component.get("GEO"))
            if geo:
                entry["coordinates"] = geo
        structured.append(entry)
    out: dict = {}
    names = [str(e.get("displayName") or "") for e in structured]
    if len(structured) == 1 and names[0] == name:
        location = dict(structured[0])
    elif len(structured) > 1 and "; ".join(n for n in names if n) == name:
        out["locations"] = structured
    coordinates = _geo(event.get("GEO")) or _apple_geo(event.get("X-APPLE-STRUCTURED-LOCATION"))
    if coordinates and "coordinates" not in location and "locations" not in out:
        location["coordinates"] = coordinates
    out["location"] = location
    return out


def _geo(prop) -> dict | None:
    if prop is None:
        return None
    try:
        latitude, longitude = prop.latitude, prop.longitude
    except AttributeError:
        try:
            latitude, longitude = (float(v) for v in str(prop.to_ical().decode()
                                                         if hasattr(prop, "to_ical")
                                                         else prop).split(";"))
        except ValueError:
            return None
    return {"latitude": float(latitude), "longitude": float(longitude)}


def _apple_geo(prop) -> dict | None:
    if prop is None:
        return None
    text = str(prop)
    if not text.lower().startswith("geo:"):
        return None
    try:
        latitude, longitude = (float(v) for v in text[4:].split(";")[0].split(",")[:2])
    except ValueError:
        return None
    return {"latitude": latitude, "longitude": longitude}


def _show_as(event) -> str:
    busy = event.get("X-MICROSOFT-CDO-BUSYSTATUS")
    if busy is not None:
        found = BUSYSTATUS_TO_SHOW_AS.get(str(busy).strip().upper())
        if found:
            return found
    return "free" if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT" else "busy"


def _importance(event) -> str:
    value = event.get("PRIORITY")
    if value is None:
        return "normal"
    try:
        return priority_to_importance(int(value))
    except (TypeError, ValueError):
        raise UnsupportedObject("PRIORITY", f"{value!r} is not a number 0-9") from None


def _reminder(event, start) -> tuple[int | None, dict]:
    """The index of the VALARM Graph's one reminder holds, and the reminder fields. A VALARM
    qualifies when it alerts at or before the start (TRIGGER relative to START, or an
    absolute time) by whole minutes; the others are kept for CalDAV clients."""
    for index, alarm in enumerate(a for a in event.subcomponents if a.name == "VALARM"):
        if str(alarm.get("ACTION", "")).upper() not in ALARM_ACTIONS or "TRIGGER" not in alarm:
            continue
        trigger = alarm["TRIGGER"]
        value = alarm.decoded("TRIGGER")
        if isinstance(value, dt.timedelta):
            if str(trigger.params.get("RELATED", "START")).upper() != "START":
                continue
            before = -value
        elif isinstance(value, dt.datetime) and isinstance(start, dt.datetime):
            at = value if value.tzinfo else value.replace(tzinfo=UTC)
            before = start - at
        else:
            continue
        seconds = before.total_seconds()
        if seconds < 0 or seconds % 60 or seconds / 60 > 2**31 - 1:
            continue
        return index, {"isReminderOn": True, "reminderMinutesBeforeStart": int(seconds // 60)}
    return None, {"isReminderOn": False}
