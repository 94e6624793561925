"""Helpers of the storage unit tests (small iCalendar texts, writes through the real writer,
cache entries), and tests that the in-memory Graph calendar (tests/memory_calendar.py) keeps
the strict Graph v1.0 behaviours the storage relies on (docs/emulator.md)."""

from __future__ import annotations

import datetime as dt

import pytest

from radicale_graph.graph.errors import BadRequest, GraphError, NotFound, PreconditionFailed
from radicale_graph.storage import writer
from radicale_graph.storage.cache import CachedEvent
from radicale_graph.storage.loader import translate
from radicale_graph.translation import event_plan

from .memory_calendar import MemoryCalendar

# Today 10:00 UTC: events near it are inside a delta round's window (90 days each way).
NOW = dt.datetime.now(dt.UTC).replace(hour=10, minute=0, second=0, microsecond=0)


def stamp(value: dt.datetime) -> str:
    """iCalendar UTC DATE-TIME text."""
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def ics(uid: str, start: dt.datetime, summary: str = "Meeting", rrule: str | None = None,
        exdates: tuple[dt.datetime, ...] = (),
        overrides: tuple[tuple[dt.datetime, dt.datetime, str], ...] = (),
        stamp_at: str = "20260101T000000Z") -> str:
    """A one-hour VEVENT (UTC times), optionally a series with EXDATEs and overrides given
    as (RECURRENCE-ID, new start, SUMMARY)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", "BEGIN:VEVENT",
             f"UID:{uid}", f"DTSTAMP:{stamp_at}", f"DTSTART:{stamp(start)}",
             f"DTEND:{stamp(start + dt.timedelta(hours=1))}", f"SUMMARY:{summary}"]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [f"EXDATE:{stamp(d)}" for d in exdates]
    lines.append("END:VEVENT")
    for recurrence_id, moved, title in overrides:
        lines += ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{stamp_at}",
                  f"RECURRENCE-ID:{stamp(recurrence_id)}", f"DTSTART:{stamp(moved)}",
                  f"DTEND:{stamp(moved + dt.timedelta(hours=1))}", f"SUMMARY:{title}",
                  "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def adopter(cal: MemoryCalendar, href: str):
    """The ``adopt`` callback the storage passes to ``writer.create``."""
    def adopt(event: dict) -> CachedEvent | None:
        return translate(event, list(event.get("exceptionOccurrences") or []), frozenset(),
                         href=href, owner=cal.mailbox)
    return adopt


def put(cal: MemoryCalendar, href: str, text: str) -> tuple[dict, list[dict]]:
    """A new resource written as the storage writes it (``writer.create``)."""
    plan = event_plan(text, href, owner=cal.mailbox)
    return writer.create(cal, href, text, plan, adopter(cal, href))


def entry_of(cal: MemoryCalendar, event_id: str, href: str | None = None) -> CachedEvent:
    """The cache entry of an event as a read by id shows it (no call logged)."""
    event = cal.peek(event_id)
    assert event is not None
    entry = translate(event, list(event.get("exceptionOccurrences") or []), frozenset(),
                      href=href, owner=cal.mailbox)
    assert entry is not None
    return entry


def weekly(uid: str = "series-1", start: dt.datetime | None = None, count: int = 6,
           **kwargs) -> str:
    """A weekly series of ``count`` one-hour occurrences."""
    return ics(uid, start or NOW - dt.timedelta(days=7), "Weekly",
               rrule=f"FREQ=WEEKLY;COUNT={count}", **kwargs)


# -- the double behaves as Graph v1.0 -------------------------------------------------------


def test_a_used_transaction_id_is_refused_also_after_deletion():
    cal = MemoryCalendar()
    body = event_plan(ics("a", NOW), "a.ics").master
    created = cal.create(body, "txn-1")
    with pytest.raises(BadRequest) as info:
        cal.create(body, "txn-1")
    assert (info.value.status, info.value.code) == (400, "ErrorDuplicateTransactionId")
    assert writer.is_duplicate_transaction(info.value)
    cal.delete(created["id"])
    with pytest.raises(BadRequest):
        cal.create(body, "txn-1")
    assert cal.live_ids() == set()


def test_exceptions_and_cancellations_only_in_a_read_by_id():
    cal = MemoryCalendar()
    start = NOW - dt.timedelta(days=7)
    master, _ = put(cal, "s.ics", weekly(exdates=(start + dt.timedelta(days=7),),
                                         overrides=((start + dt.timedelta(days=14),
                                                     start + dt.timedelta(days=14, hours=2),
                                                     "Moved"),)))
    by_id = cal.get_many([master["id"]])[master["id"]]
    assert by_id["cancelledOccurrences"] == [
        f"OID.{master['id']}.{(start + dt.timedelta(days=7)).date().isoformat()}"]
    assert [e["subject"] for e in by_id["exceptionOccurrences"]] == ["Moved"]
    assert cal.get(master["id"])["cancelledOccurrences"] == by_id["cancelledOccurrences"]
    listed = list(cal.list_masters())
    assert [e["id"] for e in listed] == [master["id"]]
    assert "cancelledOccurrences" not in listed[0]
    assert "exceptionOccurrences" not in listed[0]
    found = cal.find_by_hrefs(["s.ics"])["s.ics"]
    assert [e["id"] for e in found] == [master["id"]]
    assert "cancelledOccurrences" not in found[0] and "exceptionOccurrences" not in found[0]
    answer = cal.create(event_plan(weekly("series-2"), "t.ics").master, "txn-2")
    assert "cancelledOccurrences" not in answer and "exceptionOccurrences" not in answer
    assert "singleValueExtendedProperties" not in answer  # POST answers expand nothing


def test_change_key_moves_on_every_write_and_housekeeping_only_moves_it():
    cal = MemoryCalendar()
    master, _ = put(cal, "a.ics", ics("a", NOW))
    first = cal.peek(master["id"])
    cal.housekeep(master["id"])
    second = cal.peek(master["id"])
    assert second["changeKey"] != first["changeKey"]
    assert second["@odata.etag"] == f'W/"{second["changeKey"]}"'
    assert second["lastModifiedDateTime"] > first["lastModifiedDateTime"]
    same = ("changeKey", "@odata.etag", "lastModifiedDateTime")
    assert {k: v for k, v in first.items() if k not in same} == {
        k: v for k, v in second.items() if k not in same}
    cal.update(master["id"], {"subject": "Renamed"})
    assert cal.peek(master["id"])["changeKey"] not in (first["changeKey"],
                                                       second["changeKey"])


def test_if_match_must_name_the_current_etag():
    cal = MemoryCalendar()
    master, _ = put(cal, "a.ics", ics("a", NOW))
    stale = master["@odata.etag"]
    cal.housekeep(master["id"])
    with pytest.raises(PreconditionFailed) as info:
        cal.update(master["id"], {"subject": "x"}, stale)
    assert info.value.status == 412
    with pytest.raises(PreconditionFailed):
        cal.delete(master["id"], stale)
    assert cal.peek(master["id"])["subject"] == "Meeting"
    cal.delete(master["id"], cal.peek(master["id"])["@odata.etag"])
    assert cal.live_ids() == set()


def test_deleted_events_are_readable_by_id_only():
    cal = MemoryCalendar()
    master, _ = put(cal, "s.ics", weekly())
    cal.delete(master["id"])
    assert cal.get_many([master["id"]])[master["id"]]["id"] == master["id"]
    assert cal.get(master["id"])["subject"] == "Weekly"
    assert list(cal.list_masters()) == [] and list(cal.list_keys()) == []
    assert cal.find_by_hrefs(["s.ics"]) == {"s.ics": []}
    with pytest.raises(NotFound):
        cal.instances(master["id"], NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=30))
    with pytest.raises(NotFound):
        cal.update(master["id"], {"subject": "x"})
    cal.purge(master["id"])
    assert cal.get_many([master["id"]]) == {master["id"]: None}


def test_delta_reports_instances_changes_and_removals():
    cal = MemoryCalendar(page_size=2)
    single, _ = put(cal, "a.ics", ics("a", NOW + dt.timedelta(days=1)))
    series, _ = put(cal, "s.ics", weekly(count=3))
    far, _ = put(cal, "far.ics", ics("far", NOW + dt.timedelta(days=400)))
    start, end = NOW - dt.timedelta(days=90), NOW + dt.timedelta(days=90)
    pages = list(cal.view_delta_pages(start, end))
    assert len(pages) == 2 and "@odata.nextLink" in pages[0]
    assert all("@odata.deltaLink" not in p for p in pages[:-1])
    items = [i for p in pages for i in p["value"]]
    occurrences = [i for i in items if i.get("seriesMasterId") == series["id"]]
    assert len(occurrences) == 3 and {i["type"] for i in occurrences} == {"occurrence"}
    assert {i["id"] for i in items} == {single["id"]} | {i["id"] for i in occurrences}
    assert all(i.get("type") != "seriesMaster" for i in items)
    link = pages[-1]["@odata.deltaLink"]
    pages = list(cal.view_delta_pages(None, None, link))
    assert [i for p in pages for i in p["value"]] == []
    cal.outlook_update(single["id"], {"subject": "Changed"})
    cal.outlook_delete(occurrences[0]["id"])       # cancels that occurrence
    cal.outlook_update(far["id"], {"subject": "Far"})  # outside the window
    pages = list(cal.view_delta_pages(None, None, pages[-1]["@odata.deltaLink"]))
    items = [i for p in pages for i in p["value"]]
    removed = {i["id"] for i in items if "@removed" in i}
    assert removed == {occurrences[0]["id"], far["id"]}
    changed = {i["id"]: i for i in items if "@removed" not in i}
    assert changed[single["id"]]["subject"] == "Changed"
    assert set(changed) == {single["id"]} | {i["id"] for i in occurrences[1:]}
    cal.expire()
    with pytest.raises(GraphError) as info:
        list(cal.view_delta_pages(None, None, pages[-1]["@odata.deltaLink"]))
    assert (info.value.status, info.value.code) == (410, "syncStateNotFound")
