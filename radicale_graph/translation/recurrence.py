"""RRULE (RFC 5545 section 3.3.10) <-> Graph ``patternedRecurrence``.

Graph's model (resources/recurrencepattern.md, resources/recurrencerange.md): pattern types
daily, weekly, absoluteMonthly, relativeMonthly, absoluteYearly, relativeYearly with
``interval``, ``daysOfWeek``, ``firstDayOfWeek``, ``index`` (first..fourth, last),
``dayOfMonth``, ``month``; range types endDate, noEnd, numbered, with ``startDate`` and
``endDate`` as dates in ``recurrenceTimeZone``. A relative pattern with several days means
"the first (index) day among them", i.e. ``BYDAY=<list>;BYSETPOS=<n>``.

Everything an RRULE can say that Graph cannot is refused with :class:`UnsupportedObject`.
"""

from __future__ import annotations

import datetime as dt

from .errors import UnsupportedObject

ICAL_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
GRAPH_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DAY_TO_GRAPH = dict(zip(ICAL_DAYS, GRAPH_DAYS, strict=True))
GRAPH_TO_DAY = dict(zip(GRAPH_DAYS, ICAL_DAYS, strict=True))
INDEX_TO_GRAPH = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
GRAPH_TO_INDEX = {v: k for k, v in INDEX_TO_GRAPH.items()}
SUPPORTED_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH",
                   "BYSETPOS", "WKST"}


def _refuse(construct: str, reason: str) -> UnsupportedObject:
    return UnsupportedObject(construct, reason)


def _single(rule: dict, part: str) -> int | None:
    values = rule.get(part)
    if not values:
        return None
    if len(values) != 1:
        raise _refuse(f"RRULE {part} with several values",
                      f"Graph's recurrence patterns hold one {part} value")
    return int(values[0])


def _byday(rule: dict) -> list[tuple[int | None, str]]:
    result = []
    for value in rule.get("BYDAY", []):
        text = str(value).upper()
        day = text[-2:]
        ordinal = text[:-2]
        if day not in DAY_TO_GRAPH:
            raise _refuse("RRULE BYDAY", f"unknown day {text!r}")
        result.append((int(ordinal) if ordinal not in ("", "+") else None, day))
    return result


def rrule_to_recurrence(rule: dict, start: dt.datetime | dt.date, iana: str) -> dict:
    """Graph ``patternedRecurrence`` for an RRULE.

    ``rule`` is the RRULE as a mapping of upper-case part names to lists of values (the shape
    ``icalendar.vRecur`` has); ``start`` is DTSTART (aware in zone ``iana``, or a date for
    all-day events); ``iana`` is the series' zone, sent as ``recurrenceTimeZone``.
    Raises :class:`UnsupportedObject` for constructs Graph cannot hold: FREQ finer than DAILY,
    BYHOUR/BYMINUTE/BYSECOND, BYWEEKNO, BYYEARDAY, several BYMONTHDAY or BYMONTH values,
    BYSETPOS other than 1..4 or -1, BYDAY ordinals other than 1..4 or -1, and combinations
    no pattern type expresses.
    """
    from .timezones import graph_from_iana, zone

    parts = {k.upper(): v for k, v in rule.items()}
    unknown = sorted(set(parts) - SUPPORTED_PARTS)
    if unknown:
        raise _refuse(f"RRULE {unknown[0]}",
                      "Graph's recurrence patterns cannot express it")
    freq = str(parts.get("FREQ", [""])[0]).upper()
    if freq in ("HOURLY", "MINUTELY", "SECONDLY"):
        raise _refuse(f"RRULE FREQ={freq}", "Graph recurs at most daily")
    if freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise _refuse("RRULE FREQ", f"unknown frequency {freq!r}")
    interval = _single(parts, "INTERVAL") or 1
    if interval < 1:
        raise _refuse("RRULE INTERVAL", "interval must be at least 1")
    byday = _byday(parts)
    monthday = _single(parts, "BYMONTHDAY")
    month = _single(parts, "BYMONTH")
    setpos = _single(parts, "BYSETPOS")
    wkst = str(parts.get("WKST", ["MO"])[0]).upper()
    if wkst not in DAY_TO_GRAPH:
        raise _refuse("RRULE WKST", f"unknown day {wkst!r}")
    start_date = start.date() if isinstance(start, dt.datetime) else start
    start_day = ICAL_DAYS[start_date.weekday()]
    pattern: dict = {"interval": interval, "firstDayOfWeek": DAY_TO_GRAPH[wkst]}

    def relative(ordinal: int | None) -> None:
        days = [d for _, d in byday]
        if ordinal is None:
            raise _refuse("RRULE BYDAY without position",
                          "Graph's monthly and yearly patterns need one position (1..4 or -1)")
        if ordinal not in INDEX_TO_GRAPH:
            raise _refuse(f"RRULE BYSETPOS or BYDAY position {ordinal}",
                          "Graph holds positions first..fourth and last only")
        pattern["daysOfWeek"] = [DAY_TO_GRAPH[d] for d in days]
        pattern["index"] = INDEX_TO_GRAPH[ordinal]

    def relative_position() -> int | None:
        ordinals = {o for o, _ in byday}
        if setpos is not None:
            if ordinals != {None}:
                raise _refuse("RRULE BYSETPOS with BYDAY positions",
                              "Graph cannot combine both")
            return setpos
        if len(byday) == 1:
            return byday[0][0]
        if ordinals != {None}:
            raise _refuse("RRULE BYDAY with several positioned days",
                          "Graph holds one position for all days")
        raise _refuse("RRULE BYDAY with several days and no BYSETPOS",
                      "every matching day would recur; Graph picks one per period")

    if freq == "DAILY":
        if monthday is not None or month is not None or setpos is not None:
            raise _refuse("RRULE FREQ=DAILY with BYMONTHDAY, BYMONTH or BYSETPOS",
                          "Graph's daily pattern has no such filter")
        if byday:
            if any(o is not None for o, _ in byday) or interval != 1:
                raise _refuse("RRULE FREQ=DAILY with BYDAY",
                              "only every day of a set of weekdays can be held (as weekly)")
            pattern.update(type="weekly", daysOfWeek=[DAY_TO_GRAPH[d] for _, d in byday])
        else:
            pattern.update(type="daily")
    elif freq == "WEEKLY":
        if monthday is not None or month is not None or setpos is not None:
            raise _refuse("RRULE FREQ=WEEKLY with BYMONTHDAY, BYMONTH or BYSETPOS",
                          "Graph's weekly pattern has no such filter")
        if any(o is not None for o, _ in byday):
            raise _refuse("RRULE FREQ=WEEKLY with BYDAY positions",
                          "positions are meaningless in a weekly rule")
        days = [d for _, d in byday] or [start_day]
        pattern.update(type="weekly", daysOfWeek=[DAY_TO_GRAPH[d] for d in days])
    elif freq == "MONTHLY":
        if month is not None:
            raise _refuse("RRULE FREQ=MONTHLY with BYMONTH", "Graph cannot filter months")
        if byday and monthday is not None:
            raise _refuse("RRULE BYDAY with BYMONTHDAY", "Graph cannot combine both")
        if byday:
            pattern["type"] = "relativeMonthly"
            relative(relative_position())
        elif monthday == -1:
            pattern.update(type="relativeMonthly", index="last", daysOfWeek=list(GRAPH_DAYS))
        else:
            day = start_date.day if monthday is None else monthday
            _check_monthday(day, setpos)
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
            relative(relative_position())
        else:
            day = start_date.day if monthday is None else monthday
            _check_monthday(day, setpos)
            pattern.update(type="absoluteYearly", month=the_month, dayOfMonth=day)
            if the_month == 2 and day == 29:
                raise _refuse("RRULE yearly on 29 February",
                              "Graph moves it to 28 February in common years")
    if pattern["type"] in ("absoluteMonthly", "absoluteYearly") and "daysOfWeek" in pattern:
        del pattern["daysOfWeek"]

    recurrence_range: dict = {"startDate": start_date.isoformat(), "recurrenceTimeZone":
                              _graph_zone(iana, graph_from_iana)}
    count = _single(parts, "COUNT")
    until = parts.get("UNTIL")
    if count is not None and until:
        raise _refuse("RRULE with both COUNT and UNTIL", "RFC 5545 forbids it")
    if count is not None:
        if count < 1:
            raise _refuse("RRULE COUNT", "count must be at least 1")
        recurrence_range.update(type="numbered", numberOfOccurrences=count)
    elif until:
        recurrence_range.update(type="endDate", endDate=_until_date(until[0], start, iana,
                                                                    zone).isoformat())
    else:
        recurrence_range["type"] = "noEnd"
    return {"pattern": pattern, "range": recurrence_range}


def _graph_zone(iana: str, graph_from_iana) -> str:
    try:
        return graph_from_iana(iana)
    except KeyError:
        return "UTC"


def _check_monthday(day: int, setpos: int | None) -> None:
    if setpos is not None:
        raise _refuse("RRULE BYSETPOS without BYDAY", "Graph uses positions with weekdays only")
    if day < 1:
        raise _refuse(f"RRULE BYMONTHDAY={day}",
                      "Graph counts days from the start of the month (only -1 = last day)")
    if day > 28:
        raise _refuse(f"RRULE BYMONTHDAY={day}",
                      "RFC 5545 skips months without that day; Outlook moves the occurrence "
                      "to the month's last day instead")


def _until_date(until, start, iana: str, zone) -> dt.date:
    """The inclusive ``endDate`` equal to an RRULE UNTIL.

    RFC 5545: UNTIL bounds occurrence starts inclusively. Every occurrence starts at DTSTART's
    wall-clock time, so the last occurrence date is UNTIL's local date if UNTIL's local time is
    not before that wall-clock time, else the day before. The result is exact.
    """
    if isinstance(until, dt.datetime):
        if not isinstance(start, dt.datetime):
            return until.date()
        tz = zone(iana)
        local_until = until.astimezone(tz) if until.tzinfo else until.replace(tzinfo=tz)
        local_start = start.astimezone(tz)
        if local_until.time() >= local_start.time().replace(tzinfo=None):
            return local_until.date()
        return local_until.date() - dt.timedelta(days=1)
    return until


def recurrence_to_rrule(recurrence: dict, start: dt.datetime | dt.date) -> dict:
    """RRULE parts (``icalendar.vRecur`` mapping) for a Graph ``patternedRecurrence``.

    ``start`` is the series' DTSTART as the gateway writes it (aware local time, or a date for
    all-day events). An ``endDate`` range becomes UNTIL: a DATE for all-day series, else the
    UTC instant of the last possible occurrence start on that date (RFC 5545 requires UTC
    UNTIL with a zoned DTSTART).
    """
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    kind = pattern.get("type")
    rule: dict = {}
    days = [GRAPH_TO_DAY[d.lower()] for d in pattern.get("daysOfWeek") or []]
    if kind == "daily":
        rule["FREQ"] = ["DAILY"]
    elif kind == "weekly":
        rule["FREQ"] = ["WEEKLY"]
        rule["BYDAY"] = days
    elif kind in ("absoluteMonthly", "relativeMonthly"):
        rule["FREQ"] = ["MONTHLY"]
    elif kind in ("absoluteYearly", "relativeYearly"):
        rule["FREQ"] = ["YEARLY"]
        rule["BYMONTH"] = [int(pattern.get("month") or 1)]
    else:
        raise ValueError(f"unknown Graph recurrence pattern type {kind!r}")
    interval = int(pattern.get("interval") or 1)
    if interval != 1:
        rule["INTERVAL"] = [interval]
    if kind in ("absoluteMonthly", "absoluteYearly"):
        rule["BYMONTHDAY"] = [int(pattern.get("dayOfMonth") or 1)]
    elif kind in ("relativeMonthly", "relativeYearly"):
        index = GRAPH_TO_INDEX[(pattern.get("index") or "first").lower()]
        if len(days) == 1:
            rule["BYDAY"] = [f"{index}{days[0]}"]
        else:
            rule["BYDAY"] = days
            rule["BYSETPOS"] = [index]
    first = (pattern.get("firstDayOfWeek") or "sunday").lower()
    if kind == "weekly" and interval > 1:  # the week start only matters there
        rule["WKST"] = [GRAPH_TO_DAY[first]]
    range_type = rng.get("type")
    if range_type == "numbered":
        rule["COUNT"] = [int(rng.get("numberOfOccurrences") or 1)]
    elif range_type == "endDate" and rng.get("endDate"):
        end_date = dt.date.fromisoformat(rng["endDate"][:10])
        if isinstance(start, dt.datetime):
            local_end = dt.datetime.combine(end_date, start.timetz().replace(tzinfo=None))
            local_end = local_end.replace(tzinfo=start.tzinfo)
            rule["UNTIL"] = [local_end.astimezone(dt.UTC)]
        else:
            rule["UNTIL"] = [end_date]
    return rule
