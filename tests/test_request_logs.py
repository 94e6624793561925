"""Request logs (radicale_graph.request_log): one info line per CalDAV request, one debug
line per Graph request (the emulator's request_log as the witness), path templates without
addresses or ids, no token or secret in any line; the demo's first screen is short."""

from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from radicale_graph.emulator import demo
from radicale_graph.request_log import login_of, template

from .conftest import ALICE, free_port, start_gateway

SECRETS = (demo.CLIENT_SECRET, "Bearer", "eyJ", ":demo")
GRAPH_LINE = re.compile(r"Graph [A-Z]+ (\S+) -> \S+ in \d+ ms")
REQUEST_LINE = re.compile(r"^(\S+) ([A-Z]+) (\S+) -> (\d{3}) in \d+ ms, (\d+) Graph requests?$")


@pytest.fixture(scope="module")
def quiet_gateway(emu, tmp_path_factory):
    """A gateway alone on its emulator, whose background refresh does not run during a test
    (refresh_interval of an hour): every Graph request comes from the test's requests."""
    gw, stop = start_gateway(emu, tmp_path_factory.mktemp("logs"), refresh_interval=3600)
    yield gw
    stop()


def test_one_debug_line_per_graph_request(quiet_gateway, caplog):
    gw, emu = quiet_gateway, quiet_gateway.emulator
    caplog.set_level(logging.DEBUG, logger="radicale_graph")
    start = len(emu.request_log)
    session = gw.session(ALICE)
    # A 429 on the delta round: the retried exchange has its own line, as in the emulator.
    emu.inject_fault(429, count=1, retry_after=1, path_contains="calendarView/delta")
    try:
        home = session.request("PROPFIND", f"{gw.url}/{ALICE[0]}/", headers={"Depth": "1"})
        calendar = session.request("PROPFIND", f"{gw.url}/{ALICE[0]}/calendar/",
                                   headers={"Depth": "1"})
        missing = session.get(f"{gw.url}/{ALICE[0]}/calendar/nothing-here.ics")
    finally:
        emu.clear_faults()
    assert (home.status_code, calendar.status_code, missing.status_code) == (207, 207, 404)
    sent = [r for r in emu.request_log[start:] if not r.batched]
    # Other gateways of the test session refresh their calendars in the background meanwhile
    # (their own emulators); this one's never does (refresh_interval of an hour).
    records = [r for r in caplog.records if r.name == "radicale_graph.graph"
               and r.levelno == logging.DEBUG and GRAPH_LINE.match(r.getMessage())
               and not r.threadName.startswith("radicale-graph-refresh")]
    assert sent and len(records) == len(sent), (
        [r.getMessage() for r in records], [(r.method, r.path) for r in sent])
    assert any(r.status == 429 for r in sent)
    assert any(" -> 429 " in r.getMessage() and "retrying" in r.getMessage() for r in records)
    assert sorted(template(r.path) for r in sent) == sorted(
        GRAPH_LINE.match(r.getMessage()).group(1) for r in records)
    for record in records:
        text = record.getMessage()
        assert "@" not in text, text
        assert "{user}" in text or "/$batch" in text, text
        assert not any(secret in text for secret in SECRETS), text

    lines = [r.getMessage() for r in caplog.records if r.name == "radicale_graph.request"]
    assert len(lines) == 3, lines
    parsed = [REQUEST_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(p[1], p[2], p[4]) for p in parsed] == [
        (ALICE[0], "PROPFIND", "207"), (ALICE[0], "PROPFIND", "207"), (ALICE[0], "GET", "404")]
    assert parsed[0][3] == f"/{ALICE[0]}/"
    counted = sum(int(p[5]) for p in parsed)
    # Requests of the delta round opened beside a full listing run in their own thread and
    # are not counted in the CalDAV request's line; all others are.
    assert 0 < counted <= len(sent)
    assert int(parsed[0][5]) > 0
    for record in caplog.records:
        assert not any(secret in record.getMessage() for secret in SECRETS), record.getMessage()


@pytest.mark.parametrize("path, expected", [
    ("/v1.0/users/alice@contoso.com/calendars", "/v1.0/users/{user}/calendars"),
    ("https://graph.microsoft.com/v1.0/users/alice%40contoso.com/calendars/AAMk%3D%3D/"
     "calendarView/delta?$deltatoken=abc", "/v1.0/users/{user}/calendars/{id}/calendarView/delta"),
    ("/v1.0/users/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/events/AAMkAGI2=/instances",
     "/v1.0/users/{user}/events/{id}/instances"),
    ("/v1.0/$batch", "/v1.0/$batch"),
    ("/v1.0/me/calendarGroups/AQMk1/calendars", "/v1.0/me/calendarGroups/{id}/calendars"),
    ("/v1.0/places/microsoft.graph.room", "/v1.0/places/microsoft.graph.room"),
    ("/v1.0/users('bob@contoso.com')/events", "/v1.0/{user}/events"),
    ("/v1.0/groups/3f2504e0-4f89-11d3-9a0c-0305e82c3301/calendar/events",
     "/v1.0/groups/{id}/calendar/events"),
])
def test_template(path, expected):
    assert template(path) == expected


def test_login_of_never_returns_the_password():
    import base64

    header = "Basic " + base64.b64encode(b"alice@contoso.com:s3cret:x").decode()
    assert login_of({"HTTP_AUTHORIZATION": header}) == "alice@contoso.com"
    assert login_of({}) == "-"
    assert login_of({"HTTP_AUTHORIZATION": "Bearer abc"}) == "-"
    assert login_of({"HTTP_AUTHORIZATION": "Basic !!!"}) == "-"


def test_demo_first_screen_is_short():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "radicale_graph.cli", "demo", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                              daemon=True)
    reader.start()
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"the demo did not listen: {lines}"
                time.sleep(0.1)
        time.sleep(1.0)  # whatever start-up still prints
        first_screen = list(lines)
        assert 0 < len(first_screen) < 15, "".join(first_screen)
        assert first_screen[0].startswith(f"CalDAV: http://127.0.0.1:{port}/")
        assert not any("Traceback" in line for line in first_screen)
        answer = requests.request("PROPFIND", f"http://127.0.0.1:{port}/{ALICE[0]}/",
                                  auth=ALICE, headers={"Depth": "1"}, timeout=30)
        assert answer.status_code == 207
        deadline = time.monotonic() + 5
        while not any(f"{ALICE[0]} PROPFIND /{ALICE[0]}/ -> 207" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        watchdog.cancel()
        reader.join(5)
        process.stdout.close()
