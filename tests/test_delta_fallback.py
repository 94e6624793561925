"""Change tracking on Graph v1.0: per-calendar ``/events/delta`` is beta only, so the gateway
never asks for it; it tracks ``calendarView/delta`` over a window and reconciles with a light
listing (periodically, and when an ``@removed`` needs explaining) for the rest of time."""

from __future__ import annotations

import time

import pytest

from .conftest import ALICE, outlook_event, start_gateway
from .test_sync_collection import CAL, parse, sync

REFRESH = 1.0


@pytest.fixture()
def no_events_delta(tmp_path):
    from radicale_graph.emulator import Emulator

    emulator = Emulator(load_demo=True)  # v1.0 by default: /events/delta answers 400
    emulator.start()
    gateway, stop = start_gateway(emulator, tmp_path, refresh_interval=REFRESH,
                                  delta_window=60, full_listing_interval=4)
    yield emulator, gateway
    stop()
    emulator.stop()


def test_calendar_view_delta_inside_window_and_full_listing_outside(no_events_delta):
    emulator, gateway = no_events_delta
    session = gateway.session(ALICE)
    token, _, _ = parse(sync(gateway, session))
    paths = [r.path for r in emulator.request_log]
    assert any(p.endswith("/calendarView/delta") for p in paths)
    assert not any(p.endswith("/events/delta") for p in paths)  # beta only: never asked
    # Inside the window: seen at the next refresh.
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 86400))
    inside = outlook_event(emulator, "Inside the window", day)
    time.sleep(REFRESH + 0.2)
    token, changed, _ = parse(sync(gateway, session, token))
    assert len(changed) == 1
    (inside_href,) = changed
    assert "Inside the window" in session.get(f"{gateway.url}{CAL}{inside_href}").text
    # Far outside the window: seen after the reconciliation (periodic, or for its @removed).
    outside = outlook_event(emulator, "Far away", "2031-06-02")
    time.sleep(4.5)
    token, changed, _ = parse(sync(gateway, session, token))
    assert len(changed) == 1
    # Deleted inside the window: reported as deleted.
    emulator.store.delete_event("alice@contoso.com", inside["id"])
    time.sleep(REFRESH + 0.2)
    _, changed, deleted = parse(sync(gateway, session, token))
    assert deleted == {inside_href}
    assert outside["id"]
    assert not any(r.path.endswith("/events/delta") for r in emulator.request_log)


def test_expired_delta_token_lists_again_and_loses_nothing(no_events_delta):
    """410 syncStateNotFound (concepts/delta-query-overview.md): the calendar is listed again
    and a new round opened; clients' sync tokens keep working and see the change."""
    emulator, gateway = no_events_delta
    session = gateway.session(ALICE)
    token, _, _ = parse(sync(gateway, session))
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    emulator.expire_delta_tokens()
    added = outlook_event(emulator, "After the token expired", day)
    emulator.clear_log()
    time.sleep(REFRESH + 0.2)
    token, changed, deleted = parse(sync(gateway, session, token))
    assert len(changed) == 1 and not deleted
    (href,) = changed
    assert "After the token expired" in session.get(f"{gateway.url}{CAL}{href}").text
    statuses = [(r.path.rsplit("/", 1)[-1], r.status) for r in emulator.request_log
                if not r.batched]
    assert ("delta", 410) in statuses
    # A new round was opened and the calendar listed again.
    assert statuses.count(("events", 200)) >= 1
    assert [s for s in statuses if s[0] == "delta"][-1] == ("delta", 200)
    assert added["id"]
