"""libical's RRULE expansion vectors (../shared/fixtures/rrule/icalrecur_test.txt) through the
gateway and the Graph emulator.

Each rule is put into a VEVENT and planned. A rule Graph can hold is POSTed to the emulator
and its instances (api/event-list-instances.md) must be exactly the vector's INSTANCES; every
other rule must be refused with a reason naming the construct. The vector file's harness
notes that libical does not emit a DTSTART that does not fit the rule; RFC 5545 counts it, so
the gateway refuses those (and the vector is counted as refused).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from urllib.parse import quote

import pytest

from radicale_graph.translation import UnsupportedObject, event_plan

from .test_roundtrip_helpers import (
    SHARED,
    EmulatorCalendar,
    emulator_of_its_own,
    event_validator,
    graph_client,
    schema_errors,
)

own_emulator = pytest.fixture(scope="module")(emulator_of_its_own)

VECTORS = SHARED / "fixtures" / "rrule" / "icalrecur_test.txt"
MAILBOX = "alice@contoso.com"
# Every refusal must name one of these (docs/mapping.md, "Refused").
REFUSAL_CONSTRUCTS = re.compile(
    r"FREQ=(HOURLY|MINUTELY|SECONDLY)|BYWEEKNO|BYYEARDAY|BYHOUR|BYMINUTE|BYSECOND|"
    r"several values|BYSETPOS|BYDAY|BYMONTHDAY|BYMONTH|29 February|on day \d+|"
    r"DTSTART that is not an occurrence|UNTIL")


def read_cases() -> list[dict]:
    """The vector file's cases (format: ../shared/fixtures/rrule/README.md)."""
    case: dict = {}
    cases = []
    for number, text in enumerate(VECTORS.read_text(encoding="ascii").splitlines(), 1):
        if not text:
            if case.get("RRULE"):
                cases.append(case)
            case = {}
            continue
        if text.startswith("#"):
            continue
        for key in ("RRULE", "DTSTART", "START-AT", "INSTANCES"):
            if text.startswith(key + ":"):
                case.setdefault("line", number)
                case[key] = text[len(key) + 1:]
    if case.get("RRULE"):
        cases.append(case)
    return cases


def resource(case: dict) -> str:
    start = case["DTSTART"]
    value = ";VALUE=DATE" if len(start) == 8 else ""
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vectors//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:vector-{case['line']}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART{value}:{start}\r\nRRULE:{case['RRULE']}\r\nSUMMARY:vector\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def expected_instants(case: dict) -> list:
    """INSTANCES as UTC datetimes (floating times are pinned to UTC, the default zone) or
    dates."""
    out = []
    for item in case["INSTANCES"].split(","):
        if len(item) == 8:
            out.append(dt.date(int(item[:4]), int(item[4:6]), int(item[6:])))
        else:
            out.append(dt.datetime.strptime(item.rstrip("Z"), "%Y%m%dT%H%M%S").replace(
                tzinfo=dt.UTC))
    return out


def graph_instances(writer: EmulatorCalendar, event_id: str, first, last, all_day: bool) -> list:
    """The series' instances from the emulator between ``first`` and a year after ``last``."""
    def instant(value):
        if isinstance(value, dt.datetime):
            return value
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)

    params = {"startDateTime": (instant(first) - dt.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "endDateTime": (instant(last) + dt.timedelta(days=400))
        .strftime("%Y-%m-%dT%H:%M:%SZ"), "$select": "start,originalStart", "$top": "1000"}
    found = []
    for item in writer.client.iter_pages(
            f"/users/{quote(writer.mailbox)}/events/{quote(event_id)}/instances",
            mailbox=writer.mailbox, operation="instances", params=params,
            headers={"Prefer": 'outlook.timezone="UTC"'}):
        text = item["start"]["dateTime"][:19]
        value = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        found.append(value.date() if all_day else value)
    return sorted(found)


def test_vectors_expand_through_the_emulator_or_are_refused(own_emulator):
    cases = read_cases()
    assert len(cases) == 146
    writer = EmulatorCalendar(graph_client(own_emulator), MAILBOX)
    validator = event_validator()
    outcome: Counter = Counter()
    reasons: Counter = Counter()
    table = []
    for case in cases:
        try:
            plan = event_plan(resource(case), f"vector-{case['line']}.ics")
        except UnsupportedObject as exc:
            assert REFUSAL_CONSTRUCTS.search(exc.construct), (case, exc)
            assert exc.precondition == "valid-calendar-object-resource"
            outcome["refused"] += 1
            reasons[re.sub(r"[=\s]-?\d+.*", "", exc.construct)] += 1
            table.append((case["line"], case["RRULE"], f"refused: {exc.construct}"))
            continue
        assert not case["INSTANCES"].startswith(" ***"), case
        expected = expected_instants(case)
        assert not schema_errors(validator, plan.master), case
        event_id = writer.create(plan)
        try:
            actual = graph_instances(writer, event_id, expected[0], expected[-1],
                                     plan.all_day)
        finally:
            writer.delete(event_id)
        assert actual == expected, (case["line"], case["RRULE"])
        outcome["expanded"] += 1
        table.append((case["line"], case["RRULE"], f"{len(actual)} instances"))
    print("\nRRULE vectors (line, rule, outcome):")
    for line, rule, result in table:
        print(f"  {line:4} {rule[:70]:70} {result}")
    print(f"outcome: {dict(outcome)}; refused by construct: {dict(reasons)}")
    # Counted when written; a change in either number is a change in the mapping.
    assert outcome == {"expanded": 26, "refused": 120}


@pytest.mark.parametrize("rule, construct", [
    ("FREQ=HOURLY;COUNT=3", "FREQ=HOURLY"),
    ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO;COUNT=3", "BYWEEKNO"),
    ("FREQ=YEARLY;BYYEARDAY=1,100;COUNT=3", "BYYEARDAY"),
    ("FREQ=YEARLY;BYMONTH=6,7;COUNT=3", "BYMONTH with several values"),
    ("FREQ=MONTHLY;BYMONTHDAY=1,15;COUNT=3", "BYMONTHDAY with several values"),
    ("FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=5;COUNT=3", "BYSETPOS=5"),
    ("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3", "BYMONTHDAY=31"),
])
def test_inexpressible_vector_rules_name_their_construct(rule, construct):
    case = {"line": 0, "RRULE": rule, "DTSTART": "19970101T090000"}
    with pytest.raises(UnsupportedObject) as info:
        event_plan(resource(case), "x.ics")
    assert construct in info.value.construct
