"""Recurring series: occurrences, exceptions and cancellations of a series master.

Behaviour implemented (Graph v1.0 docs):
- api/event-list-instances.md: occurrences and exceptions of a master in a time window, each with
  ``seriesMasterId``, ``type`` and ``originalStart``; cancelled occurrences are not listed.
- resources/event.md: ``cancelledOccurrences`` holds ``OID.<masterId>.<yyyy-mm-dd>`` strings.
- api/event-update.md: moving an occurrence to or before the day of the previous occurrence, or
  to or after the day of the next one, fails with 400 ErrorOccurrenceCrossingBoundary.
Occurrence starts come from ``recurrence.expand`` (the sibling module).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from . import ids, times
from .errors import GraphError

_SPANS = (dt.timedelta(days=8), dt.timedelta(days=64), dt.timedelta(days=800),
          dt.timedelta(days=12000))


@dataclass
class ExceptionRecord:
    """A modified occurrence: only the changed (normalized) properties are stored."""

    id: str
    original_start: dt.datetime  # UTC
    overrides: dict
    created: str
    modified: str
    ext: dict = field(default_factory=dict)  # lower-case id -> (id, value)


@dataclass
class Instance:
    """One listed instance of a series: an occurrence, or an exception when ``exception`` is set."""

    id: str
    original_start: dt.datetime  # UTC
    start: dt.datetime  # aware
    end: dt.datetime  # aware
    exception: ExceptionRecord | None


def key(original_start: dt.datetime) -> str:
    """Dictionary key for an original start (UTC DateTimeOffset text)."""
    return times.fmt_offset(original_start)


def series_zone(data: dict) -> ZoneInfo:
    """The zone the recurrence is evaluated in (range.recurrenceTimeZone, else start's zone)."""
    rng = (data.get("recurrence") or {}).get("range") or {}
    return times.zoneinfo_for(rng.get("recurrenceTimeZone") or data["start"]["timeZone"])


def _shape(data: dict) -> tuple[dt.datetime, dt.timedelta, ZoneInfo]:
    tz = series_zone(data)
    start = times.from_dtz(data["start"]).astimezone(tz)
    end = times.from_dtz(data["end"]).astimezone(tz)
    wall = end.replace(tzinfo=None) - start.replace(tzinfo=None)
    return start, wall, tz


def _end(start: dt.datetime, wall: dt.timedelta, tz: ZoneInfo) -> dt.datetime:
    return (start.replace(tzinfo=None) + wall).replace(tzinfo=tz)


def expand_starts(data: dict, window_start: dt.datetime, window_end: dt.datetime) -> list:
    """Original starts (aware, series zone) in [window_start, window_end). Raises GraphError."""
    from . import recurrence

    start, _, tz = _shape(data)
    try:
        return list(recurrence.expand(data["recurrence"], start, tz, window_start, window_end))
    except recurrence.RecurrenceError as exc:
        raise GraphError(400, exc.code, exc.message) from None


def validate(data: dict) -> None:
    """Expand the first year of a new or changed series so refused patterns fail at write time."""
    start, _, _ = _shape(data)
    expand_starts(data, start, start + dt.timedelta(days=400))


def _actual(rec, original: dt.datetime, wall, tz) -> tuple[dt.datetime, dt.datetime, object]:
    exc = rec.exceptions.get(key(original))
    start, end = original, _end(original, wall, tz)
    if exc is not None:
        if "start" in exc.overrides:
            start = times.from_dtz(exc.overrides["start"])
        if "end" in exc.overrides:
            end = times.from_dtz(exc.overrides["end"])
    return start, end, exc


def instances(rec, window_start: dt.datetime, window_end: dt.datetime) -> list[Instance]:
    """Occurrences and exceptions of series ``rec`` overlapping [window_start, window_end).

    Cancelled occurrences are left out. Sorted by start. ``rec`` is a store EventRecord.
    """
    first, wall, tz = _shape(rec.data)
    margin = max(wall, dt.timedelta(0)) + dt.timedelta(days=2)
    starts = {key(s): s for s in expand_starts(rec.data, window_start - margin, window_end)}
    for exc in rec.exceptions.values():  # moved exceptions may leave their original slot
        starts.setdefault(key(exc.original_start), exc.original_start.astimezone(tz))
    out = []
    for k, original in starts.items():
        if k in rec.cancelled:
            continue
        start, end, exc = _actual(rec, original, wall, tz)
        if start < window_end and (end > window_start or (end == start == window_start)):
            out.append(Instance(
                ids.occurrence_id(rec.id, original), original.astimezone(times.UTC), start, end,
                exc,
            ))
    out.sort(key=lambda i: (i.start, i.id))
    return out


def is_slot(rec, original_start: dt.datetime) -> bool:
    """True when ``original_start`` (aware) is an occurrence of the series' pattern."""
    found = expand_starts(rec.data, original_start, original_start + dt.timedelta(seconds=1))
    return any(s == original_start for s in found)


def find(rec, original_start: dt.datetime) -> Instance | None:
    """The live (not cancelled) instance whose original start is ``original_start``, or None."""
    if key(original_start) in rec.cancelled or not is_slot(rec, original_start):
        return None
    _, wall, tz = _shape(rec.data)
    original = original_start.astimezone(tz)
    start, end, exc = _actual(rec, original, wall, tz)
    return Instance(ids.occurrence_id(rec.id, original), original_start, start, end, exc)


def instance_data(rec, inst: Instance, copy_values: bool = True) -> dict:
    """The full stored-form event dict of an occurrence or exception of ``rec``. Without
    ``copy_values`` the dict shares the master's and the exception's values: read-only,
    for rendering under the store's lock."""
    data = copy.deepcopy(rec.data) if copy_values else dict(rec.data)
    tz = series_zone(rec.data)
    original_local = inst.original_start.astimezone(tz)
    _, wall, _ = _shape(rec.data)
    data.update({
        "id": inst.id,
        "type": "occurrence",
        "seriesMasterId": rec.id,
        "recurrence": None,
        "originalStart": times.fmt_offset(inst.original_start),
        "start": times.to_dtz(original_local, rec.data["start"]["timeZone"]),
        "end": times.to_dtz(_end(original_local, wall, tz), rec.data["end"]["timeZone"]),
        "iCalUId": ids.occurrence_ical_uid(rec.data["iCalUId"], original_local.date()),
    })
    data.pop("transactionId", None)
    if inst.exception is not None:
        data.update(copy.deepcopy(inst.exception.overrides) if copy_values
                    else inst.exception.overrides)
        # Instances carry the master's changeKey, exceptions included (the instances example
        # of api/event-list-instances.md shows one etag for all); writing an exception writes
        # the master item, so its changeKey still changes.
        data.update({
            "type": "exception",
            "createdDateTime": inst.exception.created,
            "lastModifiedDateTime": inst.exception.modified,
        })
    return data


def _neighbour(rec, original: dt.datetime, direction: int) -> dt.datetime | None:
    _, wall, tz = _shape(rec.data)
    for span in _SPANS:
        if direction < 0:
            found = expand_starts(rec.data, original - span, original)
        else:
            found = expand_starts(rec.data, original + dt.timedelta(seconds=1), original + span)
        found = [s for s in found if key(s) not in rec.cancelled]
        if found:
            pick = found[-1] if direction < 0 else found[0]
            return _actual(rec, pick.astimezone(tz), wall, tz)[0]
    return None


def check_move(rec, original_start: dt.datetime, new_start: dt.datetime) -> None:
    """Refuse moving an occurrence onto or past an adjacent occurrence's day (series zone)."""
    tz = series_zone(rec.data)
    day = new_start.astimezone(tz).date()
    before = _neighbour(rec, original_start, -1)
    after = _neighbour(rec, original_start, +1)
    if (before is not None and day <= before.astimezone(tz).date()) or (
        after is not None and day >= after.astimezone(tz).date()
    ):
        raise GraphError(
            400,
            "ErrorOccurrenceCrossingBoundary",
            "Modified occurrence is crossing or overlapping adjacent occurrence.",
        )


def cancelled_strings(rec) -> list[str]:
    """``cancelledOccurrences`` of a master: ``OID.<masterId>.<local date>`` (series zone)."""
    tz = series_zone(rec.data)
    dates = sorted(
        times.parse_naive(k)[0].replace(tzinfo=times.UTC).astimezone(tz).date()
        for k in rec.cancelled
    )
    return [f"OID.{rec.id}.{d.isoformat()}" for d in dates]
