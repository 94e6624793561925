"""RECURRENCE-ID, EXDATE ⇄ ``originalStart``, ``cancelledOccurrences`` (and ``type``,
``seriesMasterId``: the structure of a series).

RFC 5545 3.8.4.4 (RECURRENCE-ID), 3.8.5.1 (EXDATE), 3.8.1.11 (STATUS); Graph
resources/event.md. How one occurrence is named in either model is :mod:`...occurrences`; the
write side (EXDATE and overrides with STATUS:CANCELLED → ``EventPlan.cancelled``, other
overrides → ``EventPlan.overrides``) is ``ical_to_graph``. A cancelled occurrence renders as
EXDATE, or as the client's kept STATUS:CANCELLED override (``graph_to_ical``), in which case
:func:`without_exdates` leaves its EXDATE out.
"""

from __future__ import annotations

import datetime as dt

from .. import lines
from ..occurrences import (
    CANCELLED_OCCURRENCES,
    ORIGINAL_START,
    cancelled_dates,
    key_as_original_start,
    key_instant,
    occurrence_value,
    original_start,
    recurrence_id,
)
from ..recurrence import RECURRENCE
from ..timezones import zone
from .base import Context, Field, Rendering
from .times import IS_ALL_DAY, START, event_zone, when

TYPE = "type"
SERIES_MASTER_ID = "seriesMasterId"


def recurrence_id_to_ical(event: dict, ctx: Context, master: dict | None,
                          out: Rendering) -> None:
    """RECURRENCE-ID of an exception (``master`` given): ``originalStart`` in the series'
    zone, a date for an all-day series."""
    if master is not None:
        out.add("RECURRENCE-ID", recurrence_id(event, ctx.zone, bool(master.get(IS_ALL_DAY))))


def exdate_to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """One EXDATE per ``cancelledOccurrences`` entry of a series master, at the series' time
    of day."""
    if master is None and event.get(RECURRENCE):
        for day in cancelled_dates(event):
            out.add("EXDATE", occurrence_value(day, out.start_value))


def without_exdates(items: Rendering, keys, all_day: bool, zone_name: str) -> Rendering:
    """A master's rendered ``items`` without the EXDATE (RFC 5545 3.8.5.1) of each occurrence
    at ``keys`` (occurrence keys of a series in ``zone_name``, IANA) that is rendered as a
    cancelled RECURRENCE-ID override (STATUS:CANCELLED, 3.8.1.11) instead. The read side
    (``graph_to_ical``) and the kept entry of the master (``events.EventParts.kept_entry``)
    both render so, so the client's own EXDATE lines are kept exactly when they differ."""
    if not keys:
        return items
    drop = set()
    for key in keys:
        day = (dt.date.fromisoformat(key) if all_day else
               key_instant(key).astimezone(zone(zone_name)).date())
        drop.add(lines.line("EXDATE", occurrence_value(day, items.start_value)))
    out = Rendering(item for item in items if not (item[0] == "EXDATE" and item[1] in drop))
    out.start_value, out.start_at, out.end_at = items.start_value, items.start_at, items.end_at
    return out


def canonical(group: str, event: dict):
    """RECURRENCE-ID: the original start; EXDATE: the cancelled dates with the series' start
    and zone."""
    if group == "RECURRENCE-ID":
        original = event.get(ORIGINAL_START)
        return original_start(event).isoformat() if original else None
    cancelled = sorted(d.isoformat() for d in cancelled_dates(event))
    return [cancelled, when(event, START), event_zone(event)]


def simulate(event: dict, cancelled: list[str] = (), original: str | None = None) -> None:
    """What Graph returns for the occurrence structure of a body: ``cancelledOccurrences``
    (``cancelled``: dates in the series' zone) and ``originalStart`` (``original``: an
    occurrence key)."""
    if cancelled:
        event[CANCELLED_OCCURRENCES] = [f"OID.x.{d}" for d in cancelled]
    if original is not None:
        event[ORIGINAL_START] = key_as_original_start(original)


RECURRENCE_ID = Field("RECURRENCE-ID", (ORIGINAL_START, TYPE, SERIES_MASTER_ID),
                      groups=("RECURRENCE-ID",), to_ical=recurrence_id_to_ical,
                      canonical=canonical)
EXDATE = Field("EXDATE", (CANCELLED_OCCURRENCES,), groups=("EXDATE",), to_ical=exdate_to_ical,
               canonical=canonical)
