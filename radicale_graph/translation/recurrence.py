"""RRULE (RFC 5545 section 3.3.10) <-> Graph ``patternedRecurrence``.

Graph's model (resources/recurrencepattern.md, resources/recurrencerange.md,
concepts/outlook-schedule-recurring-events.md): pattern types daily, weekly, absoluteMonthly,
relativeMonthly, absoluteYearly, relativeYearly with ``interval``, ``daysOfWeek``,
``firstDayOfWeek``, ``index`` (first..fourth, last), ``dayOfMonth``, ``month``; range types
endDate, noEnd, numbered with ``startDate`` and an inclusive ``endDate``, both dates in
``recurrenceTimeZone``. Its semantics, as they matter for an exact translation:

- A relative pattern with several days means "the first (index) day among them", i.e.
  ``BYDAY=<list>;BYSETPOS=<n>`` ([MS-OXCICAL] 2.1.3.2.2.4).
- The first occurrence is the first date on or after ``startDate`` that fits the pattern, and
  the interval counts from it; RFC 5545 counts DTSTART itself as the first instance
  (section 3.8.5.3). The two agree exactly when DTSTART fits the rule, so a DTSTART that does
  not is refused, and a Graph series whose start does not fit is rendered from its first
  occurrence.
- absoluteMonthly/absoluteYearly with a day the month lacks fall on the month's last day
  (CDO DayOfMonth; a yearly 29 February falls on 28 February in common years). RFC 5545 skips
  such months, so BYMONTHDAY=29..31 is refused unless written the way RFC 5545 says "the last
  of days 28..d" (``BYMONTHDAY=28,29,30,31;BYSETPOS=-1``), which is what Graph's day d means.

Everything an RRULE can say that Graph cannot is refused with :class:`UnsupportedObject` naming
the rule part; :func:`check_same_occurrences` re-expands both sides as a last guard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from dateutil import rrule as du

from .errors import UnsupportedObject
from .timezones import graph_from_iana, iana_from_graph, zone

# Graph's name of an event's recurrence (resources/event.md, patternedrecurrence.md).
RECURRENCE = "recurrence"

ICAL_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
GRAPH_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DAY_TO_GRAPH = dict(zip(ICAL_DAYS, GRAPH_DAYS, strict=True))
GRAPH_TO_DAY = dict(zip(GRAPH_DAYS, ICAL_DAYS, strict=True))
INDEX_TO_GRAPH = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
GRAPH_TO_INDEX = {v: k for k, v in INDEX_TO_GRAPH.items()}
SUPPORTED_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH",
                   "BYSETPOS", "WKST"}
# Fewest days each month can have (February: 28), for absoluteYearly days that always exist.
MIN_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
LEAP_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DU_FREQ = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY, "YEARLY": du.YEARLY}
_DU_DAYS = [du.MO, du.TU, du.WE, du.TH, du.FR, du.SA, du.SU]
# How far the occurrence sets are compared: every occurrence up to this many, at most.
CHECK_OCCURRENCES = 800
CHECK_YEARS = 30


def _refuse(construct: str, reason: str) -> UnsupportedObject:
    return UnsupportedObject(construct, reason)


def _ints(rule: dict, part: str) -> list[int]:
    try:
        return [int(v) for v in rule.get(part) or []]
    except (TypeError, ValueError):
        raise _refuse(f"RRULE {part}", "its value is not a number") from None


def _single(rule: dict, part: str) -> int | None:
    values = _ints(rule, part)
    if not values:
        return None
    if len(values) != 1:
        raise _refuse(f"RRULE {part} with several values",
                      f"Graph's recurrence patterns hold one {part} value")
    return values[0]


def _byday(rule: dict) -> list[tuple[int | None, str]]:
    result = []
    for value in rule.get("BYDAY") or []:
        text = str(value).upper().strip()
        day, ordinal = text[-2:], text[:-2]
        if day not in DAY_TO_GRAPH:
            raise _refuse("RRULE BYDAY", f"unknown day {text!r}")
        try:
            number = int(ordinal) if ordinal not in ("", "+") else None
        except ValueError:
            raise _refuse("RRULE BYDAY", f"unknown day {text!r}") from None
        result.append((number, day))
    return result


def _last_day_form(monthdays: list[int], setpos: list[int]) -> int | None:
    """Day d for ``BYMONTHDAY=28,...,d;BYSETPOS=-1`` (Graph's dayOfMonth d > 28), else None."""
    if setpos == [-1] and len(monthdays) > 1 and sorted(monthdays) == list(
            range(28, max(monthdays) + 1)) and 29 <= max(monthdays) <= 31:
        return max(monthdays)
    return None


def rrule_to_recurrence(rule: dict, start: dt.datetime | dt.date, iana: str,
                        windows: str | None = None, tz: dt.tzinfo | None = None) -> dict:
    """Graph ``patternedRecurrence`` for an RRULE.

    ``rule`` is the RRULE as a mapping of part names to lists of values (``icalendar.vRecur``);
    ``start`` is DTSTART (aware in zone ``iana``, naive wall time in it, or a date for all-day
    events); ``windows`` is the Windows zone sent as ``recurrenceTimeZone`` (default: CLDR's
    name for ``iana``); ``tz`` is the zone UNTIL is compared in (default: ``iana``'s).
    Raises :class:`UnsupportedObject` naming the part for what Graph cannot
    hold: FREQ finer than DAILY, BYHOUR/BYMINUTE/BYSECOND, BYWEEKNO, BYYEARDAY, several BYMONTH
    values, several BYMONTHDAY values (except Outlook's last-day form), BYSETPOS or BYDAY
    positions other than 1..4 and -1, month days some months lack, both COUNT and UNTIL, an
    UNTIL before DTSTART, and combinations no pattern type expresses. It does not check that
    DTSTART fits the rule: see :func:`check_same_occurrences`.
    """
    parts = {str(k).upper(): v for k, v in rule.items()}
    unknown = sorted(set(parts) - SUPPORTED_PARTS)
    if unknown:
        raise _refuse(f"RRULE {unknown[0]}", "Graph's recurrence patterns cannot express it")
    freq = str((parts.get("FREQ") or [""])[0]).upper()
    if freq in ("HOURLY", "MINUTELY", "SECONDLY"):
        raise _refuse(f"RRULE FREQ={freq}", "Graph recurs at most daily")
    if freq not in _DU_FREQ:
        raise _refuse("RRULE FREQ", f"unknown frequency {freq!r}")
    interval = _single(parts, "INTERVAL") or 1
    if interval < 1:
        raise _refuse("RRULE INTERVAL", "the interval must be at least 1")
    byday = _byday(parts)
    monthdays = _ints(parts, "BYMONTHDAY")
    setpos = _ints(parts, "BYSETPOS")
    month = _single(parts, "BYMONTH")
    last_day = _last_day_form(monthdays, setpos)
    if last_day is not None:
        monthdays, setpos = [last_day], []
    if len(monthdays) > 1:
        raise _refuse("RRULE BYMONTHDAY with several values",
                      "Graph's patterns hold one day of the month")
    if len(setpos) > 1:
        raise _refuse("RRULE BYSETPOS with several values", "Graph holds one position")
    monthday = monthdays[0] if monthdays else None
    position = setpos[0] if setpos else None
    if month is not None and not 1 <= month <= 12:
        raise _refuse(f"RRULE BYMONTH={month}", "there is no such month")
    wkst = str((parts.get("WKST") or ["MO"])[0]).upper()
    if wkst not in DAY_TO_GRAPH:
        raise _refuse("RRULE WKST", f"unknown day {wkst!r}")
    start_date = start.date() if isinstance(start, dt.datetime) else start
    pattern: dict = {"interval": interval, "firstDayOfWeek": DAY_TO_GRAPH[wkst]}

    def relative() -> None:
        ordinals = {o for o, _ in byday}
        if position is not None:
            if ordinals != {None}:
                raise _refuse("RRULE BYSETPOS with BYDAY positions", "Graph cannot combine both")
            index = position
        elif len(byday) == 1 and byday[0][0] is not None:
            index = byday[0][0]
        elif ordinals != {None}:
            raise _refuse("RRULE BYDAY with several positioned days",
                          "Graph holds one position for all days")
        else:
            raise _refuse("RRULE BYDAY without a position",
                          "every matching day would recur; Graph's monthly and yearly "
                          "patterns pick one day per period")
        if index not in INDEX_TO_GRAPH:
            name = f"BYSETPOS={index}" if position is not None else f"BYDAY position {index}"
            raise _refuse(f"RRULE {name}", "Graph holds positions first..fourth and last only")
        pattern["daysOfWeek"] = [DAY_TO_GRAPH[d] for _, d in byday]
        pattern["index"] = INDEX_TO_GRAPH[index]

    every_weekday = (freq in ("MONTHLY", "YEARLY") and byday and interval == 1
                     and all(o is None for o, _ in byday) and position is None
                     and monthday is None and month is None)
    if every_weekday:  # "every Tuesday of every month/year" is a weekly pattern
        pattern.update(type="weekly", daysOfWeek=[DAY_TO_GRAPH[d] for _, d in byday])
    elif freq == "DAILY":
        if monthday is not None or month is not None or position is not None:
            raise _refuse("RRULE FREQ=DAILY with BYMONTHDAY, BYMONTH or BYSETPOS",
                          "Graph's daily pattern has no such filter")
        if byday:
            if any(o is not None for o, _ in byday):
                raise _refuse("RRULE FREQ=DAILY with BYDAY positions",
                              "positions are meaningless in a daily rule")
            if interval != 1:
                raise _refuse("RRULE FREQ=DAILY with INTERVAL and BYDAY",
                              "Graph counts weeks, not days, when it filters weekdays")
            pattern.update(type="weekly", daysOfWeek=[DAY_TO_GRAPH[d] for _, d in byday])
        else:
            pattern.update(type="daily")
    elif freq == "WEEKLY":
        if monthday is not None or month is not None or position is not None:
            raise _refuse("RRULE FREQ=WEEKLY with BYMONTHDAY, BYMONTH or BYSETPOS",
                          "Graph's weekly pattern has no such filter")
        if any(o is not None for o, _ in byday):
            raise _refuse("RRULE FREQ=WEEKLY with BYDAY positions",
                          "positions are meaningless in a weekly rule")
        days = [d for _, d in byday] or [ICAL_DAYS[start_date.weekday()]]
        pattern.update(type="weekly", daysOfWeek=[DAY_TO_GRAPH[d] for d in days])
    elif freq == "MONTHLY":
        if month is not None:
            raise _refuse("RRULE FREQ=MONTHLY with BYMONTH", "Graph cannot filter months")
        if byday and monthday is not None:
            raise _refuse("RRULE BYDAY with BYMONTHDAY", "Graph cannot combine both")
        if byday:
            pattern["type"] = "relativeMonthly"
            relative()
        elif monthday == -1 and position is None:
            pattern.update(type="relativeMonthly", index="last", daysOfWeek=list(GRAPH_DAYS))
        else:
            day = start_date.day if monthday is None else monthday
            _check_monthday(day, position, 28 if last_day is None else 31, freq,
                            monthday is not None)
            pattern.update(type="absoluteMonthly", dayOfMonth=day)
    else:  # YEARLY
        the_month = month or start_date.month
        if byday:
            if monthday is not None:
                raise _refuse("RRULE BYDAY with BYMONTHDAY", "Graph cannot combine both")
            if month is None:
                raise _refuse("RRULE FREQ=YEARLY with BYDAY and no BYMONTH",
                              "Graph's yearly patterns recur within one month")
            pattern.update(type="relativeYearly", month=the_month)
            relative()
        else:
            day = start_date.day if monthday is None else monthday
            most = MIN_MONTH_DAYS[the_month - 1] if last_day is None else \
                LEAP_MONTH_DAYS[the_month - 1]
            if the_month == 2 and day == 29 and last_day is None:
                raise _refuse("RRULE yearly on 29 February",
                              "RFC 5545 recurs in leap years only; Graph moves it to "
                              "28 February in common years")
            _check_monthday(day, position, most, freq, monthday is not None)
            pattern.update(type="absoluteYearly", month=the_month, dayOfMonth=day)

    # Graph reads every pattern back with an index ("first" unless relative); writing it
    # the same way lets a reader compare what it wrote with what Graph holds.
    pattern.setdefault("index", "first")
    try:
        windows = windows or graph_from_iana(iana)
    except KeyError:
        windows = "UTC"
    recurrence_range: dict = {"startDate": start_date.isoformat(),
                              "recurrenceTimeZone": windows}
    count = _single(parts, "COUNT")
    until = parts.get("UNTIL")
    if count is not None and until:
        raise _refuse("RRULE with both COUNT and UNTIL", "RFC 5545 forbids it")
    if count is not None:
        if count < 1:
            raise _refuse("RRULE COUNT", "the count must be at least 1")
        recurrence_range.update(type="numbered", numberOfOccurrences=count)
    elif until:
        end_date = until_date(until[0], start, tz or zone(iana))
        if end_date < start_date:
            raise _refuse("RRULE UNTIL before DTSTART", "the series would have no occurrence")
        recurrence_range.update(type="endDate", endDate=end_date.isoformat())
    else:
        recurrence_range["type"] = "noEnd"
    return {"pattern": pattern, "range": recurrence_range}


def _check_monthday(day: int, position: int | None, most: int, freq: str,
                    explicit: bool) -> None:
    if position is not None:
        raise _refuse("RRULE BYSETPOS without BYDAY", "Graph uses positions with weekdays only")
    if day < 1:
        raise _refuse(f"RRULE BYMONTHDAY={day}",
                      "Graph counts days from the start of the month (only -1, the last day, "
                      "is held, as a relative pattern)")
    if day > most:
        construct = f"BYMONTHDAY={day}" if explicit else f"{freq} on day {day} (DTSTART)"
        raise _refuse(f"RRULE {construct}",
                      "RFC 5545 skips months without that day; Outlook moves the occurrence "
                      "to the month's last day instead (write BYMONTHDAY=28,...,"
                      f"{day};BYSETPOS=-1 for that)")


def until_date(until, start, tz: dt.tzinfo) -> dt.date:
    """The inclusive ``endDate`` (a date in the series zone ``tz``) equal to an RRULE UNTIL.

    RFC 5545: UNTIL bounds occurrence starts inclusively. Every occurrence starts at DTSTART's
    wall-clock time, so the last occurrence date is UNTIL's local date if that day's
    occurrence does not start after UNTIL, else the day before. Exact across DST changes.
    A floating UNTIL is read in ``tz``; a DATE UNTIL is its own date.
    """
    if not isinstance(until, dt.datetime):
        return until
    if not isinstance(start, dt.datetime):
        return (until.astimezone(tz) if until.tzinfo else until).date()
    wall = (start.astimezone(tz) if start.tzinfo else start).replace(tzinfo=None).time()
    aware_until = until if until.tzinfo else until.replace(tzinfo=tz)
    day = aware_until.astimezone(tz).date()
    occurrence = dt.datetime.combine(day, wall).replace(tzinfo=tz)
    if occurrence.astimezone(dt.UTC) > aware_until.astimezone(dt.UTC):
        day -= dt.timedelta(days=1)
    return day


# ------------------------------------------------------------------------------------------
# Graph -> RRULE


def recurrence_to_rrule(recurrence: dict, start: dt.datetime | dt.date,
                        range_tz: dt.tzinfo | None = None) -> dict:
    """RRULE parts (``icalendar.vRecur`` mapping) meaning exactly a Graph recurrence, given
    that ``start`` (the series' DTSTART: aware local time, or a date for all-day events) is
    its first occurrence (see :func:`first_occurrence`).

    An ``endDate`` range becomes UNTIL: a DATE for all-day series, else the UTC instant of the
    end of ``endDate`` in ``recurrenceTimeZone`` (RFC 5545 wants UTC with a zoned DTSTART).
    A day of the month that some months lack becomes ``BYMONTHDAY=28,...,d;BYSETPOS=-1``.
    ``range_tz`` overrides the zone ``endDate`` is read in. Raises ``ValueError`` for an
    unknown pattern type.
    """
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    kind = str(pattern.get("type") or "")
    rule: dict = {}
    days = [GRAPH_TO_DAY[str(d).lower()] for d in pattern.get("daysOfWeek") or []]
    interval = int(pattern.get("interval") or 1)
    if kind == "daily":
        rule["FREQ"] = ["DAILY"]
    elif kind == "weekly":
        rule["FREQ"] = ["WEEKLY"]
    elif kind in ("absoluteMonthly", "relativeMonthly"):
        rule["FREQ"] = ["MONTHLY"]
    elif kind in ("absoluteYearly", "relativeYearly"):
        rule["FREQ"] = ["YEARLY"]
    else:
        raise ValueError(f"unknown Graph recurrence pattern type {kind!r}")
    if interval != 1:
        rule["INTERVAL"] = [interval]
    if kind == "weekly":
        rule["BYDAY"] = days
    if kind in ("absoluteYearly", "relativeYearly"):
        rule["BYMONTH"] = [int(pattern.get("month") or 1)]
    if kind in ("absoluteMonthly", "absoluteYearly"):
        day = int(pattern.get("dayOfMonth") or 1)
        month = int(pattern.get("month") or 1)
        fewest = 28 if kind == "absoluteMonthly" else MIN_MONTH_DAYS[month - 1]
        if day <= fewest:
            rule["BYMONTHDAY"] = [day]
        else:
            rule["BYMONTHDAY"] = list(range(28, day + 1))
            rule["BYSETPOS"] = [-1]
    elif kind in ("relativeMonthly", "relativeYearly"):
        index = GRAPH_TO_INDEX[str(pattern.get("index") or "first").lower()]
        if len(days) == 1:
            rule["BYDAY"] = [f"{index}{days[0]}"]
        else:
            rule["BYDAY"] = days
            rule["BYSETPOS"] = [index]
    first = str(pattern.get("firstDayOfWeek") or "sunday").lower()
    if kind == "weekly" and interval > 1:  # the week start only matters there
        rule["WKST"] = [GRAPH_TO_DAY[first]]
    range_type = str(rng.get("type") or "noEnd")
    if range_type == "numbered":
        rule["COUNT"] = [int(rng.get("numberOfOccurrences") or 1)]
    elif range_type == "endDate" and rng.get("endDate"):
        end_date = dt.date.fromisoformat(str(rng["endDate"])[:10])
        if isinstance(start, dt.datetime):
            name = iana_from_graph(rng.get("recurrenceTimeZone"))
            tz = range_tz or (zone(name) if name else start.tzinfo)
            last = dt.datetime.combine(end_date, dt.time(23, 59, 59)).replace(tzinfo=tz)
            rule["UNTIL"] = [last.astimezone(dt.UTC)]
        else:
            rule["UNTIL"] = [end_date]
    return rule


def first_occurrence(recurrence: dict, start: dt.datetime | dt.date) -> dt.datetime | dt.date:
    """The first occurrence of a Graph series whose master starts at ``start`` (wall time,
    aware or naive, or a date): the first date on or after ``range.startDate`` (or ``start``'s
    date) that fits the pattern, at ``start``'s time of day (recurrencerange.md). Returns
    ``start`` itself when it fits, or when nothing fits within 400 years."""
    rng = recurrence.get("range") or {}
    day = start.date() if isinstance(start, dt.datetime) else start
    if rng.get("startDate") and not str(rng["startDate"]).startswith("0001"):
        day = dt.date.fromisoformat(str(rng["startDate"])[:10])
    wall = start.replace(tzinfo=None).time() if isinstance(start, dt.datetime) else dt.time()
    parts = recurrence_to_rrule({"pattern": recurrence.get("pattern"), "range": {}}, day)
    parts.pop("INTERVAL", None)
    candidate = next(iter(dateutil_rule(parts, dt.datetime.combine(day, wall))), None)
    if candidate is None or candidate.date() == (
            start.date() if isinstance(start, dt.datetime) else start):
        return start
    if isinstance(start, dt.datetime):
        return candidate.replace(tzinfo=start.tzinfo) if start.tzinfo else candidate
    return candidate.date()


# ------------------------------------------------------------------------------------------
# Expansion (wall clock) and the exactness guard


def dateutil_rule(parts: dict, dtstart: dt.datetime, until: dt.datetime | None = None):
    """A ``dateutil.rrule.rrule`` for RRULE ``parts`` from the naive wall time ``dtstart``.
    UNTIL in ``parts`` is ignored; pass ``until`` as a naive wall time instead."""
    kwargs: dict = {"dtstart": dtstart, "interval": int((parts.get("INTERVAL") or [1])[0])}
    days = []
    for value in parts.get("BYDAY") or []:
        text = str(value).upper()
        weekday = _DU_DAYS[ICAL_DAYS.index(text[-2:])]
        ordinal = text[:-2]
        days.append(weekday(int(ordinal)) if ordinal not in ("", "+") else weekday)
    if days:
        kwargs["byweekday"] = days
    for part, key in (("BYMONTHDAY", "bymonthday"), ("BYMONTH", "bymonth"),
                      ("BYSETPOS", "bysetpos")):
        if parts.get(part):
            kwargs[key] = [int(v) for v in parts[part]]
    if parts.get("WKST"):
        kwargs["wkst"] = _DU_DAYS[ICAL_DAYS.index(str(parts["WKST"][0]).upper())]
    if parts.get("COUNT"):
        kwargs["count"] = int(parts["COUNT"][0])
    if until is not None:
        kwargs["until"] = until
    return du.rrule(_DU_FREQ[str(parts["FREQ"][0]).upper()], **kwargs)


def rfc_walls(parts: dict, start: dt.datetime | dt.date, tz: dt.tzinfo,
              limit: int = CHECK_OCCURRENCES, years: int = CHECK_YEARS) -> Iterator[dt.datetime]:
    """Naive wall times of an RRULE's occurrences from DTSTART ``start`` (aware, naive or a
    date) in the series zone ``tz``, as dateutil expands RFC 5545 rules (DTSTART is emitted
    only if it fits the rule), at most ``limit`` of them and ``years`` years."""
    wall = _wall(start, tz)
    until = None
    if parts.get("UNTIL"):
        value = parts["UNTIL"][0]
        if isinstance(value, dt.datetime):
            until = value.astimezone(tz).replace(tzinfo=None) if value.tzinfo else value
        else:
            until = dt.datetime.combine(value, dt.time(23, 59, 59))
    horizon = wall + dt.timedelta(days=366 * years)
    for count, occurrence in enumerate(dateutil_rule(parts, wall, until)):
        if count >= limit or occurrence > horizon:
            return
        yield occurrence


def _wall(start: dt.datetime | dt.date, tz: dt.tzinfo) -> dt.datetime:
    if isinstance(start, dt.datetime):
        return start.astimezone(tz).replace(tzinfo=None) if start.tzinfo else start
    return dt.datetime.combine(start, dt.time())


def check_same_occurrences(rule: dict, recurrence: dict, start: dt.datetime | dt.date,
                           tz: dt.tzinfo) -> list[dt.datetime]:
    """Refuse unless the Graph ``recurrence`` has exactly the RRULE's occurrences.

    RFC 5545 counts DTSTART as the first instance; Graph starts at the first date that fits
    its pattern. So DTSTART must be the rule's own first occurrence, and the expansion of
    ``recurrence`` (through :func:`recurrence_to_rrule`, Graph's documented semantics) must
    equal the RRULE's, compared over at most :data:`CHECK_OCCURRENCES` occurrences and
    :data:`CHECK_YEARS` years. Returns the RRULE's wall times (naive, zone ``tz``).
    Raises :class:`UnsupportedObject`.
    """
    parts = {str(k).upper(): v for k, v in rule.items()}
    wall = _wall(start, tz)
    expected = list(rfc_walls(parts, start, tz))
    if not expected or expected[0] != wall:
        first = expected[0].isoformat() if expected else "none"
        raise _refuse("DTSTART that is not an occurrence of its RRULE",
                      f"RFC 5545 counts DTSTART {wall.isoformat()} as the first instance, the "
                      f"rule's own first occurrence is {first}, and Graph's series starts at "
                      "the first date that fits the pattern")
    graph_start = start.replace(tzinfo=tz) if isinstance(start, dt.datetime) and \
        start.tzinfo is None else start
    graph_parts = recurrence_to_rrule(recurrence, graph_start, range_tz=tz)
    actual = list(rfc_walls(graph_parts, start, tz))
    if actual != expected:
        differ = next((a, e) for a, e in zip(actual + [None] * len(expected),
                                             expected + [None] * len(actual), strict=False)
                      if a != e)
        raise _refuse("RRULE", "Graph's nearest pattern recurs differently "
                      f"(first difference: Graph {differ[0]}, RRULE {differ[1]})")
    return expected
