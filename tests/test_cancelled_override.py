"""A RECURRENCE-ID override with STATUS:CANCELLED is stored as a cancelled occurrence (issue 9).

RFC 5545 3.8.1.11 (STATUS) makes STATUS:CANCELLED on an override (3.8.4.4, RECURRENCE-ID) the
client's way of cancelling that occurrence, as an EXDATE (3.8.5.1) does. Graph holds a
cancelled occurrence (resources/event.md: the master's ``cancelledOccurrences``), so the plan
cancels it (the writer DELETEs the instance) and keeps the client's VEVENT verbatim in the
kept data, so the client reads back what it wrote; a cancellation made in Outlook (nothing
kept) reads back as EXDATE. Bringing a cancelled occurrence back is what Graph cannot do: it
is refused before any write, naming the occurrence.

Unit tests (translation alone, the writer on the in-memory calendar), a round trip through
the emulator by the storage's own writer, and one through CalDAV (the ``gateway`` fixture).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import icalendar
import pytest

from radicale_graph.storage import writer
from radicale_graph.storage.loader import translate
from radicale_graph.translation import (
    UnsupportedObject,
    check_against,
    event_plan,
    extended,
    kept,
    to_resource,
)

from .memory_calendar import MemoryCalendar
from .test_roundtrip_helpers import (
    EmulatorCalendar,
    emulator_of_its_own,
    graph_client,
    occurrences,
    vevent_items,
    without_kept,
)
from .test_storage_helpers import adopter, entry_of
from .test_translation import as_stored

own_emulator = pytest.fixture(scope="module")(emulator_of_its_own)

ALICE = "alice@contoso.com"
ALICE_CAL = "/alice@contoso.com/calendar/"
# The second Monday of the series: 2027-03-08 09:00 Europe/Berlin = 08:00 UTC.
KEY = "2027-03-08T08:00:00Z"
THIRD = "2027-03-15T08:00:00Z"
PLAIN = ["DTSTART;TZID=Europe/Berlin:20270308T090000",
         "DTEND;TZID=Europe/Berlin:20270308T100000", "SUMMARY:Weekly"]
CANCELLED = PLAIN + ["STATUS:CANCELLED"]
# Cancelled and changed besides: moved past the next occurrence's day (which Graph refuses
# for a live exception), retitled, a location, a priority, an unknown property, an alarm.
CHANGED = ["DTSTART;TZID=Europe/Berlin:20270316T113000",
           "DTEND;TZID=Europe/Berlin:20270316T123000", "SUMMARY:Moved and called off",
           "LOCATION:Room 9", "PRIORITY:1", "STATUS:CANCELLED", "X-REASON:holiday",
           "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Soon",
           "TRIGGER:-PT10M", "END:VALARM"]


def series(uid: str = "cancel-1", override: list[str] | None = None,
           master: tuple[str, ...] = ()) -> str:
    """A weekly series of four Mondays from 2027-03-01 09:00 Berlin, with an override of the
    second occurrence (its lines after RECURRENCE-ID; None: no override) and extra master
    lines."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20270101T000000Z",
             "DTSTART;TZID=Europe/Berlin:20270301T090000",
             "DTEND;TZID=Europe/Berlin:20270301T100000", "RRULE:FREQ=WEEKLY;COUNT=4",
             "SUMMARY:Weekly", *master, "END:VEVENT"]
    if override is not None:
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270101T000000Z",
                  "RECURRENCE-ID;TZID=Europe/Berlin:20270308T090000", *override,
                  "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def overrides(text: str) -> list:
    return [e for e in icalendar.Calendar.from_ical(text).walk("VEVENT")
            if "RECURRENCE-ID" in e]


def exdates(text: str) -> list[str]:
    master = [e for e in icalendar.Calendar.from_ical(text).walk("VEVENT")
              if "RECURRENCE-ID" not in e][0]
    raw = master.get("EXDATE")
    groups = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return sorted(v.dt.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                  for g in groups for v in g.dts)


def stored(plan, cancelled_days: tuple[str, ...] = ("2027-03-08",)) -> dict:
    """What Graph returns for the plan's master once the occurrences on ``cancelled_days``
    were deleted (``cancelledOccurrences``, resources/event.md)."""
    master = as_stored(plan.master)
    master["cancelledOccurrences"] = [f"OID.AAMk-1.{day}" for day in cancelled_days]
    return master


# -- translation ---------------------------------------------------------------------------


def test_a_cancelled_override_is_planned_as_a_cancelled_occurrence():
    plan = event_plan(series(override=CANCELLED), "s.ics")
    check_against(plan, None)
    assert plan.cancelled == [KEY]
    assert plan.overrides == {}
    assert not plan.status_cancelled  # the series itself is not cancelled
    data = kept.decode(extended.read(plan.master).get(extended.KEPT_PROPERTY))
    entry = data["o"][KEY]
    assert "STATUS:CANCELLED" in entry["d"] and "SUMMARY:Weekly" in entry["d"]
    assert not any(t.startswith(("UID", "DTSTAMP")) for t in entry["d"])


def test_a_cancelled_override_reads_back_as_written():
    text = series(override=CANCELLED)
    back = to_resource(stored(event_plan(text, "s.ics"))).text
    assert vevent_items(back) == vevent_items(text)
    assert occurrences(back) == occurrences(text)
    assert exdates(back) == []


def test_a_cancellation_made_in_outlook_reads_back_as_exdate():
    back = to_resource(stored(event_plan(series(), "s.ics"))).text
    assert exdates(back) == [KEY]
    assert overrides(back) == []


def test_without_the_kept_data_a_cancelled_override_reads_back_as_exdate():
    master = without_kept(stored(event_plan(series(override=CANCELLED), "s.ics")))
    back = to_resource(master).text
    assert exdates(back) == [KEY]
    assert overrides(back) == []


def test_a_cancelled_override_is_not_shown_when_graph_no_longer_cancels_it():
    # e.g. the series was rebuilt in Outlook: Graph's occurrences win.
    master = stored(event_plan(series(override=CANCELLED), "s.ics"), cancelled_days=())
    back = to_resource(master).text
    assert overrides(back) == [] and exdates(back) == []


def test_another_cancellation_in_outlook_shows_as_exdate_beside_the_kept_override():
    plan = event_plan(series(override=CANCELLED), "s.ics")
    back = to_resource(stored(plan, ("2027-03-08", "2027-03-15"))).text
    assert exdates(back) == [THIRD]
    [override] = overrides(back)
    assert str(override["STATUS"]) == "CANCELLED"


def test_a_cancelled_override_with_other_changes_is_stored_cancelled_and_kept_verbatim():
    text = series(override=CHANGED)
    plan = event_plan(text, "s.ics")
    assert plan.cancelled == [KEY] and plan.overrides == {}
    back = to_resource(stored(plan)).text
    assert vevent_items(back) == vevent_items(text)
    [override] = overrides(back)
    assert str(override["LOCATION"]) == "Room 9"
    assert override.walk("VALARM")


def test_a_cancelled_override_of_an_exdate_occurrence_is_one_cancellation():
    text = series(override=CANCELLED, master=("EXDATE;TZID=Europe/Berlin:20270308T090000",))
    plan = event_plan(text, "s.ics")
    assert plan.cancelled == [KEY]
    assert vevent_items(to_resource(stored(plan)).text) == vevent_items(text)


def test_a_live_override_of_an_exdate_occurrence_is_still_refused():
    text = series(override=PLAIN, master=("EXDATE;TZID=Europe/Berlin:20270308T090000",))
    with pytest.raises(UnsupportedObject, match="of an EXDATE occurrence"):
        event_plan(text, "s.ics")


def test_a_cancelled_override_naming_no_occurrence_is_refused():
    text = series(override=CANCELLED).replace("RECURRENCE-ID;TZID=Europe/Berlin:20270308",
                                              "RECURRENCE-ID;TZID=Europe/Berlin:20270309")
    with pytest.raises(UnsupportedObject, match="that is not an occurrence"):
        event_plan(text, "s.ics")


def test_a_cancelled_override_without_its_series_is_refused():
    text = series(override=CANCELLED)
    only = text.replace(text[text.index("BEGIN:VEVENT"):text.index("END:VEVENT") + 12], "")
    with pytest.raises(UnsupportedObject, match="without its series"):
        event_plan(only, "s.ics")


# -- the writer on the in-memory calendar ----------------------------------------------------


def _put(cal: MemoryCalendar, text: str) -> dict:
    plan = event_plan(text, "s.ics", owner=cal.mailbox)
    master, _ = writer.create(cal, "s.ics", text, plan, adopter(cal, "s.ics"))
    return master


def test_the_writer_deletes_the_cancelled_occurrence():
    cal = MemoryCalendar()
    master = _put(cal, series(override=CANCELLED))
    assert cal.methods() == ["create", "instances", "delete"]
    assert cal.cancelled_starts(master["id"]) == {KEY}
    assert master["cancelledOccurrences"] == [f"OID.{master['id']}.2027-03-08"]
    entry = entry_of(cal, master["id"], "s.ics")
    assert vevent_items(entry.text) == vevent_items(series(override=CANCELLED))


def test_cancelling_an_existing_exception_deletes_it():
    cal = MemoryCalendar()
    changed = PLAIN[:2] + ["SUMMARY:Changed"]
    master = _put(cal, series(override=changed))
    entry = entry_of(cal, master["id"], "s.ics")
    cal.reset_calls()
    text = series(override=changed + ["STATUS:CANCELLED"])
    plan = event_plan(text, "s.ics", owner=cal.mailbox)
    got, exceptions = writer.update(cal, entry, plan, None)
    assert [c.method for c in cal.calls if c.method in ("update", "delete")] == [
        "update", "delete"]
    assert exceptions == [] and cal.cancelled_starts(master["id"]) == {KEY}
    assert vevent_items(entry_of(cal, master["id"], "s.ics").text) == vevent_items(text)


@pytest.mark.parametrize("again", [PLAIN + ["STATUS:CONFIRMED"], PLAIN, None],
                         ids=["confirmed", "no-status", "override-removed"])
def test_un_cancelling_is_refused_before_any_request_naming_the_occurrence(again):
    cal = MemoryCalendar()
    master = _put(cal, series(override=CANCELLED))
    entry = entry_of(cal, master["id"], "s.ics")
    cal.reset_calls()
    plan = event_plan(series(override=again), "s.ics", owner=cal.mailbox)
    with pytest.raises(UnsupportedObject) as info:
        writer.update(cal, entry, plan, None)
    assert KEY in info.value.construct
    assert info.value.construct == (f"RECURRENCE-ID {KEY} no longer STATUS:CANCELLED"
                                    if again else f"removal of EXDATE {KEY}")
    assert "cannot restore a cancelled occurrence" in info.value.reason
    assert cal.calls == []


# -- through the emulator, by the storage's own writer -------------------------------------


@pytest.mark.parametrize("override", [CANCELLED, CHANGED], ids=["cancelled", "changed"])
def test_round_trip_through_the_emulator_reads_back_the_same_text(own_emulator, override):
    calendar = EmulatorCalendar(graph_client(own_emulator), ALICE)
    text = series(f"emu-{uuid.uuid4()}", override=override)
    plan = event_plan(text, "e.ics", owner=ALICE)
    written, written_exceptions = calendar.write("e.ics", text, plan)
    try:
        master, exceptions = calendar.read(written["id"])
        assert len(master["cancelledOccurrences"]) == 1
        assert master["cancelledOccurrences"][0].endswith(".2027-03-08")
        assert exceptions == []
        entry = translate(master, exceptions, frozenset(), href="e.ics", owner=ALICE)
        assert vevent_items(entry.text) == vevent_items(text)
        assert occurrences(entry.text) == occurrences(text)
        answered = translate({"singleValueExtendedProperties":
                              plan.master["singleValueExtendedProperties"], **written},
                             written_exceptions, frozenset(), href="e.ics", owner=ALICE)
        assert answered.etag == entry.etag
        plain = translate(without_kept(master), [], frozenset(), href="e.ics", owner=ALICE)
        assert exdates(plain.text) == [KEY] and overrides(plain.text) == []
    finally:
        calendar.delete(written["id"])


# -- through CalDAV --------------------------------------------------------------------------


def _master(emulator, uid: str) -> dict:
    """Graph's series master with the kept ``uid`` (read by id from the emulator's store)."""
    store = emulator.store
    for record in store.records(ALICE, None):
        ext = {v[0].lower(): v[1] for v in record.ext.values()}
        if uid in ext.values():
            data, _ = store.full(record, None)
            return store.get_event(ALICE, data["id"])
    raise AssertionError(uid)


def test_caldav_put_of_a_cancelled_override_is_stored_and_un_cancelling_is_refused(gateway):
    session = gateway.session()
    uid = f"cancel-{uuid.uuid4()}"
    url = f"{gateway.url}{ALICE_CAL}{uid}.ics"
    text = series(uid, override=CANCELLED)
    put = session.put(url, data=text, headers={"If-None-Match": "*"})
    assert put.status_code == 201, put.text
    master = _master(gateway.emulator, uid)
    assert master["cancelledOccurrences"] == [f"OID.{master['id']}.2027-03-08"]
    got = session.get(url)
    assert got.status_code == 200
    [override] = overrides(got.text)
    assert str(override["STATUS"]) == "CANCELLED"
    assert vevent_items(got.text) == vevent_items(text)

    refused = session.put(url, data=series(uid, override=PLAIN + ["STATUS:CONFIRMED"]))
    assert refused.status_code == 403, refused.text
    assert KEY in refused.text and "restore a cancelled occurrence" in refused.text
    after = _master(gateway.emulator, uid)
    assert after["cancelledOccurrences"] == master["cancelledOccurrences"]
    assert after["changeKey"] == master["changeKey"]
    time.sleep(1.1)  # past refresh_interval: the next GET reads Graph again
    got = session.get(url)
    [override] = overrides(got.text)
    assert str(override["STATUS"]) == "CANCELLED"
    assert vevent_items(got.text) == vevent_items(text)


# -- a refusal revisited: EXDATE on a non-recurring event -----------------------------------


SINGLE = ["DTSTART;TZID=Europe/Berlin:20270301T090000",
          "DTEND;TZID=Europe/Berlin:20270301T100000", "SUMMARY:Once"]


def single(*extra: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
             "UID:single-1", "DTSTAMP:20270101T000000Z", *SINGLE, *extra, "END:VEVENT",
             "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def test_an_exdate_naming_no_occurrence_of_a_single_event_is_kept_as_text():
    text = single("EXDATE;TZID=Europe/Berlin:20270302T090000")
    plan = event_plan(text, "one.ics")
    assert plan.cancelled == [] and not plan.is_series
    assert vevent_items(to_resource(as_stored(plan.master)).text) == vevent_items(text)


@pytest.mark.parametrize("exdate", ["EXDATE;TZID=Europe/Berlin:20270301T090000",
                                    "EXDATE:20270301T080000Z", "EXDATE;VALUE=DATE:20270301"])
def test_an_exdate_naming_the_start_of_a_single_event_is_refused(exdate):
    with pytest.raises(UnsupportedObject, match="EXDATE of the only occurrence"):
        event_plan(single(exdate), "one.ics")
