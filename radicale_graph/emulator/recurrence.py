"""Microsoft Graph recurrence semantics, as the Graph emulator implements them.

The emulator is an independent implementation of Graph: nothing here is shared with the gateway's
own translation code. It turns a ``patternedRecurrence`` (``{"pattern": ..., "range": ...}``)
into occurrence start times, refuses recurrences Graph refuses, and maps time zone names.

Sources (repo microsoftgraph/microsoft-graph-docs-contrib unless noted):

- api-reference/v1.0/resources/recurrencepattern.md, recurrencerange.md, patternedrecurrence.md;
- concepts/outlook-schedule-recurring-events.md ("Schedule repeating appointments ...");
- [MS-OXOCAL] 2.2.1.44.1 and [MS-OXCICAL] 2.1.3.2.2 (Exchange's storage of the same patterns);
- CDO 1.2.1 "DayOfMonth Property (RecurrencePattern Object)" (msdn ms528295) for day clamping.

Semantics implemented (each is also stated where it is coded):

- Pattern types map onto RFC 5545 rules expanded by ``dateutil.rrule``: daily = FREQ=DAILY;
  weekly = FREQ=WEEKLY;BYDAY=<daysOfWeek>;WKST=<firstDayOfWeek> (default sunday);
  relativeMonthly = FREQ=MONTHLY;BYDAY=<daysOfWeek>;BYSETPOS=<index>, and relativeYearly the
  same with FREQ=YEARLY;BYMONTH=<month>. Several daysOfWeek mean "the first day that satisfies
  the pattern" (recurrencepattern.md), i.e. the index counts over the union of those weekdays,
  which is what BYSETPOS does (also [MS-OXCICAL] 2.1.3.2.2.4: "The last weekday of every month:
  FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"). index: first..fourth = 1..4, last = -1.
- absoluteMonthly/absoluteYearly with a dayOfMonth the month does not have fall on the month's
  last day. Outlook does this ("The last day of every month can be represented by the value 31
  in monthly recurrences"; "Outlook and CDO generate recurrences on February 28 for years other
  than leap years" for a yearly February 29: CDO DayOfMonth property, msdn ms528295), and
  [MS-OXCICAL] 2.1.3.2.2.3 stores RRULE BYMONTHDAY=-1 as Day=31. It is expressed to rrule as
  BYMONTHDAY=28..d;BYSETPOS=-1 ("the latest of days 28..d that exists"). absoluteYearly may not
  name a day past the month's last day in a leap year (same CDO page), so February 30 is refused.
- The first occurrence is the first date on or after range.startDate that fits the pattern
  (recurrencerange.md: "The first occurrence of the meeting may be this date or later";
  concepts page: "the first occurrence ... might not occur on this date if it does not fit the
  pattern"). The interval is then counted from that first occurrence's day, week or month, not
  from startDate's. The concepts page's example fixes this: relativeMonthly, interval 2, first
  Thursday, startDate 2017-08-29 -> "the first occurrence of this series will be in September".
  Counting the interval from August (RFC 5545 with DTSTART = startDate) would give October.
  So: first = rrule(interval=1, dtstart=startDate).first; series = rrule(interval, dtstart=first).
  The start itself is never an extra occurrence (unlike RFC 5545's DTSTART).
- numbered counts occurrences from that first occurrence (recurrencerange.md).
- endDate is inclusive ("between the startDate and endDate inclusive") and is a date in
  range.recurrenceTimeZone, or in the event's zone when that is absent (recurrencerange.md). An
  occurrence is in range when its start, seen in that zone, falls on or before endDate.
- Occurrences are computed on the wall clock of the event's start zone: each has the start's
  local time of day, so a 09:00 series stays at 09:00 across DST changes. A wall time that does
  not exist on a DST-change day is moved forward by the gap (Python's fold=0 reading); what
  Exchange does there is not documented.

Error codes: Graph's codes for a refused recurrence are not in its documentation. Observed by
third parties against Graph: ``ErrorInvalidRecurrencePattern`` (weekly without daysOfWeek) and
``ErrorInvalidRecurrenceRange`` (range not matching the start). From Exchange's ResponseCodeType
list, which Outlook's REST API passes through (e.g. ErrorRecurrenceEndDateTooBig, "Recurrence end
date can not exceed Sep 1, 4500 00:00:00."): ``ErrorRecurrenceHasNoOccurrence`` and
``ErrorRecurrenceEndDateTooBig``. An unknown recurrenceTimeZone gets Graph's zone error
``TimeZoneNotSupportedException``. Treat these codes as unverified against a live tenant.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections.abc import Iterator

from dateutil import rrule
from icalendar.timezone.tzid import get_equivalent_tzids
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

__all__ = [
    "RecurrenceError",
    "expand",
    "first_occurrence",
    "iana_to_windows",
    "occurrence_dates",
    "validate",
    "windows_to_iana",
]

PATTERN_ERROR = "ErrorInvalidRecurrencePattern"
RANGE_ERROR = "ErrorInvalidRecurrenceRange"
NO_OCCURRENCE_ERROR = "ErrorRecurrenceHasNoOccurrence"
END_TOO_BIG_ERROR = "ErrorRecurrenceEndDateTooBig"
TIME_ZONE_ERROR = "TimeZoneNotSupportedException"

#: Exchange's latest allowed recurrence end (ResponseCodeType ErrorRecurrenceEndDateTooBig).
MAX_END_DATE = dt.date(4500, 9, 1)

PATTERN_TYPES = {
    name.casefold(): name
    for name in (
        "daily",
        "weekly",
        "absoluteMonthly",
        "relativeMonthly",
        "absoluteYearly",
        "relativeYearly",
    )
}
RANGE_TYPES = {name.casefold(): name for name in ("endDate", "noEnd", "numbered")}
WEEKDAYS = {
    "sunday": rrule.SU,
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
}
WEEK_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
# Days in each month of a leap year: the largest dayOfMonth absoluteYearly accepts per month.
_LEAP_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Graph reads back unset range dates as this value.
_UNSET_DATE = "0001-01-01"

_UTC_WINDOWS = {"utc", "tzone://microsoft/utc"}
_UTC_IANA = {"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"}
_WINDOWS_BY_FOLDED = {name.casefold(): name for name in WINDOWS_TO_OLSON}
_IANA_TO_WINDOWS = {iana: windows for windows, iana in WINDOWS_TO_OLSON.items()}


class RecurrenceError(Exception):
    """Graph's refusal of a recurrence (HTTP 400 in the emulator).

    ``code`` is the Graph error code (see the module docstring for where each comes from) and
    ``message`` the human-readable text for the ``error.message`` field.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- time zone names


@functools.cache
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def windows_to_iana(name: str) -> str:
    """Map a Graph time zone name to an IANA zone name.

    Windows names ("Pacific Standard Time", matched case-insensitively) map through the CLDR
    windowsZones table shipped by icalendar (``icalendar.timezone.windows_to_olson``, territory
    001). ``"UTC"`` and ``"tzone://Microsoft/Utc"`` give ``"UTC"``. Names that are IANA zones
    known to ``zoneinfo`` pass through unchanged. Raises ``KeyError`` for anything else.
    """
    if not isinstance(name, str) or not name:
        raise KeyError(name)
    if name.casefold() in _UTC_WINDOWS:
        return "UTC"
    windows = _WINDOWS_BY_FOLDED.get(name.casefold())
    if windows is not None:
        return WINDOWS_TO_OLSON[windows]
    if name in _iana_names():
        return name
    raise KeyError(name)


def iana_to_windows(name: str) -> str:
    """Map an IANA zone name to the Windows zone name Graph would report.

    Inverse of the CLDR table used by :func:`windows_to_iana`. UTC and its IANA aliases give
    ``"UTC"``. An IANA name that is not itself in the table (an alias such as
    ``"Asia/Kolkata"`` for the table's ``"Asia/Calcutta"``, or ``"US/Pacific"``) is resolved
    through icalendar's list of equivalent zone ids when exactly one Windows zone matches. A
    Windows name is returned in its canonical spelling. Raises ``KeyError`` when there is no
    single Windows zone for the name.
    """
    if not isinstance(name, str) or not name:
        raise KeyError(name)
    if name in _UTC_IANA or name.casefold() in _UTC_WINDOWS:
        return "UTC"
    if name in _IANA_TO_WINDOWS:
        return _IANA_TO_WINDOWS[name]
    windows = _WINDOWS_BY_FOLDED.get(name.casefold())
    if windows is not None:
        return windows
    if name in _iana_names():
        candidates = {
            _IANA_TO_WINDOWS[other] for other in get_equivalent_tzids(name)
            if other in _IANA_TO_WINDOWS
        }
        if len(candidates) == 1:
            return candidates.pop()
    raise KeyError(name)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(windows_to_iana(name))
    except (KeyError, ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise RecurrenceError(
            TIME_ZONE_ERROR,
            "A valid TimeZone value must be specified. "
            f"The following TimeZone value is not supported: '{name}'.",
        ) from exc


# --------------------------------------------------------------------------------- validation


def _enum(value: object, allowed: dict, field: str, code: str):
    """Case-insensitive lookup of a Graph enum value; RecurrenceError if not allowed."""
    if isinstance(value, str) and value.casefold() in allowed:
        return allowed[value.casefold()]
    raise RecurrenceError(code, f"The value '{value}' of '{field}' is not supported.")


def _int(value: object, field: str, code: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RecurrenceError(code, f"'{field}' must be an integer from {low} to {high}.")
    return value


def _date(value: object, field: str) -> dt.date:
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise RecurrenceError(RANGE_ERROR, f"'{field}' must be a date (YYYY-MM-DD), got '{value}'.")


def _present(mapping: dict, key: str) -> bool:
    return mapping.get(key) is not None


def _check_pattern(pattern: object) -> dict:
    """Validate a recurrencePattern; return it normalised (canonical enums, defaults filled).

    Required properties per type follow recurrencepattern.md ("Values of type property") and
    the concepts page; properties that a type ignores are still checked against their allowed
    values ("Even if a field is ignored, it is still validated"). Graph reads back unused
    numeric properties as 0, so 0 is accepted where the property is unused.
    """
    if not isinstance(pattern, dict):
        raise RecurrenceError(PATTERN_ERROR, "The recurrence pattern is missing.")
    if not _present(pattern, "type"):
        raise RecurrenceError(PATTERN_ERROR, "The recurrence pattern 'type' is required.")
    kind = _enum(pattern["type"], PATTERN_TYPES, "pattern.type", PATTERN_ERROR)
    if not _present(pattern, "interval"):
        raise RecurrenceError(PATTERN_ERROR, "The recurrence pattern 'interval' is required.")
    interval = _int(pattern["interval"], "pattern.interval", PATTERN_ERROR, 1, 2**31 - 1)

    days_raw = pattern.get("daysOfWeek") or []
    if not isinstance(days_raw, list):
        raise RecurrenceError(PATTERN_ERROR, "'pattern.daysOfWeek' must be a list.")
    days = [_enum(d, {k: k for k in WEEKDAYS}, "pattern.daysOfWeek", PATTERN_ERROR)
            for d in days_raw]
    first_day = "sunday"
    if _present(pattern, "firstDayOfWeek"):
        first_day = _enum(pattern["firstDayOfWeek"], {k: k for k in WEEKDAYS},
                          "pattern.firstDayOfWeek", PATTERN_ERROR)
    index = "first"
    if _present(pattern, "index"):
        index = _enum(pattern["index"], {k: k for k in WEEK_INDEX}, "pattern.index",
                      PATTERN_ERROR)

    needs_days = kind in ("weekly", "relativeMonthly", "relativeYearly")
    needs_day_of_month = kind in ("absoluteMonthly", "absoluteYearly")
    needs_month = kind in ("absoluteYearly", "relativeYearly")
    if needs_days and not days:
        raise RecurrenceError(PATTERN_ERROR, f"A {kind} pattern requires 'daysOfWeek'.")
    day_of_month = pattern.get("dayOfMonth") or 0
    if needs_day_of_month:
        if not day_of_month:
            raise RecurrenceError(PATTERN_ERROR, f"A {kind} pattern requires 'dayOfMonth'.")
        _int(day_of_month, "pattern.dayOfMonth", PATTERN_ERROR, 1, 31)
    else:
        _int(day_of_month, "pattern.dayOfMonth", PATTERN_ERROR, 0, 31)
    month = pattern.get("month") or 0
    if needs_month:
        if not month:
            raise RecurrenceError(PATTERN_ERROR, f"A {kind} pattern requires 'month'.")
        _int(month, "pattern.month", PATTERN_ERROR, 1, 12)
    else:
        _int(month, "pattern.month", PATTERN_ERROR, 0, 12)
    if kind == "absoluteYearly" and day_of_month > _LEAP_MONTH_DAYS[month - 1]:
        raise RecurrenceError(
            PATTERN_ERROR, f"Month {month} has no day {day_of_month} ('pattern.dayOfMonth')."
        )
    return {
        "type": kind,
        "interval": interval,
        "daysOfWeek": list(dict.fromkeys(days)),
        "firstDayOfWeek": first_day,
        "index": index,
        "dayOfMonth": day_of_month,
        "month": month,
    }


def _check_range(range_: object) -> dict:
    """Validate a recurrenceRange; return it normalised (dates parsed, type canonical).

    Rules from recurrencerange.md: type and startDate always required; endDate required for
    ``endDate`` and not before startDate; numberOfOccurrences required and positive for
    ``numbered``. endDate after 4500-09-01 is refused as Exchange does.
    """
    if not isinstance(range_, dict):
        raise RecurrenceError(RANGE_ERROR, "The recurrence range is missing.")
    if not _present(range_, "type"):
        raise RecurrenceError(RANGE_ERROR, "The recurrence range 'type' is required.")
    kind = _enum(range_["type"], RANGE_TYPES, "range.type", RANGE_ERROR)
    if not _present(range_, "startDate"):
        raise RecurrenceError(RANGE_ERROR, "The recurrence range 'startDate' is required.")
    start_date = _date(range_["startDate"], "range.startDate")
    end_raw = range_.get("endDate")
    end_date = None
    if kind == "endDate":
        if end_raw is None:
            raise RecurrenceError(RANGE_ERROR, "An endDate range requires 'endDate'.")
        end_date = _date(end_raw, "range.endDate")
        if end_date < start_date:
            raise RecurrenceError(RANGE_ERROR, "'range.endDate' is before 'range.startDate'.")
        if end_date > MAX_END_DATE:
            raise RecurrenceError(
                END_TOO_BIG_ERROR, "Recurrence end date can not exceed Sep 1, 4500 00:00:00."
            )
    elif end_raw is not None and end_raw != _UNSET_DATE:
        _date(end_raw, "range.endDate")
    count = range_.get("numberOfOccurrences") or 0
    if kind == "numbered":
        if not count:
            raise RecurrenceError(
                RANGE_ERROR, "A numbered range requires a positive 'numberOfOccurrences'."
            )
        _int(count, "range.numberOfOccurrences", RANGE_ERROR, 1, 2**31 - 1)
    else:
        _int(count, "range.numberOfOccurrences", RANGE_ERROR, 0, 2**31 - 1)
    zone_name = range_.get("recurrenceTimeZone") or None
    if zone_name is not None:
        _zone(zone_name)
    return {
        "type": kind,
        "startDate": start_date,
        "endDate": end_date,
        "numberOfOccurrences": count,
        "recurrenceTimeZone": zone_name,
    }


def _normalise(recurrence: object) -> tuple[dict, dict]:
    if not isinstance(recurrence, dict):
        raise RecurrenceError(PATTERN_ERROR, "The recurrence must be an object.")
    return _check_pattern(recurrence.get("pattern")), _check_range(recurrence.get("range"))


def validate(recurrence: dict) -> None:
    """Raise :class:`RecurrenceError` for a patternedRecurrence Graph would refuse.

    Checks required and allowed values per pattern and range type (see ``_check_pattern`` and
    ``_check_range``) and, for an ``endDate`` range, that at least one occurrence falls between
    startDate and endDate (``ErrorRecurrenceHasNoOccurrence``; the check is on dates, in the
    pattern's own calendar). Returns None when Graph would accept the recurrence.
    """
    pattern, range_ = _normalise(recurrence)
    if range_["type"] == "endDate":
        first = _first_local(pattern, dt.datetime.combine(range_["startDate"], dt.time()))
        if first is None or first.date() > range_["endDate"]:
            raise RecurrenceError(
                NO_OCCURRENCE_ERROR, "Recurrence has no occurrences in the specified range."
            )


# --------------------------------------------------------------------------------- expansion


def _rule_parts(pattern: dict) -> dict:
    """rrule keyword arguments for a normalised pattern (everything but dtstart/interval/ends)."""
    kind = pattern["type"]
    days = tuple(WEEKDAYS[d] for d in pattern["daysOfWeek"])
    if kind == "daily":
        return {"freq": rrule.DAILY}
    if kind == "weekly":
        return {"freq": rrule.WEEKLY, "byweekday": days,
                "wkst": WEEKDAYS[pattern["firstDayOfWeek"]]}
    if kind == "relativeMonthly":
        return {"freq": rrule.MONTHLY, "byweekday": days,
                "bysetpos": WEEK_INDEX[pattern["index"]]}
    if kind == "relativeYearly":
        return {"freq": rrule.YEARLY, "bymonth": pattern["month"], "byweekday": days,
                "bysetpos": WEEK_INDEX[pattern["index"]]}
    day = pattern["dayOfMonth"]
    # A day the month lacks falls on the month's last day (CDO DayOfMonth, [MS-OXCICAL]
    # 2.1.3.2.2.3): "the latest existing day among 28..day".
    by_day = ({"bymonthday": day} if day <= 28
              else {"bymonthday": tuple(range(28, day + 1)), "bysetpos": -1})
    if kind == "absoluteMonthly":
        return {"freq": rrule.MONTHLY, **by_day}
    return {"freq": rrule.YEARLY, "bymonth": pattern["month"], **by_day}


def _first_local(pattern: dict, apply_from: dt.datetime) -> dt.datetime | None:
    """First naive local date-time on or after ``apply_from`` that fits the pattern.

    The interval plays no part here (see the module docstring): the first occurrence is the
    first date that satisfies the pattern's day rules.
    """
    return next(iter(rrule.rrule(dtstart=apply_from, count=1, **_rule_parts(pattern))), None)


def _localize(naive: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """Attach ``tz`` to a wall time; a wall time in a DST gap moves forward by the gap."""
    return naive.replace(tzinfo=tz).astimezone(dt.UTC).astimezone(tz)


def _series(recurrence: dict, start: dt.datetime, tz: zoneinfo.ZoneInfo
            ) -> tuple[Iterator[dt.datetime], dict]:
    """Naive local occurrences (an iterator) and the normalised range.

    The iterator is bounded by numberOfOccurrences, or coarsely (two days late) by endDate;
    the caller applies endDate exactly, in recurrenceTimeZone.
    """
    pattern, range_ = _normalise(recurrence)
    local_start = start.astimezone(tz)
    apply_from = dt.datetime.combine(range_["startDate"], local_start.time().replace(fold=0))
    first = _first_local(pattern, apply_from)
    if first is None:
        return iter(()), range_
    kwargs = _rule_parts(pattern)
    if range_["type"] == "numbered":
        kwargs["count"] = range_["numberOfOccurrences"]
    elif range_["type"] == "endDate":
        # Any zone is within a day of any other, so two days later bounds the iteration.
        coarse = min(range_["endDate"] + dt.timedelta(days=2), dt.date.max)
        kwargs["until"] = dt.datetime.combine(coarse, dt.time())
    rule = rrule.rrule(dtstart=first, interval=pattern["interval"], **kwargs)
    return iter(rule), range_


def _aware_occurrences(recurrence: dict, start: dt.datetime, tz: zoneinfo.ZoneInfo,
                       after_local: dt.datetime | None = None) -> Iterator[dt.datetime]:
    """Aware occurrence starts in ``tz``, in order, ending at the range's end.

    ``after_local`` (naive, in ``tz``) skips occurrences strictly before it without changing
    the numbering of a numbered range.
    """
    naive_iter, range_ = _series(recurrence, start, tz)
    end_date = range_["endDate"]
    end_zone = _zone(range_["recurrenceTimeZone"]) if range_["recurrenceTimeZone"] else tz
    for naive in naive_iter:
        if after_local is not None and naive < after_local:
            continue
        occurrence = _localize(naive, tz)
        if end_date is not None and occurrence.astimezone(end_zone).date() > end_date:
            return
        yield occurrence


def expand(recurrence: dict, start: dt.datetime, tz: zoneinfo.ZoneInfo,
           window_start: dt.datetime, window_end: dt.datetime) -> list[dt.datetime]:
    """Occurrence start times of a series that fall in ``[window_start, window_end)``.

    ``recurrence`` is a Graph patternedRecurrence. ``start`` is the series' start (aware; its
    wall-clock time in ``tz`` is every occurrence's time of day). The pattern is applied from
    ``range.startDate`` (Graph requires it to equal the start's date) on the calendar of ``tz``,
    the event's start zone. Returns aware datetimes in ``tz``, ascending. ``window_start`` and
    ``window_end`` are aware, in any zone. Numbered ranges count from the first occurrence,
    whatever the window. Raises :class:`RecurrenceError` for a recurrence Graph refuses.
    Iterates lazily: cost grows with the number of occurrences between the series' first
    occurrence and ``window_end``, never with an unbounded list.
    """
    validate(recurrence)
    if window_end <= window_start:
        return []
    # Naive local bounds with a day's slack for DST; exact comparisons are done on aware values.
    after_local = window_start.astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=1)
    stop_local = window_end.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=1)
    result = []
    for occurrence in _aware_occurrences(recurrence, start, tz, after_local):
        if occurrence.replace(tzinfo=None) > stop_local:
            break
        if window_start <= occurrence < window_end:
            result.append(occurrence)
    return result


def occurrence_dates(recurrence: dict, start: dt.datetime, tz: zoneinfo.ZoneInfo,
                     until_date: dt.date | None = None) -> Iterator[dt.datetime]:
    """Iterate over the series' occurrence starts (aware, in ``tz``) from the first one.

    Stops at the range's end, or after the last occurrence whose local date in ``tz`` is on or
    before ``until_date`` when that is given. A ``noEnd`` series with no ``until_date`` never
    ends: consume it lazily. Raises :class:`RecurrenceError` (when iteration starts) for a
    recurrence Graph refuses.
    """
    validate(recurrence)
    for occurrence in _aware_occurrences(recurrence, start, tz):
        if until_date is not None and occurrence.date() > until_date:
            return
        yield occurrence


def first_occurrence(recurrence: dict, start: dt.datetime, tz: zoneinfo.ZoneInfo
                     ) -> dt.datetime | None:
    """The series' first occurrence start (aware, in ``tz``), or None if it has none.

    This is ``start`` when the start's date fits the pattern, else the first later date that
    does (see the module docstring). Raises :class:`RecurrenceError` like :func:`validate`.
    """
    return next(occurrence_dates(recurrence, start, tz), None)
