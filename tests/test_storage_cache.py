"""storage/cache.py: CalendarCache lookups and freshness, ETags, entries made from Graph events
(written to and read from the in-memory Graph calendar)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from radicale_graph.storage.cache import CalendarCache, etag_for

from .memory_calendar import MemoryCalendar
from .test_storage_helpers import NOW, entry_of, ics, put, stamp, weekly


def _entries():
    cal = MemoryCalendar()
    one, _ = put(cal, "one.ics", ics("uid-one", NOW))
    two, _ = put(cal, "two.ics", ics("uid-two", NOW + dt.timedelta(days=1)))
    return entry_of(cal, one["id"], "one.ics"), entry_of(cal, two["id"], "two.ics")


def test_lookups_by_href_uid_and_event_id():
    one, two = _entries()
    cache = CalendarCache()
    cache.put(one)
    cache.put(two)
    assert cache.get("one.ics") is one and cache.get("two.ics") is two
    assert cache.by_uid("uid-one") is one and cache.by_uid("uid-two") is two
    assert cache.by_event_id(one.event_id) is one and cache.by_event_id(two.event_id) is two
    assert cache.hrefs() == {"one.ics", "two.ics"}
    assert cache.get("three.ics") is None and cache.by_uid("nope") is None
    assert cache.by_event_id("nope") is None


def test_put_at_the_same_href_replaces_every_lookup_of_the_old_entry():
    one, two = _entries()
    cache = CalendarCache()
    cache.put(one)
    moved = dataclasses.replace(two, href="one.ics")  # another event now at one.ics
    cache.put(moved)
    assert cache.get("one.ics") is moved
    assert cache.by_uid("uid-one") is None and cache.by_event_id(one.event_id) is None
    assert cache.by_uid("uid-two") is moved and cache.entries() == [moved]


def test_remove_keeps_lookups_that_belong_to_another_href():
    one, _ = _entries()
    cache = CalendarCache()
    cache.put(one)
    renamed = dataclasses.replace(one, href="renamed.ics")  # same UID and id, new name
    cache.put(renamed)
    cache.remove("one.ics")
    assert cache.by_uid("uid-one") is renamed
    assert cache.by_event_id(one.event_id) is renamed
    cache.remove("renamed.ics")
    assert cache.by_uid("uid-one") is None and cache.by_event_id(one.event_id) is None
    assert cache.entries() == []
    cache.remove("renamed.ics")  # removing twice is harmless


def test_replace_all_installs_a_listing_and_marks_fresh():
    one, two = _entries()
    cache = CalendarCache()
    assert not cache.loaded and not cache.is_fresh(3600)
    cache.put(one)
    assert cache.loaded and not cache.is_fresh(3600)  # an entry, but never listed
    cache.replace_all([two])
    assert cache.hrefs() == {"two.ics"}
    assert cache.by_uid("uid-one") is None and cache.by_event_id(one.event_id) is None
    assert cache.is_fresh(3600) and not cache.is_fresh(0)


def test_freshness_follows_touch_and_invalidate():
    cache = CalendarCache()
    cache.replace_all([])
    listed = cache.loaded_at
    assert cache.loaded and cache.is_fresh(60)
    cache.invalidate()
    assert not cache.is_fresh(60) and not cache.loaded  # empty and never listed now
    time.sleep(0.01)
    cache.touch()
    assert cache.loaded_at > listed and cache.is_fresh(60)
    time.sleep(0.05)
    assert not cache.is_fresh(0.01)


def test_etag_ignores_dtstamp_and_last_modified_only():
    text = ics("a", NOW, stamp_at="20260101T000000Z")
    later = ics("a", NOW, stamp_at="20270101T000000Z").replace(
        "SUMMARY:", "LAST-MODIFIED:20270101T000000Z\r\nSUMMARY:")
    assert etag_for(text) == etag_for(later)
    assert etag_for(text) != etag_for(ics("a", NOW, summary="Other"))
    assert etag_for(text) != etag_for(ics("a", NOW + dt.timedelta(minutes=1)))
    tag = etag_for(text)
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34


def test_entry_of_a_series_knows_its_exceptions_cancellations_and_range():
    cal = MemoryCalendar()
    start = NOW - dt.timedelta(days=7)
    text = weekly(count=4, exdates=(start + dt.timedelta(days=7),),
                  overrides=((start + dt.timedelta(days=14),
                              start + dt.timedelta(days=14, hours=3), "Moved"),))
    master, _ = put(cal, "s.ics", text)
    entry = entry_of(cal, master["id"], "s.ics")
    occurrence = f"{master['id']}.OCC.{(start + dt.timedelta(days=14)).date().isoformat()}"
    assert entry.is_series and entry.uid == "series-1" and entry.href == "s.ics"
    assert entry.exceptions == {
        (start + dt.timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ"): occurrence}
    assert entry.cancelled == {(start + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert entry.time_range[0] == int(start.timestamp())
    assert entry.time_range[1] >= int((start + dt.timedelta(days=21, hours=1)).timestamp())
    assert entry.change_key == cal.peek(master["id"])["changeKey"]
    assert entry.odata_etag == f'W/"{entry.change_key}"'
    assert [e["id"] for e in entry.graph_exceptions] == [occurrence]
    assert "RECURRENCE-ID:" + stamp(start + dt.timedelta(days=14)) in entry.text
    assert "EXDATE:" + stamp(start + dt.timedelta(days=7)) in entry.text


def test_same_content_ignores_housekeeping():
    cal = MemoryCalendar()
    master, _ = put(cal, "a.ics", ics("a", NOW))
    before = entry_of(cal, master["id"], "a.ics")
    cal.housekeep(master["id"])
    after = entry_of(cal, master["id"], "a.ics")
    assert after.change_key != before.change_key
    assert after.text != before.text  # LAST-MODIFIED follows lastModifiedDateTime
    assert after.same_content(before) and after.etag == before.etag
    cal.outlook_update(master["id"], {"subject": "Renamed"})
    assert not entry_of(cal, master["id"], "a.ics").same_content(before)
