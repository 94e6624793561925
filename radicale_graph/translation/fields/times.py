"""DTSTART, DTEND/DURATION, VALUE=DATE, TZID ⇄ ``start``, ``end``, ``isAllDay``,
``originalStartTimeZone``.

RFC 5545 3.8.2.2 (DTEND), 3.8.2.4 (DTSTART), 3.8.2.5 (DURATION), 3.2.19 (TZID); Graph
resources/event.md and datetimetimezone.md: ``start``/``end`` are a wall ``dateTime`` and a
``timeZone`` (a Windows name or ``UTC``); an all-day event runs midnight to midnight in one
zone. The gateway writes all-day events in ``UTC`` and timed ones in the Windows zone chosen
by ``timezones.graph_zone``; it renders times in the organizer's ``originalStartTimeZone``
(the context's zone), as IANA TZIDs.
"""

from __future__ import annotations

import datetime as dt

from ..recurrence import RECURRENCE, first_occurrence
from ..timezones import (
    UTC,
    graph_datetime,
    graph_wall_date,
    iana_from_graph,
    parse_graph_datetime,
    zone,
)
from .base import Context, Field, Rendering

START = "start"
END = "end"
IS_ALL_DAY = "isAllDay"
ORIGINAL_START_TIME_ZONE = "originalStartTimeZone"
ORIGINAL_END_TIME_ZONE = "originalEndTimeZone"


def to_graph(parts, body: dict) -> None:
    """``isAllDay``, ``start``, ``end`` from the VEVENT's times (``parts.start``/``end``:
    dates, or aware datetimes; ``parts.windows``: the Windows zone chosen)."""
    if parts.all_day:
        body[IS_ALL_DAY] = True
        body[START] = {"dateTime": f"{parts.start.isoformat()}T00:00:00", "timeZone": "UTC"}
        body[END] = {"dateTime": f"{parts.end.isoformat()}T00:00:00", "timeZone": "UTC"}
    else:
        body[IS_ALL_DAY] = False
        body[START] = graph_datetime(parts.start, parts.windows)
        body[END] = graph_datetime(parts.end, parts.windows)


def times(event: dict, ctx: Context, master: dict | None = None):
    """(DTSTART value, DTEND value, start instant, end instant) of an event as written: dates
    for all-day events, aware datetimes in ``ctx.zone`` otherwise; the instants aware UTC.
    A series master starts at its first occurrence (``recurrence.first_occurrence``)."""
    all_day = bool(event.get(IS_ALL_DAY))
    tz = zone(ctx.zone)
    if all_day:
        start_value = graph_wall_date(event[START])
        end_value = graph_wall_date(event[END])
        if end_value <= start_value:
            end_value = start_value + dt.timedelta(days=1)
    else:
        start_value = parse_graph_datetime(event[START]).astimezone(tz)
        end_value = parse_graph_datetime(event[END]).astimezone(tz)
    if master is None and event.get(RECURRENCE):
        first = first_occurrence(event[RECURRENCE], start_value)
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


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """DTSTART and DTEND (see :func:`times`); records the times on ``out``."""
    start_value, end_value, out.start_at, out.end_at = times(event, ctx, master)
    out.start_value = start_value
    out.add("DTSTART", start_value)
    out.add("DTEND", end_value)


def instant(value: dict | None) -> str | None:
    """A Graph ``dateTimeTimeZone`` as an ISO UTC instant (None when absent)."""
    if not value or not value.get("dateTime"):
        return None
    return parse_graph_datetime(value).astimezone(UTC).isoformat()


def when(event: dict, key: str) -> list:
    """``start`` or ``end`` in comparable form: the wall date of an all-day event, else the
    UTC instant."""
    if event.get(IS_ALL_DAY):
        return ["date", graph_wall_date(event[key]).isoformat()] if event.get(key) else []
    return ["at", instant(event.get(key))]


def event_zone(event: dict) -> str | None:
    """The IANA zone an event is written in (``originalStartTimeZone``, else ``start``'s)."""
    return iana_from_graph(event.get(ORIGINAL_START_TIME_ZONE)) or iana_from_graph(
        (event.get(START) or {}).get("timeZone"))


def canonical(group: str, event: dict):
    """DTSTART: the start and zone; END: start and end."""
    if group == "DTSTART":
        return [when(event, START), event_zone(event)]
    return [when(event, START), when(event, END)]


def occurrence_times(master: dict, key: str, zone_name: str, all_day: bool,
                     original: dt.datetime) -> dict:
    """``start`` and ``end`` of the plain occurrence at ``key`` of a series whose master
    body is ``master``: at its original start (``original``, aware) for the master's
    length, in ``zone_name`` (IANA; all-day: midnight UTC of the key's date)."""
    start = parse_graph_datetime(master[START])
    end = parse_graph_datetime(master[END])
    if all_day:
        day = dt.date.fromisoformat(key)
        length = (end.date() - start.date()).days or 1
        return {START: {"dateTime": f"{day.isoformat()}T00:00:00", "timeZone": "UTC"},
                END: {"dateTime": f"{(day + dt.timedelta(days=length)).isoformat()}"
                      "T00:00:00", "timeZone": "UTC"}}
    original = original.astimezone(zone(zone_name))
    return {START: graph_datetime(original, zone_name),
            END: graph_datetime(original + (end - start), zone_name)}


def at_occurrence(exception: dict, master: dict, original: dt.datetime) -> bool:
    """Whether an exception starts at its original start (``original``, aware UTC) and
    lasts as long as the series' occurrences (all-day: by wall dates)."""
    try:
        start = parse_graph_datetime(exception[START])
        length = parse_graph_datetime(exception[END]) - start
        master_length = parse_graph_datetime(master[END]) - parse_graph_datetime(
            master[START])
    except (KeyError, ValueError):
        return False
    if master.get(IS_ALL_DAY):
        return graph_wall_date(exception[START]) == original.date() and \
            graph_wall_date(exception[END]) - graph_wall_date(exception[START]) == \
            graph_wall_date(master[END]) - graph_wall_date(master[START])
    return start == original and length == master_length


def holds(name: str, current: dict, wanted: dict) -> bool:
    """``start``/``end`` by their instants; ``isAllDay`` as is."""
    if name == IS_ALL_DAY:
        return bool(current.get(name)) == bool(wanted.get(name))
    have = current.get(name)
    return have is not None and parse_graph_datetime(have) == parse_graph_datetime(
        wanted[name])


TIMES = Field("times", (START, END, IS_ALL_DAY, ORIGINAL_START_TIME_ZONE,
                        ORIGINAL_END_TIME_ZONE),
              groups=("DTSTART", "END"), to_graph=to_graph, to_ical=to_ical,
              canonical=canonical, occurrence=(IS_ALL_DAY,))
