"""End to end through CalDAV against the Graph emulator as it behaves by default (strict
Graph v1.0): no per-calendar ``/events/delta`` (400), ``calendarView/delta`` with a window,
``cancelledOccurrences``/``exceptionOccurrences`` only on a GET of a series master by id, a
``transactionId`` used once refused for good (400 ``ErrorDuplicateTransactionId``), deleted
events readable by id from Deleted Items, and Exchange's housekeeping that moves a changeKey
without changing content.

Each test drives the gateway with raw HTTP (``requests``) as a CalDAV client would, acts "as
Outlook" directly on the emulator's store where Outlook would, and checks what the client reads
back against what Graph holds (the emulator's store):

* a series edited in Outlook (two occurrences cancelled, one moved) reads back with exactly
  those EXDATEs and that override, after a delta round and after a full relisting;
* delete then re-create of the same text at the same href (an undo) stores one event;
* the same new PUT twice, in a row or at once, stores one event;
* a housekept event keeps its ETag, and writes with the ETag the client holds succeed;
* a deleted event stays deleted across delta rounds and relistings;
* 50 PUTs under throttling, outages and lost answers store exactly 50 events;
* a series update whose exception write fails answers 5xx saying what was written, and the
  next read shows what Graph holds.

The module has its own emulator (faults and the request log are not shared with other modules)
and its own gateway with a short ``refresh_interval`` (REFRESH) and ``full_listing_interval``
(FULL), so "after a delta round" means "a read more than REFRESH seconds after the change, less
than FULL after the last listing" and "after a full relisting" means "a read more than FULL
seconds after the last listing".
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import icalendar
import pytest

from .conftest import start_gateway
from .test_request_budget import sync_report
from .test_roundtrip_helpers import graph_client

MAILBOX = "alice@contoso.com"
CAL = f"/{MAILBOX}/calendar/"
REFRESH = 0.3  # seconds between delta rounds of the module's gateway
FULL = 2.0  # seconds between full listings of the module's gateway
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph(emu):
    """A Graph emulator of this module's own (conftest's ``emu``), in its default (strict v1.0)
    behaviour, so its faults and request log are not shared with other modules."""
    return emu


@pytest.fixture(scope="module")
def gw(graph, tmp_path_factory):
    gateway, stop = start_gateway(graph, tmp_path_factory.mktemp("graph-v1"),
                                  refresh_interval=REFRESH, full_listing_interval=FULL)
    yield gateway
    stop()


@pytest.fixture(autouse=True)
def no_faults_left(graph):
    yield
    graph.clear_faults()


# -- iCalendar texts -------------------------------------------------------------------------


def first_monday() -> dt.datetime:
    """10:00 Berlin on the first Monday at least 14 days from now (inside the gateway's
    calendarView/delta window)."""
    day = dt.date.today() + dt.timedelta(days=14)
    day += dt.timedelta(days=(7 - day.weekday()) % 7)
    return dt.datetime.combine(day, dt.time(10), tzinfo=BERLIN)


def local(value: dt.datetime) -> str:
    return value.astimezone(BERLIN).strftime("%Y%m%dT%H%M%S")


def single(uid: str, summary: str, days_ahead: int = 20) -> str:
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=days_ahead), dt.time(9),
                                tzinfo=BERLIN)
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//graph-v1//EN", "BEGIN:VEVENT",
        f"UID:{uid}", "DTSTAMP:20261101T000000Z",
        f"DTSTART;TZID=Europe/Berlin:{local(start)}",
        f"DTEND;TZID=Europe/Berlin:{local(start + dt.timedelta(hours=1))}",
        f"SUMMARY:{summary}", "END:VEVENT", "END:VCALENDAR", ""])


def weekly(uid: str, summary: str, first: dt.datetime, count: int = 8, exdates=(),
           overrides: dict | None = None) -> str:
    """A weekly series of ``count`` one-hour meetings from ``first`` (Berlin); ``exdates``
    are original starts; ``overrides`` maps an original start to (new start, summary)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//graph-v1//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20261101T000000Z",
             f"DTSTART;TZID=Europe/Berlin:{local(first)}",
             f"DTEND;TZID=Europe/Berlin:{local(first + dt.timedelta(hours=1))}",
             f"RRULE:FREQ=WEEKLY;COUNT={count}", f"SUMMARY:{summary}"]
    lines += [f"EXDATE;TZID=Europe/Berlin:{local(x)}" for x in exdates]
    lines.append("END:VEVENT")
    for original, (start, title) in (overrides or {}).items():
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z",
                  f"RECURRENCE-ID;TZID=Europe/Berlin:{local(original)}",
                  f"DTSTART;TZID=Europe/Berlin:{local(start)}",
                  f"DTEND;TZID=Europe/Berlin:{local(start + dt.timedelta(hours=1))}",
                  f"SUMMARY:{title}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def occurrence(first: dt.datetime, number: int) -> dt.datetime:
    """Original start (Berlin) of occurrence ``number`` (0-based) of ``weekly(first=first)``."""
    return (first.replace(tzinfo=None) + dt.timedelta(weeks=number)).replace(tzinfo=BERLIN)


# -- reading resources -----------------------------------------------------------------------


def instant(value):
    """A comparable instant: aware datetimes in UTC, dates unchanged."""
    if isinstance(value, dt.datetime):
        assert value.tzinfo is not None, f"floating time {value} in a timed series"
        return value.astimezone(UTC)
    return value


def parse(text: str):
    """(master VEVENT, {RECURRENCE-ID instant: override VEVENT}) of one resource; asserts
    exactly one master and no RECURRENCE-ID twice."""
    events = icalendar.Calendar.from_ical(text).walk("VEVENT")
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    assert len(masters) == 1, text
    overrides = {}
    for event in events:
        if "RECURRENCE-ID" in event:
            key = instant(event.decoded("RECURRENCE-ID"))
            assert key not in overrides, f"RECURRENCE-ID {key} twice:\n{text}"
            overrides[key] = event
    return masters[0], overrides


def exdates(event) -> list:
    """Every EXDATE value of ``event`` as instants, sorted (duplicates kept)."""
    values = event.get("EXDATE")
    if values is None:
        return []
    if not isinstance(values, list):
        values = [values]
    return sorted(instant(d.dt) for value in values for d in value.dts)


def hrefs_in(response) -> list[str]:
    """Resource names (last path segment) of the .ics hrefs in a multistatus."""
    return [h.rsplit("/", 1)[-1] for h in re.findall(r"<href>([^<]+\.ics)</href>",
                                                      response.text)]


def propfind_names(gw, session) -> list[str]:
    response = session.request("PROPFIND", gw.url + CAL, headers={"Depth": "1"},
                               data='<?xml version="1.0" encoding="utf-8"?><D:propfind '
                                    'xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>')
    assert response.status_code == 207, response.text
    return hrefs_in(response)


def sync(gw, session, token: str = ""):
    """(new token, names reported present, names reported deleted) of a sync-collection."""
    response = session.request("REPORT", gw.url + CAL, data=sync_report(token),
                               headers={"Depth": "1", "Content-Type": "application/xml"})
    assert response.status_code == 207, response.text
    new_token = re.search(r"<sync-token>([^<]+)</sync-token>", response.text).group(1)
    present, deleted = [], []
    for block in re.findall(r"<response>(.*?)</response>", response.text, re.S):
        href = re.search(r"<href>([^<]+)</href>", block).group(1).rsplit("/", 1)[-1]
        (deleted if "404 Not Found" in block else present).append(href)
    return new_token, present, deleted


# -- what Graph holds ----------------------------------------------------------------------


def kept(record, name: str) -> str | None:
    """The value of the gateway's extended property ``RadicaleGraph.<name>`` on a record."""
    for pid, value in record.ext.values():
        if pid.lower().endswith(f"radicalegraph.{name.lower()}"):
            return value
    return None


def records_with_href(graph, href: str) -> list:
    """Live events (single or master) of Alice's default calendar that keep ``href``."""
    with graph.store.lock:
        return [r for r in graph.store.records(MAILBOX, None) if kept(r, "Href") == href]


def the_record(graph, href: str):
    found = records_with_href(graph, href)
    assert len(found) == 1, f"{len(found)} events in Graph keep href {href}"
    return found[0]


def graph_instances(graph, master_id: str, first: dt.datetime):
    """Live instances (occurrences and exceptions) of a series, as Graph's /instances lists
    them, from a day before ``first`` to 20 weeks after."""
    from radicale_graph.emulator import series as graph_series

    with graph.store.lock:
        record, _ = graph.store.resolve(MAILBOX, master_id)
        return graph_series.instances(record, first.astimezone(UTC) - dt.timedelta(days=1),
                                      first.astimezone(UTC) + dt.timedelta(weeks=20))


def occurrence_id(graph, master_id: str, first: dt.datetime, original: dt.datetime) -> str:
    for inst in graph_instances(graph, master_id, first):
        if inst.original_start == original.astimezone(UTC):
            return inst.id
    raise AssertionError(f"Graph lists no occurrence of {master_id} at {original}")


def graph_cancelled_dates(graph, master_id: str) -> list[dt.date]:
    """Dates of the master's ``cancelledOccurrences`` (``OID.<id>.<yyyy-mm-dd>``), sorted."""
    master = graph.store.get_event(MAILBOX, master_id)
    return sorted(dt.date.fromisoformat(oid.rsplit(".", 1)[-1][:10])
                  for oid in master.get("cancelledOccurrences") or [])


def graph_exceptions(graph, master_id: str, first: dt.datetime) -> dict:
    """{original start (UTC): (start, end) (UTC)} of the series' exceptions in Graph."""
    return {inst.original_start: (inst.start.astimezone(UTC), inst.end.astimezone(UTC))
            for inst in graph_instances(graph, master_id, first) if inst.exception is not None}


def utc_dtz(value: dt.datetime) -> dict:
    return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def change_key(graph, event_id: str) -> str:
    return graph.store.get_event(MAILBOX, event_id)["changeKey"]


def after_delta_round() -> None:
    """Wait until the gateway's next read runs a delta round."""
    time.sleep(REFRESH + 0.2)


def after_full_listing_interval() -> None:
    """Wait until the gateway's next read lists the calendar again."""
    time.sleep(FULL + 0.3)


def delta_rounds_run(graph) -> int:
    """calendarView/delta requests in the emulator's log (each round starts with one)."""
    return sum(1 for r in graph.request_log
               if r.method == "GET" and r.path.endswith("/calendarView/delta"))


def listings_run(graph) -> int:
    """Listings of a whole calendar (GET .../events without $filter) in the emulator's log."""
    return sum(1 for r in graph.request_log
               if r.method == "GET" and r.path.endswith("/events")
               and "$filter" not in dict(parse_qsl(r.query or "")))


def fresh_full_listing(gw, session) -> None:
    """Make the gateway list the calendar now, so the next reads within FULL seconds are
    delta rounds."""
    after_full_listing_interval()
    propfind_names(gw, session)


def put(session, url: str, text: str, **headers):
    return session.put(url, data=text.encode(), headers={"Content-Type": "text/calendar",
                                                         **headers})


# -- (a) Outlook edits a series PUT through CalDAV --------------------------------------------


def test_outlook_cancels_two_and_moves_one_occurrence(gw, graph):
    session = gw.session()
    uid = f"v1-outlook-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    first = first_monday()
    created = put(session, url, weekly(uid, "Weekly review", first), **{"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    master_id = the_record(graph, href).id
    fresh_full_listing(gw, session)

    cancelled = [occurrence(first, 1), occurrence(first, 3)]
    moved = occurrence(first, 5)
    new_start = moved + dt.timedelta(hours=5)  # 15:00 the same day
    new_end = new_start + dt.timedelta(hours=1)
    ids = {x: occurrence_id(graph, master_id, first, x) for x in [*cancelled, moved]}
    for original in cancelled:
        graph.store.delete_event(MAILBOX, ids[original])
    graph.store.update_event(MAILBOX, ids[moved], {"start": utc_dtz(new_start),
                                                   "end": utc_dtz(new_end)})
    # What Graph holds now (the precondition of the checks below).
    assert len(graph_cancelled_dates(graph, master_id)) == 2
    assert graph_exceptions(graph, master_id, first) == {
        moved.astimezone(UTC): (new_start.astimezone(UTC), new_end.astimezone(UTC))}

    def check(when: str) -> str:
        got = session.get(url)
        assert got.status_code == 200, (when, got.text)
        master, overrides = parse(got.text)
        assert "RRULE" in master, when
        assert exdates(master) == sorted(x.astimezone(UTC) for x in cancelled), \
            (when, got.text)
        assert list(overrides) == [moved.astimezone(UTC)], (when, got.text)
        override = overrides[moved.astimezone(UTC)]
        assert instant(override.decoded("DTSTART")) == new_start.astimezone(UTC), when
        assert instant(override.decoded("DTEND")) == new_end.astimezone(UTC), when
        assert got.headers["ETag"] != created.headers["ETag"], when
        return got.headers["ETag"]

    graph.clear_log()
    after_delta_round()
    etag = check("after a delta round")
    assert delta_rounds_run(graph) >= 1, "the read ran no delta round"
    graph.clear_log()
    after_full_listing_interval()
    assert check("after a full relisting") == etag, "the ETag moved though nothing changed"
    assert listings_run(graph) >= 1, "the read did not list the calendar again"


# -- (b) delete, then re-create the same text at the same href ------------------------------


def test_delete_then_recreate_same_text_same_href(gw, graph):
    session = gw.session()
    uid = f"v1-undo-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    text = single(uid, "Undo me")
    first = put(session, url, text, **{"If-None-Match": "*"})
    assert first.status_code == 201, first.text
    deleted = session.delete(url)
    assert deleted.status_code in (200, 204), deleted.text  # Radicale answers 200 + XML
    assert records_with_href(graph, href) == []
    again = put(session, url, text, **{"If-None-Match": "*"})
    assert again.status_code == 201, again.text
    record = the_record(graph, href)
    assert kept(record, "UID") == uid
    assert record.data["subject"] == "Undo me"
    got = session.get(url)
    assert got.status_code == 200, got.text
    master, _ = parse(got.text)
    assert str(master["UID"]) == uid and str(master["SUMMARY"]) == "Undo me"
    assert got.headers["ETag"] == again.headers["ETag"]


def test_delete_then_recreate_after_the_gateway_saw_the_deletion(gw, graph):
    """The same undo, but after a delta round has run between the DELETE and the PUT."""
    session = gw.session()
    uid = f"v1-undo-late-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    text = single(uid, "Undo me later")
    assert put(session, url, text).status_code == 201
    assert session.delete(url).status_code in (200, 204)
    after_delta_round()
    assert session.get(url).status_code == 404
    again = put(session, url, text)
    assert again.status_code == 201, again.text
    assert the_record(graph, href).data["subject"] == "Undo me later"
    assert session.get(url).status_code == 200


# -- (c) the same new PUT twice --------------------------------------------------------------


def test_same_new_put_twice_in_a_row(gw, graph):
    session = gw.session()
    uid = f"v1-twice-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    text = single(uid, "Twice")
    first = put(session, url, text)
    assert first.status_code == 201, first.text
    second = put(session, url, text)
    assert second.status_code in (201, 204), second.text
    assert the_record(graph, href).data["subject"] == "Twice"
    assert [n for n in propfind_names(gw, session) if n == href] == [href]
    assert session.get(url).status_code == 200


def _put_at_once(gw, url: str, text: str, headers: dict) -> list[int]:
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    failures: list[BaseException] = []

    def run():
        session = gw.session()
        try:
            barrier.wait(5)
            statuses.append(put(session, url, text, **headers).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    return sorted(statuses)


@pytest.mark.parametrize("round_number", range(3))
def test_same_new_put_twice_at_once(gw, graph, round_number):
    uid = f"v1-race-{round_number}-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    statuses = _put_at_once(gw, url, single(uid, "Raced"), {})
    assert len(statuses) == 2 and all(s in (201, 204) for s in statuses), statuses
    assert 201 in statuses, statuses
    assert the_record(graph, href).data["subject"] == "Raced"
    with graph.store.lock:
        same_uid = [r for r in graph.store.records(MAILBOX, None) if kept(r, "UID") == uid]
    assert len(same_uid) == 1


@pytest.mark.parametrize("round_number", range(3))
def test_same_new_put_twice_at_once_with_if_none_match(gw, graph, round_number):
    uid = f"v1-race-inm-{round_number}-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    statuses = _put_at_once(gw, url, single(uid, "Raced once"), {"If-None-Match": "*"})
    assert statuses == [201, 412], statuses
    assert the_record(graph, href).data["subject"] == "Raced once"


# -- (d) Exchange housekeeping moves the changeKey ------------------------------------------


def _housekept(gw, graph, session, uid: str, text: str):
    """PUT ``text`` as a new event, let Exchange housekeep it and the gateway see that:
    returns (url, href, ETag of the PUT, record id)."""
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    created = put(session, url, text, **{"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    record_id = the_record(graph, href).id
    fresh_full_listing(gw, session)  # so the read below is a delta round
    listed = session.get(url)
    assert listed.headers["ETag"] == created.headers["ETag"], \
        "a full relisting changed the ETag of unchanged content"
    before = change_key(graph, record_id)
    assert graph.housekeep(mailbox=MAILBOX, event_id=record_id) == [record_id]
    assert change_key(graph, record_id) != before  # the precondition: the changeKey moved
    after_delta_round()
    got = session.get(url)
    assert got.status_code == 200, got.text
    assert got.headers["ETag"] == created.headers["ETag"], "housekeeping changed the ETag"
    return url, href, created.headers["ETag"], record_id


def test_housekept_event_accepts_writes_with_the_etag_the_client_holds(gw, graph):
    session = gw.session()
    uid = f"v1-hk-same-{uuid.uuid4()}"
    text = single(uid, "Housekept")
    url, href, etag, _ = _housekept(gw, graph, session, uid, text)
    unchanged = put(session, url, text, **{"If-Match": etag})
    assert unchanged.status_code in (201, 204), unchanged.text
    assert the_record(graph, href).data["subject"] == "Housekept"

    uid = f"v1-hk-edit-{uuid.uuid4()}"
    url, href, etag, _ = _housekept(gw, graph, session, uid, single(uid, "Housekept"))
    changed = put(session, url, single(uid, "Edited after housekeeping"), **{"If-Match": etag})
    assert changed.status_code in (201, 204), changed.text
    assert the_record(graph, href).data["subject"] == "Edited after housekeeping"
    got = session.get(url)
    assert str(parse(got.text)[0]["SUMMARY"]) == "Edited after housekeeping"
    assert got.headers["ETag"] == changed.headers["ETag"]


def test_housekept_event_delete_and_put_without_if_match(gw, graph):
    session = gw.session()
    uid = f"v1-hk-del-{uuid.uuid4()}"
    url, href, _, _ = _housekept(gw, graph, session, uid, single(uid, "Delete me"))
    deleted = session.delete(url)
    assert deleted.status_code in (200, 204), deleted.text
    assert records_with_href(graph, href) == []
    assert session.get(url).status_code == 404

    uid = f"v1-hk-put-{uuid.uuid4()}"
    url, href, _, _ = _housekept(gw, graph, session, uid, single(uid, "Overwrite me"))
    overwritten = put(session, url, single(uid, "Overwritten"))
    assert overwritten.status_code in (201, 204), overwritten.text
    assert the_record(graph, href).data["subject"] == "Overwritten"


def test_housekept_event_keeps_its_etag_after_a_full_relisting(gw, graph):
    session = gw.session()
    uid = f"v1-hk-list-{uuid.uuid4()}"
    url, _, etag, _ = _housekept(gw, graph, session, uid, single(uid, "Listed again"))
    after_full_listing_interval()
    got = session.get(url)
    assert got.status_code == 200
    assert got.headers["ETag"] == etag, "a full relisting changed the ETag of unchanged content"


def test_housekept_series_with_exdate_updated_with_if_match(gw, graph):
    session = gw.session()
    uid = f"v1-hk-series-{uuid.uuid4()}"
    first = first_monday() + dt.timedelta(weeks=1)
    cancelled = occurrence(first, 2)
    url, href, etag, master_id = _housekept(
        gw, graph, session, uid, weekly(uid, "Housekept series", first, exdates=[cancelled]))
    assert graph_cancelled_dates(graph, master_id) == [cancelled.date()]
    updated = put(session, url, weekly(uid, "Renamed series", first, exdates=[cancelled]),
                  **{"If-Match": etag})
    assert updated.status_code in (201, 204), updated.text
    record = the_record(graph, href)
    assert record.id == master_id
    assert record.data["subject"] == "Renamed series"
    assert graph_cancelled_dates(graph, master_id) == [cancelled.date()]
    master, overrides = parse(session.get(url).text)
    assert str(master["SUMMARY"]) == "Renamed series"
    assert exdates(master) == [cancelled.astimezone(UTC)]
    assert overrides == {}


# -- (e) a deleted event stays deleted -----------------------------------------------------


def test_deleted_event_stays_deleted(gw, graph):
    session = gw.session()
    uid = f"v1-gone-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    assert put(session, url, single(uid, "Gone for good")).status_code == 201
    event_id = the_record(graph, href).id
    token, present, _ = sync(gw, session)
    assert href in present
    assert session.delete(url).status_code in (200, 204)
    assert records_with_href(graph, href) == []
    # The precondition: Graph still answers a GET by id (Deleted Items).
    client = graph_client(graph)
    try:
        kept_copy = client.get_json(f"/users/{MAILBOX}/events/{event_id}", mailbox=MAILBOX,
                                    operation="read deleted event")
    finally:
        client.close()
    assert kept_copy["id"] == event_id

    def check(when: str) -> None:
        assert session.get(url).status_code == 404, when
        assert href not in propfind_names(gw, session), when
        _, everything, _ = sync(gw, session)
        assert href not in everything, when
        _, changed, removed = sync(gw, session, token)
        assert href not in changed and href in removed, (when, changed, removed)

    for number in range(3):
        graph.clear_log()
        after_delta_round()
        check(f"after delta round {number + 1}")
        assert delta_rounds_run(graph) >= 1, f"round {number + 1} ran no delta round"
    graph.clear_log()
    after_full_listing_interval()
    check("after a full relisting")
    assert listings_run(graph) >= 1, "no full relisting ran"


# -- (f) many PUTs under throttling, outages and lost answers ----------------------------------


def test_fifty_puts_under_faults_store_fifty_events(gw, graph):
    session = gw.session()
    stem = f"v1-load-{uuid.uuid4().hex[:8]}"
    names = [f"{stem}-{n:02d}.ics" for n in range(50)]
    graph.clear_log()
    retried = []
    try:
        for number, name in enumerate(names):
            if number % 10 == 2:
                graph.inject_fault(503, count=2, retry_after=0, method="POST",
                                   path_contains="/events")
            elif number % 10 == 5:
                graph.inject_fault(504, count=1, retry_after=0, method="POST",
                                   path_contains="/events", after=True)  # a lost answer
            elif number % 10 == 7:
                graph.inject_fault(429, count=1, retry_after=0, method="POST",
                                   path_contains="/events")
            elif number % 10 == 9:
                graph.inject_fault(429, count=2, retry_after=0, path_contains="$batch")
                graph.inject_fault(429, count=2, retry_after=0, method="GET",
                                   path_contains="/events/")
            uid = name[:-4]
            text = single(uid, f"Load {name}", days_ahead=20 + number % 30)
            response = put(session, gw.url + CAL + name, text)
            if response.status_code >= 300 and number % 10 == 5:
                # Only a lost answer may surface to the client; a retry must then succeed.
                retried.append((name, response.status_code, response.text[:200]))
                response = put(session, gw.url + CAL + name, text)
            assert response.status_code in (201, 204), (name, response.status_code,
                                                        response.text)
            if number % 10 == 9:
                time.sleep(REFRESH + 0.05)  # let the next PUT's read run a delta round
        graph.inject_fault(429, count=3, retry_after=0, path_contains="$batch")
        after_delta_round()
        listed = propfind_names(gw, session)
    finally:
        graph.clear_faults()
    statuses = [r.status for r in graph.request_log]
    # The faults were met (else this test proves nothing).
    assert statuses.count(503) >= 10 and statuses.count(504) >= 5, statuses
    assert sorted(n for n in listed if n.startswith(stem)) == names
    with graph.store.lock:
        kept_hrefs = [kept(r, "Href") for r in graph.store.records(MAILBOX, None)]
    assert sorted(h for h in kept_hrefs if h and h.startswith(stem)) == names, retried
    for name in names:
        got = session.get(gw.url + CAL + name)
        assert got.status_code == 200 and f"SUMMARY:Load {name}" in got.text, name


# -- (g) a series update whose exception write fails ------------------------------------------


def test_series_update_failing_midway_reports_and_reads_back_what_graph_holds(gw, graph):
    session = gw.session()
    uid = f"v1-partial-{uuid.uuid4()}"
    href = f"{uid}.ics"
    url = gw.url + CAL + href
    first = first_monday() + dt.timedelta(weeks=2)
    created = put(session, url, weekly(uid, "Planning", first), **{"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    master_id = the_record(graph, href).id
    cancelled = occurrence(first, 2)
    moved = occurrence(first, 4)
    moved_to = moved + dt.timedelta(hours=6)
    occurrence_of_moved = occurrence_id(graph, master_id, first, moved)
    changed = weekly(uid, "Planning v2", first, exdates=[cancelled],
                     overrides={moved: (moved_to, "Moved planning")})
    graph.clear_log()
    graph.inject_fault(500, count=20, retry_after=None, method="PATCH",
                       path_contains=occurrence_of_moved.rstrip("="))
    try:
        response = put(session, url, changed, **{"If-Match": created.headers["ETag"]})
    finally:
        graph.clear_faults()
    failed = [r for r in graph.request_log if r.method == "PATCH" and r.status == 500]
    assert failed, "the occurrence PATCH was never attempted"
    assert 500 <= response.status_code < 600, (response.status_code, response.text)
    assert uid in response.text, response.text
    assert re.search(r"\b(updated|written|stored|applied|changed|saved)\b", response.text,
                     re.I), response.text

    def read_back_equals_graph(when: str):
        got = session.get(url)
        assert got.status_code == 200, (when, got.text)
        master, overrides = parse(got.text)
        graph_master = graph.store.get_event(MAILBOX, master_id)
        assert str(master["SUMMARY"]) == graph_master["subject"], when
        assert [x.astimezone(BERLIN).date() for x in exdates(master)] == \
            graph_cancelled_dates(graph, master_id), (when, got.text)
        in_graph = graph_exceptions(graph, master_id, first)
        assert set(overrides) == set(in_graph), (when, got.text, in_graph)
        for original, (start, end) in in_graph.items():
            assert instant(overrides[original].decoded("DTSTART")) == start, when
            assert instant(overrides[original].decoded("DTEND")) == end, when
        assert got.headers["ETag"] != created.headers["ETag"], when
        return got

    got = read_back_equals_graph("right after the failed PUT")
    after_full_listing_interval()
    assert read_back_equals_graph("after a full relisting").headers["ETag"] == \
        got.headers["ETag"]

    # The client retries with what it read: now everything is stored.
    retry = put(session, url, changed, **{"If-Match": got.headers["ETag"]})
    assert retry.status_code in (201, 204), retry.text
    assert graph.store.get_event(MAILBOX, master_id)["subject"] == "Planning v2"
    assert graph_cancelled_dates(graph, master_id) == [cancelled.date()]
    assert graph_exceptions(graph, master_id, first) == {
        moved.astimezone(UTC): (moved_to.astimezone(UTC),
                                (moved_to + dt.timedelta(hours=1)).astimezone(UTC))}
    master, overrides = parse(session.get(url).text)
    assert str(master["SUMMARY"]) == "Planning v2"
    assert exdates(master) == [cancelled.astimezone(UTC)]
    assert list(overrides) == [moved.astimezone(UTC)]
    assert str(overrides[moved.astimezone(UTC)]["SUMMARY"]) == "Moved planning"
