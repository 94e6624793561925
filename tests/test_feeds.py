"""Room and calendar feeds (issue 12): ``/.feeds/<token>.ics`` served by the gateway.

Acceptance: many displays polling one room feed cost at most one Graph round per refresh
interval (counted in the emulator's ``request_log``); 304s are served; the feed is valid RFC
5545 (icalendar parses it, every TZID has its VTIMEZONE); privacy modes hide what they promise.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import sqlite3
import threading
import time
from collections import Counter

import icalendar
import pytest
import requests

from radicale_graph.cli import build_parser
from radicale_graph.cli.feeds import run_feed
from radicale_graph.cli.gateway import StartupError
from radicale_graph.emulator import Emulator, demo
from radicale_graph.storage.feed_tokens import FeedTokens
from radicale_graph.web.feeds import if_none_match_hits

from .conftest import start_gateway

REFRESH = 1.0  # seconds: the gateway's refresh_interval in this module
ALICE = "alice@contoso.com"
ROOM = "room-adams@contoso.com"
EMPTY_ROOM = "room-baker@contoso.com"
TZID_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE", "DUE")


@pytest.fixture(scope="module")
def feed_env(tmp_path_factory):
    """A fresh demo emulator and a gateway on it (refresh_interval 1 s); yields (gateway,
    emulator, configuration path)."""
    emu = Emulator(load_demo=True)
    emu.start()
    folder = tmp_path_factory.mktemp("feeds")
    _edge_events(emu)
    gw, stop = start_gateway(emu, folder, refresh_interval=REFRESH)
    yield gw, emu, str(folder / "radicale.conf")
    stop()
    emu.stop()


def feed_cli(config: str, *argv: str) -> str:
    """Run ``radicale-graph feed ...`` in-process; its stdout."""
    args = build_parser().parse_args(["feed", *argv[:1], "--config", config, *argv[1:]])
    out = io.StringIO()
    run_feed(args, out=out)
    return out.getvalue()


def create(config: str, calendar: str, *options: str) -> str:
    """A new feed's URL."""
    return feed_cli(config, "create", "--calendar", calendar, *options).strip()


def parse(body: bytes) -> icalendar.Calendar:
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar.name == "VCALENDAR"
    return calendar


def check_rfc5545(body: bytes) -> icalendar.Calendar:
    """Parse ``body`` and check what RFC 5545 requires of it here: CRLF lines of at most 75
    octets, VERSION and PRODID, UID/DTSTAMP/DTSTART per VEVENT, unique (UID, RECURRENCE-ID),
    and a VTIMEZONE for every TZID (section 3.6.5), one each."""
    calendar = parse(body)
    lines = body.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) <= 75 for line in lines)
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    zones = [str(z["TZID"]) for z in calendar.walk("VTIMEZONE")]
    assert len(zones) == len(set(zones))
    used, seen = set(), set()
    for event in calendar.walk("VEVENT"):
        assert "UID" in event and "DTSTAMP" in event and "DTSTART" in event
        key = (str(event["UID"]), event["RECURRENCE-ID"].to_ical()
               if "RECURRENCE-ID" in event else b"")
        assert key not in seen
        seen.add(key)
        for name in TZID_PROPS:
            values = event.get(name)
            for value in values if isinstance(values, list) else [values]:
                if value is not None and "TZID" in value.params:
                    used.add(value.params["TZID"])
    assert used <= set(zones), f"TZIDs without VTIMEZONE: {used - set(zones)}"
    assert not calendar.get_missing_tzids()
    return calendar


def events(calendar: icalendar.Calendar) -> list[icalendar.Component]:
    return list(calendar.walk("VEVENT"))


def local_day(event, zone="America/Los_Angeles") -> dt.date:
    from zoneinfo import ZoneInfo

    start = event["DTSTART"].dt
    return start.astimezone(ZoneInfo(zone)).date() if isinstance(start, dt.datetime) \
        else start


# -- window edges: events in room-baker's (otherwise empty) calendar -------------------------
def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()  # the demo gateway's default_timezone is UTC


def _edge_events(emu) -> None:
    """Events at the edges of a window [today-1 00:00Z, today+3 00:00Z) (days back 1,
    days ahead 2)."""
    day = _today()

    def at(days: int, hhmm: str) -> str:
        return f"{(day + dt.timedelta(days=days)).isoformat()}T{hhmm}:00"

    def event(subject, start, end, all_day=False):
        emu.store.create_event(EMPTY_ROOM, None, {
            "subject": subject, "isAllDay": all_day,
            "start": {"dateTime": start, "timeZone": "UTC"},
            "end": {"dateTime": end, "timeZone": "UTC"}})

    event("ends at window start", at(-2, "23:00"), at(-1, "00:00"))
    event("overlaps window start", at(-2, "23:30"), at(-1, "00:30"))
    event("ends at window end", at(2, "23:00"), at(3, "00:00"))
    event("starts at window end", at(3, "00:00"), at(3, "01:00"))
    event("all-day before window", at(-2, "00:00"), at(-1, "00:00"), all_day=True)
    event("all-day first day", at(-1, "00:00"), at(0, "00:00"), all_day=True)
    event("all-day last day", at(2, "00:00"), at(3, "00:00"), all_day=True)
    event("all-day after window", at(3, "00:00"), at(4, "00:00"), all_day=True)


def test_window_edges(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{EMPTY_ROOM}/calendar", "--days-back", "1", "--days-ahead", "2")
    body = requests.get(url, timeout=30).content
    summaries = {str(e["SUMMARY"]) for e in events(check_rfc5545(body))}
    assert summaries == {"overlaps window start", "ends at window end", "all-day first day",
                         "all-day last day"}


# -- serving, ETag, HEAD, tokens --------------------------------------------------------------
def test_feed_is_valid_icalendar_with_headers(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{ROOM}/calendar")
    assert url.startswith(gw.url + "/.feeds/") and url.endswith(".ics")
    response = requests.get(url, timeout=30)  # no CalDAV login: the token is the secret
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == f"max-age={int(REFRESH)}, private"
    assert response.headers["ETag"].startswith('"')
    calendar = check_rfc5545(response.content)
    assert calendar["X-WR-CALNAME"] == "Adams Conference Room"
    assert "Project review" in {str(e["SUMMARY"]) for e in events(calendar)}
    assert not list(calendar.walk("VALARM"))


def test_if_none_match_304_and_head(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{ALICE}/calendar")
    first = requests.get(url, timeout=30)
    etag = first.headers["ETag"]
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag and "max-age" in again.headers["Cache-Control"]
    for header in (f"W/{etag}", f'"nope", {etag}', "*"):
        assert requests.get(url, headers={"If-None-Match": header},
                            timeout=30).status_code == 304
    other = requests.get(url, headers={"If-None-Match": '"other"'}, timeout=30)
    assert other.status_code == 200 and other.content == first.content
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == etag
    assert int(head.headers["Content-Length"]) == len(first.content)


def test_the_token_reaches_no_log_line(feed_env, caplog):
    """The feed token is the feed's only secret: neither the request line nor a refusal by
    the hostile-input guard (malformed Basic credentials) logs it."""
    gw, emu, config = feed_env
    url = create(config, f"{ALICE}/calendar")
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    caplog.set_level(logging.DEBUG)
    assert requests.get(url, timeout=30).status_code == 200
    refused = requests.get(url, headers={"Authorization": "Basic !!!"}, timeout=30)
    assert refused.status_code in (400, 401)
    # The gateway's and Radicale's loggers (the test's own HTTP client, urllib3, logs URLs).
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("radicale")]
    assert any("/.feeds/" in line for line in lines)
    assert not [line for line in lines if token in line]


def test_etag_follows_content(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{ALICE}/c-{'0' * 16}", "--no-check")  # no such calendar
    assert requests.get(url, timeout=30).status_code == 404
    url = create(config, f"{ALICE}/calendar", "--days-ahead", "3")
    etag = requests.get(url, timeout=30).headers["ETag"]
    created = emu.store.create_event(ALICE, None, {
        "subject": "Feed change", "start": {"dateTime": f"{_today()}T13:00:00",
                                            "timeZone": "UTC"},
        "end": {"dateTime": f"{_today()}T14:00:00", "timeZone": "UTC"}})
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
            if response.status_code == 200:
                break
            time.sleep(0.2)
        assert response.status_code == 200 and b"Feed change" in response.content
        assert response.headers["ETag"] != etag
    finally:
        emu.store.delete_event(ALICE, created["id"])
    # Let the gateway see the deletion before the next test reads alice's calendar.
    deadline = time.monotonic() + 10
    while b"Feed change" in requests.get(url, timeout=30).content:
        assert time.monotonic() < deadline, "the deletion never reached the feed"
        time.sleep(0.2)


def test_unknown_revoked_and_methods(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{ROOM}/calendar")
    assert requests.get(url, timeout=30).status_code == 200
    for bad in (gw.url + "/.feeds/" + "A" * 43 + ".ics", gw.url + "/.feeds/short.ics",
                gw.url + "/.feeds/", gw.url + "/.feeds", url[:-4], url + "/x"):
        assert requests.get(bad, timeout=30).status_code == 404, bad
    put = requests.put(url, data=b"x", timeout=30)
    assert put.status_code == 405 and put.headers["Allow"] == "GET, HEAD"
    assert requests.post(url, timeout=30).status_code == 405
    token = url.rsplit("/", 1)[1][:-4]
    feed_id = FeedTokens(config.rsplit("/", 1)[0] + "/state").find(token).id
    listing = feed_cli(config, "list")
    assert feed_id in listing and token not in listing
    assert feed_cli(config, "revoke", feed_id).strip() == f"feed {feed_id} revoked"
    assert requests.get(url, timeout=30).status_code == 404
    assert requests.head(url, timeout=30).status_code == 404
    with pytest.raises(StartupError):
        feed_cli(config, "revoke", feed_id)


def test_tokens_are_stored_hashed(tmp_path):
    tokens = FeedTokens(str(tmp_path))
    feed, token = tokens.create(ROOM, "calendar", days_back=0, days_ahead=7, expand=True,
                                privacy="busy")
    assert len(token) >= 43 and tokens.find(token) == feed
    assert tokens.find(token + "x") is None and tokens.find("../" + token) is None
    raw = (tmp_path / "feeds.sqlite3").read_bytes()
    assert token.encode() not in raw
    with sqlite3.connect(tmp_path / "feeds.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM feeds WHERE token_hash = ?",
                          (__import__("hashlib").sha256(token.encode()).hexdigest(),)
                          ).fetchone() == (1,)
    with pytest.raises(ValueError):
        tokens.create(ROOM, "calendar", days_back=-1, days_ahead=7, privacy="busy")
    with pytest.raises(ValueError):
        tokens.create(ROOM, "calendar", privacy="secret")
    assert tokens.revoke(feed.id) and tokens.find(token) is None
    tokens.close()


def test_cli_refuses_unknown_calendars(feed_env):
    gw, emu, config = feed_env
    with pytest.raises(StartupError, match="no calendar"):
        create(config, f"{ALICE}/nope")
    with pytest.raises(StartupError, match="not served"):
        create(config, "carol@contoso.com/calendar")
    with pytest.raises(StartupError, match="mailbox>/<segment"):
        create(config, ALICE)


def test_if_none_match_parsing():
    assert if_none_match_hits('"a"', '"a"') and if_none_match_hits('W/"a"', '"a"')
    assert if_none_match_hits('"b", "a"', '"a"') and if_none_match_hits("*", '"a"')
    assert not if_none_match_hits("", '"a"') and not if_none_match_hits('"b"', '"a"')


# -- expansion of alice's weekly "Team lunch" -------------------------------------------------
def test_expansion_of_series_with_exception_and_cancellation(feed_env):
    gw, emu, config = feed_env
    mon = demo.anchor()
    url = create(config, f"{ALICE}/calendar", "--days-back", "14", "--days-ahead", "21",
                 "--expand")
    calendar = check_rfc5545(requests.get(url, timeout=30).content)
    lunches = [e for e in events(calendar) if str(e["SUMMARY"]).startswith("Team lunch")]
    for event in events(calendar):
        assert not {"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"} & set(event)
    assert len({str(e["UID"]) for e in events(calendar)}) == len(events(calendar))
    by_day = {local_day(e): e for e in lunches}
    assert len(by_day) == len(lunches)
    prior = mon - dt.timedelta(days=7)
    assert str(by_day[prior]["SUMMARY"]) == "Team lunch"
    assert by_day[prior]["DTSTART"].dt.hour == 12
    assert mon not in by_day  # moved to Tuesday ...
    moved = by_day[mon + dt.timedelta(days=1)]
    assert str(moved["SUMMARY"]) == "Team lunch (moved to Tuesday)"
    assert (moved["DTSTART"].dt.hour, moved["DTSTART"].dt.minute) == (12, 30)
    assert mon + dt.timedelta(days=7) not in by_day  # ... and the next one is cancelled
    assert str(by_day[mon + dt.timedelta(days=14)]["SUMMARY"]) == "Team lunch"
    # UIDs: the series' UID and the occurrence's original start, also for the moved one.
    uid = str(by_day[prior]["UID"]).rsplit("-", 1)[0]
    assert str(moved["UID"]).startswith(uid + "-")
    assert str(moved["UID"]) != f"{uid}-" + moved["DTSTART"].dt.astimezone(
        dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    assert "America/Los_Angeles" in {str(z["TZID"]) for z in calendar.walk("VTIMEZONE")}


def test_without_expansion_series_stay_whole(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{ALICE}/calendar", "--days-back", "14", "--days-ahead", "21")
    calendar = check_rfc5545(requests.get(url, timeout=30).content)
    lunches = [e for e in events(calendar) if str(e["SUMMARY"]).startswith("Team lunch")]
    masters = [e for e in lunches if "RRULE" in e]
    overrides = [e for e in lunches if "RECURRENCE-ID" in e]
    assert len(masters) == 1 and "EXDATE" in masters[0] and len(overrides) == 1
    assert overrides[0]["UID"] == masters[0]["UID"]


# -- privacy -----------------------------------------------------------------------------------
DETAILS = ("LOCATION", "DESCRIPTION", "ATTENDEE", "ORGANIZER", "URL", "CONFERENCE")


@pytest.mark.parametrize("expand", [False, True])
def test_privacy_modes(feed_env, expand):
    gw, emu, config = feed_env
    extra = ("--expand",) if expand else ()
    window = ("--days-back", "7", "--days-ahead", "14", *extra)
    bodies = {privacy: requests.get(create(config, f"{ALICE}/calendar", "--privacy", privacy,
                                           *window), timeout=30).content
              for privacy in ("full", "subject", "busy")}
    dentist_day = demo.anchor() + dt.timedelta(days=4)
    for privacy, body in bodies.items():
        calendar = check_rfc5545(body)
        assert b"Dentist" not in body, privacy  # a private event: a busy block everywhere
        blocks = [e for e in events(calendar) if local_day(e) == dentist_day
                  and e["DTSTART"].dt.hour == 8]
        assert len(blocks) == 1 and str(blocks[0]["SUMMARY"]) == "Busy"
        assert not set(DETAILS) & set(blocks[0])
    full = events(parse(bodies["full"]))
    assert any("LOCATION" in e and "Harry" in str(e["LOCATION"]) for e in full)
    assert any("DESCRIPTION" in e for e in full) and any("ATTENDEE" in e for e in full)
    subject = events(parse(bodies["subject"]))
    assert {"Team lunch", "Project review"} <= {str(e["SUMMARY"]) for e in subject}
    for event in subject:
        assert not set(DETAILS) & set(event), event
    assert b"Harry" not in bodies["subject"]
    busy = events(parse(bodies["busy"]))
    assert len(busy) == len(subject) == len(full)
    for event in busy:
        assert str(event["SUMMARY"]) == "Busy" and not set(DETAILS) & set(event)
    assert b"Team lunch" not in bodies["busy"] and b"Harry" not in bodies["busy"]


# -- polling: one Graph round per refresh interval -----------------------------------------------
def poll(url: str, seconds: float, displays: int) -> tuple[Counter, int]:
    """``displays`` threads polling ``url`` with If-None-Match for ``seconds``; returns
    (status counts, polls)."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    start = threading.Barrier(displays)

    def display():
        session = requests.Session()
        etag = None
        start.wait()
        while time.monotonic() < stop:
            response = session.get(url, headers={"If-None-Match": etag} if etag else {},
                                   timeout=30)
            etag = response.headers.get("ETag", etag)
            with lock:
                statuses[response.status_code] += 1
            time.sleep(0.05)
        session.close()

    threads = [threading.Thread(target=display) for _ in range(displays)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, sum(statuses.values())


def test_fifty_displays_cost_one_graph_round_per_refresh(feed_env):
    gw, emu, config = feed_env
    url = create(config, f"{ROOM}/calendar", "--expand", "--privacy", "subject")
    assert requests.get(url, timeout=30).status_code == 200  # first listing
    time.sleep(REFRESH)
    emu.clear_log()
    seconds = 5.0
    began = time.monotonic()
    statuses, polls = poll(url, seconds, displays=50)
    elapsed = time.monotonic() - began
    graph = [r for r in emu.request_log if r.mailbox == ROOM]
    rounds = [r for r in graph if r.path.endswith("/calendarView/delta") and not r.batched]
    assert set(statuses) <= {200, 304} and statuses[304] > statuses[200]
    assert polls >= 50 * 20
    # At most one round per refresh interval (the first listing aside), however many
    # displays poll: the background refresh runs when the cache is refresh_interval old.
    assert len(rounds) <= math.floor(elapsed / REFRESH) + 1, (len(rounds), elapsed)
    assert len(rounds) >= 2  # the cache was refreshed while the displays polled
    assert len(graph) == len(rounds)  # nothing but delta rounds: no listing per display
    assert all(r.status == 200 for r in graph)
    print(f"\n50 displays, {elapsed:.1f} s, refresh_interval {REFRESH:.0f} s: {polls} polls "
          f"({dict(statuses)}), {len(graph)} Graph requests, {len(rounds)} delta rounds")
