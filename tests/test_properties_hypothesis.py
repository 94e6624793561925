"""Property-based tests (hypothesis) over generated recurrences and time zones, both ways.

Oracles are independent of the translation: recurring-ical-events expands iCalendar (RFC
5545) and the Graph emulator's recurrence module expands ``patternedRecurrence`` the way
Graph documents it. Wall times between 00:00 and 04:59 are avoided: what Exchange does with
a wall time inside a DST gap is not documented.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from dateutil import rrule as du
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from radicale_graph.emulator import recurrence as graph_recurrence
from radicale_graph.translation import UnsupportedObject, event_plan, to_resource
from radicale_graph.translation.timezones import parse_graph_datetime

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
         "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Auckland",
         "Europe/London", "America/St_Johns", "Asia/Tehran"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
GRAPH_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
YEARS = 3
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
REFUSAL = re.compile(r"RRULE|DTSTART that is not an occurrence")


@st.composite
def rrules(draw):
    """An RRULE text, often one Graph can hold, sometimes not."""
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "YEARLY", "MONTHLY",
                                 "HOURLY"]))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 3))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            position = draw(st.sampled_from([1, 2, 3, 4, -1, 5, -2]))
            if len(days) == 1:
                parts.append(f"BYDAY={position}{days[0]}")
            else:
                parts.append(f"BYDAY={','.join(days)};BYSETPOS={position}")
        else:
            parts.append(f"BYDAY={','.join(days)}")
    elif freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        day = draw(st.sampled_from([1, 5, 15, 28, 29, 30, 31, -1]))
        parts.append(f"BYMONTHDAY={day}")
    if freq == "YEARLY" and draw(st.booleans()):
        parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    end = draw(st.sampled_from(["count", "until", "none"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    return ";".join(parts), end


def _resource(start: str, tzid: str, rule: str, until: str | None) -> str:
    if until:
        rule += f";UNTIL={until}"
    when = f"DTSTART:{start}Z" if tzid == "UTC" else f"DTSTART;TZID={tzid}:{start}"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hypothesis//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:h1\r\nDTSTAMP:20260101T000000Z\r\n{when}\r\nDURATION:PT1H\r\n"
            f"RRULE:{rule}\r\nSUMMARY:h\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def _rfc(text: str, first: dt.datetime) -> list[dt.datetime]:
    calendar = icalendar.Calendar.from_ical(text)
    window = (first - dt.timedelta(days=1), first + dt.timedelta(days=366 * YEARS))
    return sorted(e.decoded("DTSTART").astimezone(dt.UTC)
                  for e in recurring_ical_events.of(calendar).between(*window))


def _graph(body: dict, first: dt.datetime) -> list[dt.datetime]:
    start = parse_graph_datetime(body["start"])
    tz = ZoneInfo(graph_recurrence.windows_to_iana(body["start"]["timeZone"]))
    found = graph_recurrence.expand(body["recurrence"], start, tz, first - dt.timedelta(days=1),
                                    first + dt.timedelta(days=366 * YEARS))
    return sorted(o.astimezone(dt.UTC) for o in found)


@SETTINGS
@given(rule=rrules(), zone=st.sampled_from(ZONES),
       day=st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)),
       hour=st.integers(5, 22), minute=st.sampled_from([0, 15, 30, 45]),
       until_days=st.integers(0, 500))
def test_icalendar_recurrences_keep_their_occurrences_in_graph(rule, zone, day, hour, minute,
                                                               until_days):
    text_rule, end = rule
    # Start on the rule's own first occurrence on or after the drawn day (RFC 5545 wants
    # DTSTART to fit the rule; the refusal of one that does not is tested elsewhere).
    parts = dict(p.split("=") for p in text_rule.split(";"))
    if parts["FREQ"] != "HOURLY":
        probe = du.rrulestr(text_rule, dtstart=dt.datetime.combine(day, dt.time(hour, minute)))
        first = next(iter(probe), None)
        assume(first is not None)
        day = first.date()
    local = dt.datetime.combine(day, dt.time(hour, minute))
    until = None
    if end == "until":
        last = (local + dt.timedelta(days=until_days)).replace(tzinfo=ZoneInfo(zone))
        until = last.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = _resource(local.strftime("%Y%m%dT%H%M%S"), zone, text_rule, until)
    try:
        plan = event_plan(text, "h.ics")
    except UnsupportedObject as exc:
        assert REFUSAL.search(exc.construct), exc
        event("refused")
        return
    event("held by Graph")
    aware = local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
    assert _graph(plan.master, aware) == _rfc(text, aware)


@st.composite
def graph_recurrences(draw):
    """A valid Graph patternedRecurrence (any pattern and range type)."""
    kind = draw(st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly",
                                 "absoluteYearly", "relativeYearly"]))
    pattern: dict = {"type": kind, "interval": draw(st.integers(1, 3))}
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        pattern["daysOfWeek"] = draw(st.lists(st.sampled_from(GRAPH_DAYS), min_size=1,
                                              max_size=3, unique=True))
    if kind == "weekly":
        pattern["firstDayOfWeek"] = draw(st.sampled_from(GRAPH_DAYS))
    if kind.startswith("relative"):
        pattern["index"] = draw(st.sampled_from(["first", "second", "third", "fourth",
                                                 "last"]))
    if kind.endswith("Yearly"):
        pattern["month"] = draw(st.integers(1, 12))
    if kind.startswith("absolute"):
        most = 31 if kind == "absoluteMonthly" else [31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                                     30, 31][pattern["month"] - 1]
        pattern["dayOfMonth"] = draw(st.integers(1, most))
    range_type = draw(st.sampled_from(["noEnd", "numbered", "endDate"]))
    return pattern, range_type, draw(st.integers(1, 30)), draw(st.integers(0, 900))


@SETTINGS
@given(recurrence=graph_recurrences(), zone=st.sampled_from(ZONES),
       day=st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)),
       hour=st.integers(5, 22), minute=st.sampled_from([0, 30]))
def test_graph_recurrences_keep_their_occurrences_in_icalendar_and_back(recurrence, zone,
                                                                        day, hour, minute):
    pattern, range_type, count, days = recurrence
    windows = graph_recurrence.iana_to_windows(zone)
    rng = {"type": range_type, "startDate": day.isoformat(), "recurrenceTimeZone": windows}
    if range_type == "numbered":
        rng["numberOfOccurrences"] = count
    if range_type == "endDate":
        rng["endDate"] = (day + dt.timedelta(days=days)).isoformat()
    recurrence = {"pattern": pattern, "range": rng}
    try:
        graph_recurrence.validate(recurrence)
    except graph_recurrence.RecurrenceError:
        assume(False)
    start = dt.datetime.combine(day, dt.time(hour, minute)).isoformat()
    end = (dt.datetime.combine(day, dt.time(hour, minute)) + dt.timedelta(hours=1)).isoformat()
    event = {"id": "g1", "subject": "g", "originalStartTimeZone": windows,
             "start": {"dateTime": start, "timeZone": windows},
             "end": {"dateTime": end, "timeZone": windows}, "recurrence": recurrence}
    first = parse_graph_datetime(event["start"]).astimezone(dt.UTC)
    expected = _graph(event, first)
    assume(expected)
    text = to_resource(event).text
    assert _rfc(text, first) == expected
    plan = event_plan(text, "g.ics")  # and back: Graph gets the same series
    assert _graph(plan.master, first) == expected


@SETTINGS
@given(zone=st.sampled_from(sorted(__import__("zoneinfo").available_timezones())),
       moment=st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2040, 1, 1)),
       minutes=st.integers(0, 60 * 24 * 3))
def test_any_zone_keeps_instants_both_ways(zone, moment, minutes):
    assume(not zone.startswith(("posix", "right", "Factory", "localtime", "SystemV")))
    tz = ZoneInfo(zone)
    start = moment.replace(tzinfo=tz, microsecond=0, second=0)
    assume(start.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == start.replace(
        tzinfo=None))  # a wall time that exists
    end = start + dt.timedelta(minutes=minutes)
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//h//EN\r\nBEGIN:VEVENT\r\nUID:z\r\n"
            f"DTSTAMP:20260101T000000Z\r\nDTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}\r\n"
            f"DTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    plan = event_plan(text, "z.ics")

    def instant(value: dt.datetime) -> dt.datetime:
        # Compared in UTC: PEP 495 makes an ambiguous wall time (fold=0, the first of the two,
        # as RFC 5545 section 3.3.5 reads it) unequal to the same instant in another zone.
        return value.astimezone(dt.UTC)

    assert instant(parse_graph_datetime(plan.master["start"])) == instant(start)
    assert instant(parse_graph_datetime(plan.master["end"])) == instant(end)
    graph = dict(plan.master, id="z1", originalStartTimeZone=plan.master["start"]["timeZone"])
    back = icalendar.Calendar.from_ical(to_resource(graph).text).walk("VEVENT")[0]
    assert instant(back.decoded("DTSTART")) == instant(start)
    assert instant(back.decoded("DTEND")) == instant(end)
