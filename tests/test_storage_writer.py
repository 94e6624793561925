"""storage/writer.py on the in-memory Graph calendar: idempotent creates, lookups before the
first write, refusals that write nothing, partial writes that say what was written."""

from __future__ import annotations

import datetime as dt

import pytest

from radicale_graph.graph.errors import PreconditionFailed, ServiceUnavailable
from radicale_graph.storage import writer
from radicale_graph.translation import UnsupportedObject, event_plan

from .memory_calendar import MemoryCalendar
from .test_storage_helpers import NOW, adopter, entry_of, ics, put, weekly

START = NOW - dt.timedelta(days=7)
WRITES = ("create", "update", "delete", "respond")


def _key(days: int) -> str:
    return (START + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _occurrence(master_id: str, days: int) -> str:
    return f"{master_id}.OCC.{(START + dt.timedelta(days=days)).date().isoformat()}"


def _plan(cal: MemoryCalendar, href: str, text: str):
    return event_plan(text, href, owner=cal.mailbox)


def _writes(cal: MemoryCalendar) -> list[str]:
    return [c.method for c in cal.calls if c.method in WRITES]


def test_create_of_a_single_event_is_one_post():
    cal = MemoryCalendar()
    text = ics("a", NOW)
    master, exceptions = put(cal, "a.ics", text)
    assert cal.methods() == ["create"] and exceptions == []
    assert cal.calls[0].args == (writer.transaction_id(cal.calendar_id, "a.ics", text),)
    assert cal.live_ids() == {master["id"]}
    assert entry_of(cal, master["id"]).href == "a.ics"  # the kept href


def test_create_of_a_series_applies_its_exceptions_after_one_lookup():
    cal = MemoryCalendar()
    text = weekly(start=START, exdates=(START + dt.timedelta(days=7),),
                  overrides=((START + dt.timedelta(days=14),
                              START + dt.timedelta(days=14, hours=2), "Moved"),))
    master, exceptions = put(cal, "s.ics", text)
    assert cal.methods() == ["create", "instances", "delete", "update"]
    assert cal.calls[2].args == (_occurrence(master["id"], 7),)
    assert cal.calls[3].args == (_occurrence(master["id"], 14),)
    assert [e["subject"] for e in exceptions] == ["Moved"]
    assert master["cancelledOccurrences"] == [
        f"OID.{master['id']}.{(START + dt.timedelta(days=7)).date().isoformat()}"]
    assert master["changeKey"] == cal.peek(master["id"])["changeKey"]
    entry = entry_of(cal, master["id"], "s.ics")
    assert entry.cancelled == {_key(7)} and set(entry.exceptions) == {_key(14)}


def test_a_create_retried_after_a_lost_answer_adopts_the_first_event():
    cal = MemoryCalendar()
    text = weekly(start=START, exdates=(START + dt.timedelta(days=7),))
    plan = _plan(cal, "s.ics", text)
    cal.fail("create", status=504, code="GatewayTimeout", after=True)  # made, answer lost
    with pytest.raises(ServiceUnavailable):
        writer.create(cal, "s.ics", text, plan, adopter(cal, "s.ics"))
    (first,) = cal.live_ids()
    assert cal.cancelled_starts(first) == set()  # the exceptions were never written
    cal.reset_calls()
    master, _ = writer.create(cal, "s.ics", text, plan, adopter(cal, "s.ics"))
    assert cal.methods() == ["create", "find_by_hrefs", "get_many", "instances", "update",
                             "delete"]
    assert master["id"] == first and cal.live_ids() == {first}
    assert cal.cancelled_starts(first) == {_key(7)}
    assert entry_of(cal, first, "s.ics").cancelled == {_key(7)}


def test_a_re_create_after_delete_gets_a_fresh_transaction_id_and_one_event():
    cal = MemoryCalendar()
    text = ics("a", NOW)
    first, _ = put(cal, "a.ics", text)
    cal.delete(first["id"])
    assert cal.peek(first["id"]) is not None  # readable by id, but not in the calendar
    cal.reset_calls()
    again, _ = put(cal, "a.ics", text)  # the client's undo: same href, same text
    assert cal.methods() == ["create", "find_by_hrefs", "create"]
    used, fresh = cal.calls[0].args[0], cal.calls[2].args[0]
    assert used == writer.transaction_id(cal.calendar_id, "a.ics", text)
    assert fresh.startswith(used + "-") and fresh != used
    assert again["id"] != first["id"] and cal.live_ids() == {again["id"]}


def test_update_looks_instances_up_before_the_first_write():
    cal = MemoryCalendar()
    master, _ = put(cal, "s.ics", weekly(start=START))
    entry = entry_of(cal, master["id"], "s.ics")
    text = weekly(start=START, exdates=(START + dt.timedelta(days=7),),
                  overrides=((START + dt.timedelta(days=14),
                              START + dt.timedelta(days=14, hours=2), "Moved"),))
    cal.reset_calls()
    got, exceptions = writer.update(cal, entry, _plan(cal, "s.ics", text), None)
    assert cal.methods() == ["instances", "update", "delete", "update"]
    assert [c.args[0] for c in cal.calls[1:]] == [
        master["id"], _occurrence(master["id"], 7), _occurrence(master["id"], 14)]
    assert [e["id"] for e in exceptions] == [_occurrence(master["id"], 14)]
    assert got["cancelledOccurrences"] == [
        f"OID.{master['id']}.{(START + dt.timedelta(days=7)).date().isoformat()}"]


def _moved_a_day_later(cal: MemoryCalendar, master_id: str) -> None:
    """Outlook moves the whole series one day later (the gateway has not seen it yet)."""
    later = START + dt.timedelta(days=1)
    rule = cal.peek(master_id)["recurrence"]
    rule["pattern"]["daysOfWeek"] = [later.strftime("%A").lower()]
    rule["range"]["startDate"] = later.date().isoformat()
    cal.outlook_update(master_id, {
        "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (later + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC"}, "recurrence": rule})


@pytest.mark.parametrize("kind", ["RECURRENCE-ID", "EXDATE"])
def test_a_recurrence_id_or_exdate_naming_no_occurrence_writes_nothing(kind):
    cal = MemoryCalendar()
    master, _ = put(cal, "s.ics", weekly(start=START))
    entry = entry_of(cal, master["id"], "s.ics")  # what the client and the cache hold
    day = START + dt.timedelta(days=14)
    if kind == "RECURRENCE-ID":
        cal.outlook_delete(_occurrence(master["id"], 14))  # cancelled in Outlook meanwhile
        text = weekly(start=START, overrides=((day, day + dt.timedelta(hours=2), "Later"),))
    else:
        _moved_a_day_later(cal, master["id"])
        text = weekly(start=START, exdates=(day,))
    before = cal.peek(master["id"])
    plan = _plan(cal, "s.ics", text.replace("SUMMARY:Weekly", "SUMMARY:Changed", 1))
    cal.reset_calls()
    with pytest.raises(UnsupportedObject) as info:
        writer.update(cal, entry, plan, None)
    assert info.value.construct == f"RECURRENCE-ID or EXDATE {_key(14)}"
    assert "names no occurrence" in info.value.reason
    assert _writes(cal) == []
    assert cal.methods() == (["instances"] if kind == "RECURRENCE-ID"
                             else ["instances", "get_many"])  # is it cancelled already?
    assert cal.peek(master["id"]) == before  # nothing changed, not even the changeKey


def test_an_exdate_graph_already_holds_is_not_written_again():
    cal = MemoryCalendar()
    master, _ = put(cal, "s.ics", weekly(start=START))
    entry = entry_of(cal, master["id"], "s.ics")
    cal.outlook_delete(_occurrence(master["id"], 14))  # cancelled in Outlook, not yet seen
    cal.reset_calls()
    plan = _plan(cal, "s.ics", weekly(start=START, exdates=(START + dt.timedelta(days=14),)))
    got, _ = writer.update(cal, entry, plan, None)
    assert cal.methods() == ["instances", "get_many", "update"]  # no DELETE of it
    assert cal.cancelled_starts(master["id"]) == {_key(14)}
    assert got["cancelledOccurrences"] == [
        f"OID.{master['id']}.{(START + dt.timedelta(days=14)).date().isoformat()}"]


def test_removing_an_exdate_is_refused_before_any_request():
    cal = MemoryCalendar()
    master, _ = put(cal, "s.ics", weekly(start=START, exdates=(START + dt.timedelta(days=7),)))
    entry = entry_of(cal, master["id"], "s.ics")
    cal.reset_calls()
    with pytest.raises(UnsupportedObject) as info:
        writer.update(cal, entry, _plan(cal, "s.ics", weekly(start=START)), None)
    assert info.value.construct == f"removal of EXDATE {_key(7)}"
    assert cal.calls == []


def test_a_failed_exception_write_raises_partial_write_naming_what_was_written():
    cal = MemoryCalendar()
    master, _ = put(cal, "s.ics", weekly(start=START))
    entry = entry_of(cal, master["id"], "s.ics")
    text = weekly(start=START, overrides=((START + dt.timedelta(days=14),
                                           START + dt.timedelta(days=14, hours=2), "Moved"),))
    plan = _plan(cal, "s.ics", text.replace("SUMMARY:Weekly", "SUMMARY:Renamed", 1))
    cal.fail("update", match=_occurrence(master["id"], 14))
    cal.reset_calls()
    with pytest.raises(writer.PartialWrite) as info:
        writer.update(cal, entry, plan, None)
    assert info.value.event_id == master["id"]
    assert "'series-1' was updated (its master" in str(info.value)
    assert "not all of its exceptions" in str(info.value)
    assert info.value.cause.status == 500
    assert cal.methods() == ["instances", "update", "update"]
    assert cal.peek(master["id"])["subject"] == "Renamed"  # the master was written
    assert cal.exception_data(master["id"]) == {}           # the override was not


def test_a_failed_exception_write_on_create_rolls_the_series_back():
    cal = MemoryCalendar()
    text = weekly(start=START, overrides=((START + dt.timedelta(days=14),
                                           START + dt.timedelta(days=14, hours=2), "Moved"),))
    cal.fail("update")
    with pytest.raises(writer.PartialWrite) as info:
        put(cal, "s.ics", text)
    assert info.value.event_id is None
    assert "was not stored (rolled back)" in str(info.value)
    assert cal.methods() == ["create", "instances", "update", "delete"]
    assert cal.live_ids() == set()


def test_a_failed_rollback_names_the_event_left_behind():
    cal = MemoryCalendar()
    text = weekly(start=START, overrides=((START + dt.timedelta(days=14),
                                           START + dt.timedelta(days=14, hours=2), "Moved"),))
    cal.fail("update")
    cal.fail("delete")
    with pytest.raises(writer.PartialWrite) as info:
        put(cal, "s.ics", text)
    (left,) = cal.live_ids()
    assert info.value.event_id == left
    assert "removing it again failed" in str(info.value)


def test_update_with_a_stale_if_match_writes_nothing():
    cal = MemoryCalendar()
    master, _ = put(cal, "a.ics", ics("a", NOW))
    entry = entry_of(cal, master["id"], "a.ics")
    cal.housekeep(master["id"])
    plan = _plan(cal, "a.ics", ics("a", NOW, summary="Renamed"))
    with pytest.raises(PreconditionFailed):
        writer.update(cal, entry, plan, entry.odata_etag)
    assert cal.peek(master["id"])["subject"] == "Meeting"
    fresh = entry_of(cal, master["id"], "a.ics")
    got, _ = writer.update(cal, fresh, plan, fresh.odata_etag)
    assert got["subject"] == "Renamed" and cal.peek(master["id"])["subject"] == "Renamed"
