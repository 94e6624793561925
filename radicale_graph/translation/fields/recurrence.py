"""RRULE ⇄ ``recurrence`` (``patternedRecurrence``).

RFC 5545 3.3.10 and 3.8.5.3 (RRULE); Graph resources/patternedrecurrence.md,
recurrencepattern.md, recurrencerange.md. The conversion itself (and the refusals) is
:mod:`..recurrence`; the write side adds ``recurrence`` in ``ical_to_graph`` because it needs
the whole series (the Windows zone chosen from every occurrence).
"""

from __future__ import annotations

from ..recurrence import RECURRENCE, recurrence_to_rrule
from .base import Context, Field, Rendering
from .times import START, event_zone, when


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """RRULE of a series master (DTSTART being its first occurrence)."""
    if master is None and event.get(RECURRENCE):
        out.add("RRULE", recurrence_to_rrule(event[RECURRENCE], out.start_value))


def pattern(event: dict) -> list | None:
    """A Graph recurrence in comparable form (None when the event does not recur)."""
    recurrence = event.get(RECURRENCE)
    if not recurrence:
        return None
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    kind = str(pattern.get("type") or "")
    out = [kind, int(pattern.get("interval") or 1)]
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        out.append(sorted(str(d).lower() for d in pattern.get("daysOfWeek") or []))
    if kind in ("relativeMonthly", "relativeYearly"):
        out.append(str(pattern.get("index") or "first").lower())
    if kind in ("absoluteMonthly", "absoluteYearly"):
        out.append(int(pattern.get("dayOfMonth") or 0))
    if kind in ("absoluteYearly", "relativeYearly"):
        out.append(int(pattern.get("month") or 0))
    if kind == "weekly" and int(pattern.get("interval") or 1) > 1:
        out.append(str(pattern.get("firstDayOfWeek") or "sunday").lower())
    range_type = str(rng.get("type") or "noEnd")
    out.append(range_type)
    if range_type == "endDate":
        out.append(str(rng.get("endDate"))[:10])
    if range_type == "numbered":
        out.append(int(rng.get("numberOfOccurrences") or 0))
    return out


def canonical(group: str, event: dict) -> list:
    """The pattern, the start and the zone (an RRULE's meaning depends on all three)."""
    return [pattern(event), when(event, START), event_zone(event)]


RRULE = Field("RRULE", (RECURRENCE,), groups=("RRULE",), to_ical=to_ical, canonical=canonical)
