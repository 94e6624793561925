"""storage/loader.py: CalendarLoader on the in-memory Graph calendar.

Each test asserts what the cache and the sync state hold after a refresh and which Graph
calls it cost (the double's call log; ``requests`` counts what the real CalendarEvents sends:
pages, and ``$batch`` requests of 20)."""

from __future__ import annotations

import datetime as dt

import pytest

from radicale_graph.graph.errors import GraphError
from radicale_graph.storage.cache import CalendarCache
from radicale_graph.storage.loader import CalendarLoader
from radicale_graph.storage.sync_state import SyncState

from .memory_calendar import MemoryCalendar
from .test_storage_helpers import NOW, ics, put, weekly

KEY = "alice@contoso.com/calendar"


def _setup(full_listing_interval: float = 3600.0, page_size: int = 1000):
    """A calendar with one single event (tomorrow) and one weekly series (from last week)
    with an EXDATE, listed once. Returns (cal, loader, ids)."""
    cal = MemoryCalendar(page_size=page_size)
    single, _ = put(cal, "single.ics", ics("single", NOW + dt.timedelta(days=1)))
    start = NOW - dt.timedelta(days=7)
    series, _ = put(cal, "series.ics", weekly(start=start, exdates=(start + dt.timedelta(
        days=14),)))
    loader = CalendarLoader(cal, CalendarCache(), SyncState(None), KEY, rooms=frozenset(),
                            full_listing_interval=full_listing_interval)
    cal.reset_calls()
    return cal, loader, {"single": single["id"], "series": series["id"]}


def _occurrence(series_id: str, days: int) -> str:
    return f"{series_id}.OCC.{(NOW + dt.timedelta(days=days)).date().isoformat()}"


def test_first_listing_reads_series_masters_by_id():
    cal, loader, ids = _setup()
    loader.refresh()
    assert sorted(cal.methods()) == ["get_many", "list_masters", "view_delta_pages"]
    assert [c.args for c in cal.calls if c.method == "get_many"] == [(ids["series"],)]
    assert cal.requests == 3  # one delta page, one listing page, one $batch
    cache = loader.cache
    assert cache.hrefs() == {"single.ics", "series.ics"}
    series = cache.get("series.ics")
    # cancelledOccurrences came from the read by id (lists do not carry it).
    assert series.cancelled == {(NOW + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert "EXDATE:" in series.text
    assert loader.tracking_link() is not None and cache.is_fresh(60)
    epoch, revision = loader.state.revision(KEY)
    assert revision == 1
    assert loader.state.changes_since(KEY, f"http://radicale-graph.invalid/ns/sync/{epoch}-0"
                                      ) == ["series.ics", "single.ics"]


def test_first_listing_pages_cost_one_request_each():
    cal, loader, _ = _setup(page_size=1)
    loader.refresh()
    listing = [c for c in cal.calls if c.method == "list_masters"]
    delta = [c for c in cal.calls if c.method == "view_delta_pages"]
    assert [c.requests for c in listing] == [2]  # two events, one per page
    assert [c.requests for c in delta] == [6]    # one single + five occurrences in the window
    assert loader.cache.hrefs() == {"single.ics", "series.ics"}


def test_a_round_without_changes_costs_one_request():
    cal, loader, _ = _setup()
    loader.refresh()
    token = loader.state.token(KEY)
    cal.reset_calls()
    loader.refresh()
    assert cal.methods() == ["view_delta_pages"] and cal.requests == 1
    assert loader.state.token(KEY) == token


def test_a_round_reads_changed_singles_and_masters_of_changed_occurrences():
    cal, loader, ids = _setup()
    loader.refresh()
    token = loader.state.token(KEY)
    old_series = loader.cache.get("series.ics")
    cal.reset_calls()
    cal.outlook_update(ids["single"], {"subject": "Renamed"})
    cal.outlook_update(_occurrence(ids["series"], 0), {"subject": "Just this one"})
    loader.refresh()
    assert cal.methods() == ["view_delta_pages", "get_many"]
    assert set(cal.calls[1].args) == {ids["single"], ids["series"]}
    assert cal.requests == 2  # the delta page and one $batch of two
    assert "SUMMARY:Renamed" in loader.cache.get("single.ics").text
    series = loader.cache.get("series.ics")
    assert "SUMMARY:Just this one" in series.text and series.etag != old_series.etag
    assert series.exceptions == {NOW.strftime("%Y-%m-%dT%H:%M:%SZ"):
                                 _occurrence(ids["series"], 0)}
    assert loader.state.changes_since(KEY, token) == ["series.ics", "single.ics"]


def test_the_gateways_own_delete_costs_no_reconciliation():
    cal, loader, ids = _setup()
    loader.refresh()
    token = loader.state.token(KEY)
    cal.reset_calls()
    # What Collection.delete does: DELETE on Graph, then drop the entry and stamp it.
    cal.delete(ids["single"])
    cal.delete(ids["series"])
    loader.cache.remove("single.ics")
    loader.cache.remove("series.ics")
    loader.state.record(KEY, {}, removed={"single.ics", "series.ics"})
    cal.reset_calls()
    loader.refresh()
    assert cal.methods() == ["view_delta_pages"] and cal.requests == 1
    removed = [i for p in cal.delta_history[-1] for i in p["value"] if "@removed" in i]
    assert len(removed) == 6  # the single and the series' five occurrences seen before
    assert loader.cache.hrefs() == set()
    assert loader.state.changes_since(KEY, token) == ["series.ics", "single.ics"]


def test_an_unexplained_removal_reconciles_and_drops_the_deleted_event():
    cal, loader, ids = _setup()
    loader.refresh()
    token = loader.state.token(KEY)
    cal.reset_calls()
    cal.outlook_delete(ids["single"])
    assert cal.peek(ids["single"]) is not None  # still readable by id (Deleted Items)
    loader.refresh()
    # The calendar's own (folder-scoped) listing tells: one check, no read by id.
    assert cal.methods() == ["view_delta_pages", "present"]
    assert cal.calls[1].args == (ids["single"],)
    assert cal.requests == 2
    assert loader.cache.hrefs() == {"series.ics"}
    assert loader.state.changes_since(KEY, token) == ["single.ics"]


def test_a_deleted_series_readable_by_id_never_comes_back():
    cal, loader, ids = _setup(full_listing_interval=0.0)  # reconcile on every refresh
    loader.refresh()
    cal.outlook_delete(ids["series"])
    assert cal.peek(ids["series"])["id"] == ids["series"]
    cal.reset_calls()
    for _ in range(3):
        loader.refresh()
        assert loader.cache.hrefs() == {"single.ics"}
    assert not [c for c in cal.calls if c.method in ("get_many", "get")]
    assert cal.methods().count("list_keys") == 3  # a reconciliation each time
    assert cal.methods().count("view_delta_pages") == 3


def test_a_cancelled_occurrence_reconciles_and_rereads_its_series():
    cal, loader, ids = _setup()
    loader.refresh()
    cal.reset_calls()
    cal.outlook_delete(_occurrence(ids["series"], 0))  # cancelled in Outlook
    loader.refresh()
    # @removed for that occurrence (unexplained) and the others changed with the master:
    # the calendar still holds the series, which is read by id.
    assert cal.methods() == ["view_delta_pages", "present", "get_many"]
    assert cal.calls[1].args == (ids["series"],) and cal.calls[2].args == (ids["series"],)
    series = loader.cache.get("series.ics")
    assert NOW.strftime("%Y-%m-%dT%H:%M:%SZ") in series.cancelled
    assert loader.cache.hrefs() == {"single.ics", "series.ics"}


def test_housekeeping_keeps_text_and_etag():
    cal, loader, ids = _setup()
    loader.refresh()
    token = loader.state.token(KEY)
    before = {h: loader.cache.get(h) for h in ("single.ics", "series.ics")}
    cal.reset_calls()
    cal.housekeep(ids["single"])
    cal.housekeep(ids["series"])
    loader.refresh()
    assert cal.methods() == ["view_delta_pages", "get_many"] and cal.requests == 2
    assert set(cal.calls[1].args) == {ids["single"], ids["series"]}
    for href, old in before.items():
        new = loader.cache.get(href)
        assert (new.text, new.etag, new.last_modified) == (old.text, old.etag,
                                                           old.last_modified)
        assert new.change_key != old.change_key  # the fresh changeKey, for If-Match
        assert new.odata_etag == f'W/"{new.change_key}"'
    assert loader.state.token(KEY) == token
    cal.reset_calls()
    loader.refresh()  # and the single is not read again: its changeKey is known now
    assert cal.methods() == ["view_delta_pages"]


def test_an_expired_token_lists_again():
    cal, loader, ids = _setup()
    loader.refresh()
    token = loader.state.token(KEY)
    old_link = loader.tracking_link()
    cal.expire()
    cal.outlook_update(ids["single"], {"subject": "While expired"})
    cal.reset_calls()
    loader.refresh()
    assert cal.methods()[0] == "view_delta_pages"  # refused with 410
    assert sorted(cal.methods()[1:]) == ["get_many", "list_masters", "view_delta_pages"]
    assert cal.requests == 1 + 3
    assert loader.tracking_link() not in (None, old_link)
    assert "SUMMARY:While expired" in loader.cache.get("single.ics").text
    assert loader.state.changes_since(KEY, token) == ["single.ics"]
    cal.reset_calls()
    loader.refresh()
    assert cal.methods() == ["view_delta_pages"]


def test_a_change_outside_the_window_is_read_by_id():
    cal, loader, ids = _setup()
    far, _ = put(cal, "far.ics", ics("far", NOW + dt.timedelta(days=400)))
    loader.refresh()
    assert "far.ics" in loader.cache.hrefs()
    cal.reset_calls()
    cal.outlook_update(far["id"], {"subject": "Next year"})
    loader.refresh()
    # @removed by its id (changed outside the window): still in the calendar, so read.
    assert cal.methods() == ["view_delta_pages", "present", "get_many"]
    assert cal.calls[2].args == (far["id"],)
    assert "SUMMARY:Next year" in loader.cache.get("far.ics").text


def test_an_event_added_outside_the_window_is_found_by_reconciliation():
    cal, loader, _ = _setup()
    loader.refresh()
    cal.reset_calls()
    day = NOW - dt.timedelta(days=400)
    made = cal.outlook_create({
        "subject": "Last year", "start": {"dateTime": day.strftime("%Y-%m-%dT%H:%M:%S"),
                                          "timeZone": "UTC"},
        "end": {"dateTime": (day + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC"}})
    loader.refresh()
    # An @removed naming an id the cache never saw: only the light listing can tell.
    assert cal.methods() == ["view_delta_pages", "list_keys", "get_many"]
    assert cal.calls[2].args == (made,)
    assert "SUMMARY:Last year" in loader.cache.by_event_id(made).text


def test_an_event_made_in_outlook_arrives_with_the_next_round():
    cal, loader, _ = _setup()
    loader.refresh()
    cal.reset_calls()
    made = cal.outlook_create({
        "subject": "From Outlook", "start": {"dateTime": (NOW + dt.timedelta(days=2))
                                             .strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (NOW + dt.timedelta(days=2, hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}})
    loader.refresh()
    assert cal.methods() == ["view_delta_pages", "get_many"]
    entry = loader.cache.by_event_id(made)
    assert entry is not None and "SUMMARY:From Outlook" in entry.text
    assert entry.uid == f"ical-{made}"  # no kept UID: Graph's iCalUId


def test_other_graph_errors_of_a_round_are_raised():
    cal, loader, _ = _setup()
    loader.refresh()
    cal.fail("view_delta_pages", status=503, code="ServiceUnavailable")
    with pytest.raises(GraphError) as info:
        loader.refresh()
    assert info.value.status == 503
    assert loader.cache.hrefs() == {"single.ics", "series.ics"}


# -- the pipelined first listing ------------------------------------------------------------


def test_two_events_claiming_one_href_keep_the_listing_order():
    """The series is listed first but translated last (after its read by id): it still keeps
    the href, and the single event listed after it gets a name of its own."""
    cal = MemoryCalendar()
    series, _ = put(cal, "same.ics", weekly(uid="series-a"))
    single, _ = put(cal, "same.ics", ics("single-b", NOW + dt.timedelta(days=1)))
    loader = CalendarLoader(cal, CalendarCache(), SyncState(None), KEY, rooms=frozenset())
    loader.refresh()
    assert loader.cache.get("same.ics").event_id == series["id"]
    other = loader.cache.by_event_id(single["id"])
    assert other.href not in ("same.ics", None) and other.href.startswith("single-b-")
    assert loader.cache.hrefs() == {"same.ics", other.href}


def test_series_masters_are_read_twenty_per_batch_while_singles_translate():
    cal = MemoryCalendar()
    for n in range(45):
        put(cal, f"s{n}.ics", weekly(uid=f"series-{n}"))
    for n in range(30):
        put(cal, f"e{n}.ics", ics(f"single-{n}", NOW + dt.timedelta(days=n)))
    loader = CalendarLoader(cal, CalendarCache(), SyncState(None), KEY, rooms=frozenset())
    cal.reset_calls()
    loader.refresh()
    reads = [c for c in cal.calls if c.method == "get_many"]
    assert [len(c.args) for c in reads] == [20, 20, 5]
    assert sum(c.requests for c in reads) == 3
    assert len(loader.cache.hrefs()) == 75
    assert all("RRULE:" in loader.cache.get(f"s{n}.ics").text for n in range(45))


def test_a_translation_bug_is_raised_and_installs_nothing(monkeypatch):
    from radicale_graph.storage import loader as loader_module

    cal, loader, ids = _setup()
    real = loader_module.translate

    def broken(master, *args, **kwargs):
        if master["id"] == ids["series"]:
            raise RuntimeError("bug in translation")
        return real(master, *args, **kwargs)

    monkeypatch.setattr(loader_module, "translate", broken)
    with pytest.raises(RuntimeError, match="bug in translation"):
        loader.refresh()
    assert not loader.cache.loaded and loader.cache.hrefs() == set()
    epoch, revision = loader.state.revision(KEY)
    assert revision == 0


def test_the_listing_goes_before_the_rest_of_the_round_it_opened():
    """The round's first page fixes where it tracks from; its other pages wait until the
    listing and the reads by id are done (they share the mailbox's 4 requests), and the
    next refresh goes on from the deltaLink that round reached."""
    cal, loader, ids = _setup(page_size=1)
    seen: list[str] = []
    pages, listing, reads = cal.view_delta_pages, cal.list_masters, cal.get_many

    def delta_pages(*args):
        for n, page in enumerate(pages(*args)):
            seen.append(f"delta page {n + 1}")
            yield page

    def list_masters():
        seen.append("list")
        return listing()

    def get_many(event_ids):
        seen.append("read by id")
        return reads(event_ids)

    cal.view_delta_pages, cal.list_masters, cal.get_many = delta_pages, list_masters, get_many
    loader.refresh()
    link = loader.tracking_link()
    assert seen[:3] == ["delta page 1", "list", "read by id"]
    assert seen[3:] == [f"delta page {n}" for n in range(2, 7)]
    assert link is not None
    cal.outlook_update(ids["single"], {"subject": "After the listing"})
    loader.refresh()
    assert "SUMMARY:After the listing" in loader.cache.get("single.ics").text


def test_a_failed_listing_stops_the_round_it_opened():
    import threading

    cal, loader, _ = _setup(page_size=1)
    seen: list[int] = []
    pages = cal.view_delta_pages

    def delta_pages(*args):
        for n, page in enumerate(pages(*args)):
            seen.append(n + 1)
            yield page

    cal.view_delta_pages = delta_pages
    cal.fail("get_many", status=500)
    with pytest.raises(GraphError):
        loader.refresh()
    for thread in threading.enumerate():
        if thread.name == f"delta {KEY}":
            thread.join(5)
    assert seen == [1] and not loader.cache.loaded


def test_settle_waits_for_the_rest_of_the_round_without_a_lock():
    import threading

    cal, loader, _ = _setup(page_size=1)
    release = threading.Event()
    pages = cal.view_delta_pages

    def slow_pages(*args):
        for n, page in enumerate(pages(*args)):
            if n == 1:
                release.wait(5)  # the round's second page is slow to come
            yield page

    cal.view_delta_pages = slow_pages
    loader.refresh()  # answers once listed: the round's later pages are still on the way
    assert loader.cache.loaded and loader.cache.delta_link is None
    loader.settle(timeout=0.2)
    assert loader.cache.delta_link is None  # not there yet
    release.set()
    loader.settle()
    assert loader.tracking_link() is not None
