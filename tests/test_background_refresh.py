"""Background refresh (radicale_graph/storage/refresher.py): a calendar clients read is kept
fresh, so a read after an Outlook change costs no Graph request and already shows it."""

from __future__ import annotations

import re
import threading
import time
from xml.etree import ElementTree as ET

import pytest

from radicale_graph.emulator import Emulator
from radicale_graph.storage.refresher import BackgroundRefresher

from .conftest import ALICE, start_gateway

REFRESH = 1.0
SYNC = """<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>
<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    emulator = Emulator(load_demo=True)
    emulator.start()
    gateway, stop = start_gateway(emulator, tmp_path_factory.mktemp("background"),
                                  refresh_interval=REFRESH, idle_after=3)
    yield emulator, gateway
    stop()
    emulator.stop()


def _sync(session, url, token=""):
    answer = session.request("REPORT", url, data=SYNC.format(token=token),
                             headers={"Depth": "1", "Content-Type": "application/xml"})
    assert answer.status_code == 207, answer.text
    new = ET.fromstring(answer.content).find("{DAV:}sync-token").text
    return new, answer.text


def test_a_change_in_outlook_is_there_before_the_client_asks(setup):
    emulator, gateway = setup
    session = gateway.session()
    url = f"{gateway.url}/{ALICE[0]}/calendar/"
    token, _ = _sync(session, url)
    record = next(r for r in emulator.store.records(ALICE[0], None)
                  if not r.data.get("recurrence"))
    emulator.store.update_event(ALICE[0], record.id, {"subject": "Moved in Outlook"})
    time.sleep(REFRESH + 0.5)  # the background round runs at 0.75 x refresh_interval
    before = len(emulator.request_log)
    token, body = _sync(session, url, token)
    assert len(emulator.request_log) == before, "the read waited for Graph"
    assert re.search(r"<(?:D:)?href>[^<]+\.ics</(?:D:)?href>", body), body


def test_calendars_nobody_reads_are_no_longer_refreshed(setup):
    emulator, gateway = setup
    gateway.session().request("PROPFIND", f"{gateway.url}/{ALICE[0]}/calendar/",
                              headers={"Depth": "0"})
    time.sleep(3 + 2 * REFRESH)  # past idle_after: dropped
    before = len(emulator.request_log)
    time.sleep(3 * REFRESH)
    assert len(emulator.request_log) == before


def test_a_hint_refreshes_at_once_and_per_mailbox_limits_hold():
    refresher = BackgroundRefresher(refresh_interval=60, idle_after=600, workers=4,
                                    per_mailbox=2)
    running, peak, lock = [0], [0], threading.Lock()
    done = threading.Event()
    calls = []

    def refresh(hinted):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
            calls.append(hinted)
            if len(calls) == 4:
                done.set()

    refresher.start()
    try:
        for n in range(4):
            refresher.touch(("box", n), "box@contoso.com", refresh, lambda: 1.0)
        time.sleep(0.3)
        assert calls == []  # fresh (1 s old of 60): nothing to do
        assert refresher.hint("box@contoso.com") == 4
        assert done.wait(5)
        assert all(calls) and peak[0] <= 2
    finally:
        refresher.stop()
