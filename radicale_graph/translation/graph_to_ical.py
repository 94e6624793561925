"""Graph events -> iCalendar resource (Graph ``event`` -> RFC 5545 VEVENT).

One resource per single event or series: the series master's VEVENT with RRULE and EXDATE
(from ``cancelledOccurrences``), plus one VEVENT with RECURRENCE-ID per exception
(``exceptionOccurrences`` or ``/instances`` with ``type`` ``exception``). Times are written in
the organizer's zone (``originalStartTimeZone``) as IANA TZIDs with their VTIMEZONE.
A cancelled occurrence reads back as EXDATE (RFC 5545 3.8.5.1), or, when the client wrote it
as a RECURRENCE-ID override with STATUS:CANCELLED (3.8.1.11) and Graph still lists it in
``cancelledOccurrences``, as that override, verbatim from the kept data.
What the gateway kept for CalDAV clients (:mod:`.kept`) is applied last, so a client reads back
what it wrote while Graph's values win wherever they changed. The mapping is docs/mapping.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import extended, kept, lines
from .fields import GRAPH_FIELDS, OCCURRENCE_FIELDS, Context, Rendering, derive, redundant
from .fields.identity import IDENTITY
from .fields.location import LOCATION_FIELDS, LOCATION_SCHEMA, graph_locations
from .fields.occurrences import without_exdates
from .fields.times import IS_ALL_DAY, ORIGINAL_START_TIME_ZONE, START, times
from .lines import KEPT
from .occurrences import (
    CANCELLED_OCCURRENCES,
    ORIGINAL_START,
    cancelled_keys,
    instance_key,
)
from .recurrence import RECURRENCE
from .timezones import UTC, iana_from_graph, zone

__all__ = ["GRAPH_FIELDS", "LOCATION_FIELDS", "LOCATION_SCHEMA", "OCCURRENCE_FIELDS",
           "IS_ALL_DAY", "Context", "Resource", "calendar_text", "derive", "graph_locations",
           "occurrence_key_of", "redundant", "series_zone", "times", "to_resource"]
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


def series_zone(master: dict) -> str:
    """IANA zone a resource is written in: the organizer's ``originalStartTimeZone``, else the
    recurrence's zone (``tzone://Microsoft/Custom`` events), else UTC."""
    rng = (master.get(RECURRENCE) or {}).get("range") or {}
    return (iana_from_graph(master.get(ORIGINAL_START_TIME_ZONE))
            or iana_from_graph(rng.get("recurrenceTimeZone"))
            or iana_from_graph((master.get(START) or {}).get("timeZone")) or "UTC")


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
    shown = _cancelled_overrides(master, data, ctx.zone, exceptions)
    items = kept.apply(without_exdates(items, [k for k, _, _ in shown],
                                       bool(master.get(IS_ALL_DAY)), ctx.zone),
                       kept.entry(data, None), master)
    vevents.append(items)
    low, high = start, end
    if master.get(RECURRENCE):
        high = _series_end(master[RECURRENCE], start, end, ctx.zone)
    for exception in sorted(exceptions, key=lambda e: e.get(ORIGINAL_START) or ""):
        key = occurrence_key_of(exception, master, ctx.zone)
        # An instance reads the master's extended properties where it has none of its own
        # (Exchange and the emulator alike): only a different value is the exception's own
        # (an override-only resource writes it on the exception).
        own_text = extended.read(exception).get(extended.KEPT_PROPERTY)
        own = {} if own_text == found.get(extended.KEPT_PROPERTY) else kept.decode(own_text)
        mine = kept.entry(data, key)
        if mine and mine.get("d"):
            mine = None  # kept for a cancelled occurrence that Graph holds again
        if not mine and not own and redundant(exception, master):
            continue
        ex_items, ostart, oend = derive(exception, ctx, master)
        ex_items = kept.apply(ex_items, mine or kept.entry(own, None), exception)
        vevents.append(ex_items)
        low, high = min(low, ostart), max(high, oend)
    for _, texts, (first, last) in shown:
        vevents.append(_cancelled_override_items(master, ctx, texts))
        low = min(low, dt.datetime.fromtimestamp(first, UTC))
        high = max(high, dt.datetime.fromtimestamp(last, UTC))
    text = calendar_text(vevents, data, low, high)
    return Resource(uid=str(uid), href=found.get(extended.HREF_PROPERTY), text=text,
                    time_range=(int(low.timestamp()),
                                int(min(high.timestamp(), TIMESTAMP_MAX))))


def occurrence_key_of(exception: dict, master: dict, zone_name: str) -> str:
    """The occurrence key (see ``occurrences.occurrence_key``) of a Graph exception of the
    series ``master`` written in ``zone_name`` (IANA)."""
    return instance_key(exception, zone_name, bool(master.get(IS_ALL_DAY)))


def _cancelled_overrides(master: dict, data: dict, zone_name: str,
                         exceptions) -> list[tuple[str, list[str], tuple[int, int]]]:
    """The client's cancelled overrides (STATUS:CANCELLED, RFC 5545 3.8.1.11) to render, as
    :func:`.kept.cancelled_overrides` gives them: those kept whose occurrence Graph still
    lists in the master's ``cancelledOccurrences`` (resources/event.md) and among
    ``exceptions`` (Graph exception instances) holds no exception for."""
    if not master.get(RECURRENCE) or not master.get(CANCELLED_OCCURRENCES):
        return []
    found = kept.cancelled_overrides(data)
    if not found:
        return []
    gone = set(cancelled_keys(master, zone_name, bool(master.get(IS_ALL_DAY))))
    gone -= {occurrence_key_of(e, master, zone_name) for e in exceptions
             if e.get(ORIGINAL_START)}
    return [item for item in found if item[0] in gone]


def _cancelled_override_items(master: dict, ctx: Context, texts: list[str]):
    """The VEVENT items of a kept cancelled override: UID, DTSTAMP and LAST-MODIFIED as the
    store renders them (the master's revision time), then the client's lines verbatim."""
    out = Rendering()
    IDENTITY.to_ical(master, ctx, None, out)
    items = [(group, text) for group, text in out if group != "CREATED"]
    return items + [(KEPT, text) for text in texts]


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
