"""Round trip iCalendar -> Graph -> iCalendar for every event in ../shared/fixtures/ics/.

Each file is split into resources as a client would PUT them (one per UID). Each resource is
planned (owner: its ORGANIZER, whose own client stores it in their own calendar, else Alice),
written to the Graph emulator over HTTPS by the storage's own writer (``storage.writer.create``
over ``storage.graph_events.CalendarEvents`` and the project's GraphClient: POST the master,
look the instances up, DELETE cancelled occurrences, PATCH overrides), read back by id
(``CalendarEvents.get_many``, as the loader reads series masters) and translated with
``storage.loader.translate``. Then:

- the writer's own answer (what a PUT puts into the cache) translates to the same ETag as the
  read by id (what the next refresh installs);
- exact: the VEVENTs' lines are equal (the store's DTSTAMP/LAST-MODIFIED aside) and so are
  the occurrences over ten years (recurring-ical-events); and, from Graph's values alone
  (nothing kept), the occurrences and the meaning of every mapped property are equal too;
- refused: ``UnsupportedObject`` names a construct from the refusal list;
- malformed: the file does not parse.
Nothing may be lost silently. The test prints each resource with its outcome.
"""

from __future__ import annotations

import re
from collections import Counter

import icalendar
import pytest

from radicale_graph.storage.loader import translate
from radicale_graph.translation import UnsupportedObject, check_against, event_plan, lines

from .test_roundtrip_helpers import (
    EmulatorCalendar,
    all_fixture_resources,
    emulator_of_its_own,
    ensure_mailbox,
    event_validator,
    graph_client,
    meaning,
    occurrences,
    schema_errors,
    vevent_items,
    without_kept,
)

own_emulator = pytest.fixture(scope="module")(emulator_of_its_own)

ALICE = "alice@contoso.com"
# Constructs a refusal may name (docs/mapping.md, "Refused"): what Graph cannot hold, and
# objects RFC 5545 / RFC 4791 do not allow.
REFUSALS = re.compile(
    r"^(RDATE|EXRULE|several RRULEs|RRULE .*|DTSTART that is not an occurrence of its RRULE"
    r"|VTODO|VJOURNAL|VFREEBUSY|VCALENDAR without VEVENT|VEVENT without (UID|DTSTART)"
    r"|DTSTART as DATE(-TIME)? with DTEND as DATE(-TIME)?|DTEND before DTSTART"
    r"|RECURRENCE-ID override without its series|RECURRENCE-ID;RANGE=THISANDFUTURE"
    r"|(RRULE|RDATE|EXDATE|EXRULE) in a RECURRENCE-ID override|ATTENDEE .*|ORGANIZER .*"
    r"|RECURRENCE-ID or EXDATE with VALUE=DATE|STATUS:CANCELLED.*|VTIMEZONE .*)$")
# Outcomes counted when this test was written (see the printed table for each resource). A
# refusal lifted (issue 9: STATUS:CANCELLED overrides stored) may only turn into "exact".
EXPECTED = {"exact": 51, "refused": 95, "malformed": 8}


def _owner(text: str) -> str:
    for event in icalendar.Calendar.from_ical(text).walk("VEVENT"):
        if "ORGANIZER" in event:
            address = lines.address_of(event["ORGANIZER"])
            if "@" in address:
                return address
    return ALICE


def every_tzid_has_a_vtimezone(text: str) -> bool:
    calendar = icalendar.Calendar.from_ical(text)
    defined = {str(z["TZID"]) for z in calendar.walk("VTIMEZONE")}
    return calendar.get_used_tzids() - {"UTC"} <= defined


def _without(found: dict, address: str) -> dict:
    for value in found.values():
        value["attendees"].pop(address, None)
    return found


def _entry(master: dict, exceptions: list[dict], href: str, owner: str):
    """The cache entry the storage makes of a Graph master and its exceptions."""
    entry = translate(master, exceptions, frozenset(), href=href, owner=owner)
    assert entry is not None, (href, master.get("id"))
    return entry


def test_every_fixture_round_trips_exactly_or_is_refused_with_a_reason(own_emulator):
    client = graph_client(own_emulator)
    calendars: dict[str, EmulatorCalendar] = {}
    validator = event_validator()
    outcome: Counter = Counter()
    refusals: Counter = Counter()
    table = []
    lost = []
    for number, (label, text) in enumerate(all_fixture_resources()):
        href = f"fixture-{number}.ics"
        if text is None:
            outcome["malformed"] += 1
            table.append((label, "malformed"))
            continue
        owner = ensure_mailbox(own_emulator, _owner(text))
        try:
            plan = event_plan(text, href, "UTC", owner=owner)
            check_against(plan, None)
        except UnsupportedObject as exc:
            assert REFUSALS.match(exc.construct), (label, exc.construct)
            assert exc.precondition in ("valid-calendar-object-resource",
                                        "supported-calendar-component",
                                        "supported-calendar-data"), exc.precondition
            outcome["refused"] += 1
            refusals[re.sub(r"[ =:;].*", "", exc.construct)] += 1
            table.append((label, f"refused: {exc.construct}"))
            continue
        for body in [plan.master, *plan.overrides.values()]:
            assert not schema_errors(validator, body), (label, schema_errors(validator, body))
        calendar = calendars.get(owner) or calendars.setdefault(
            owner, EmulatorCalendar(client, owner))
        written, written_exceptions = calendar.write(href, text, plan)
        try:
            master, exceptions = calendar.read(written["id"])
        finally:
            calendar.delete(written["id"])
        entry = _entry(master, exceptions, href, owner)
        back = entry.text
        plain = _entry(without_kept(master), [without_kept(e) for e in exceptions], href,
                      owner).text
        # What upload() caches from the writer's answer (the kept properties it wrote).
        sent = plan.master or next(iter(plan.overrides.values()), {})
        answered = _entry({"singleValueExtendedProperties":
                          sent.get("singleValueExtendedProperties") or [], **written},
                         written_exceptions, href, owner)
        problems = []
        if answered.etag != entry.etag:
            problems.append("the writer's answer differs from the read by id")
        if not every_tzid_has_a_vtimezone(back):
            problems.append("a TZID without VTIMEZONE")
        if vevent_items(back) != vevent_items(text):
            problems.append("lines differ")
        if occurrences(back) != occurrences(text):
            problems.append("occurrences differ")
        if {o[:2] for o in occurrences(plain)} != {o[:2] for o in occurrences(text)}:
            problems.append("Graph's occurrences differ")
        if _without(meaning(plain), owner) != _without(meaning(text), owner):
            problems.append("Graph's values differ")
        if problems:
            lost.append((label, problems))
            table.append((label, "LOST: " + ", ".join(problems)))
        else:
            outcome["exact"] += 1
            table.append((label, "exact"))
    print("\nfixture round trips:")
    for label, result in table:
        print(f"  {label[:78]:78} {result}")
    print(f"outcome: {dict(outcome)}, lost silently: {len(lost)}")
    print(f"refused by construct: {dict(refusals)}")
    assert not lost, lost
    assert outcome["malformed"] == EXPECTED["malformed"]
    assert outcome["exact"] >= EXPECTED["exact"]
    assert outcome["exact"] + outcome["refused"] == EXPECTED["exact"] + EXPECTED["refused"]
