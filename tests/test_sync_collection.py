"""RFC 6578 sync-collection through the gateway: tokens return only what changed (deletions
included), survive a restart of the gateway, and bad tokens give valid-sync-token; the ctag
changes exactly when content changes."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from .conftest import ALICE, outlook_event, start_gateway
from .test_request_budget import CAL, PROPFIND_CTAG, event, sync_report

REFRESH = 1.0


def sync(gateway, session, token=""):
    response = session.request("REPORT", gateway.url + CAL, data=sync_report(token),
                               headers={"Depth": "1"})
    return response


def parse(response):
    new_token = re.search(r"<sync-token>([^<]+)</sync-token>", response.text).group(1)
    changed, deleted = set(), set()
    for block in re.findall(r"<response>(.*?)</response>", response.text, re.S):
        href = re.search(r"<href>([^<]+)</href>", block).group(1)
        (deleted if "404 Not Found" in block else changed).add(href.rsplit("/", 1)[-1])
    return new_token, changed, deleted


def ctag(gateway, session):
    response = session.request("PROPFIND", gateway.url + CAL, data=PROPFIND_CTAG,
                               headers={"Depth": "0"})
    return re.search(r"getctag>([^<]+)<", response.text).group(1)


@pytest.fixture()
def fresh(tmp_path):
    from radicale_graph.emulator import Emulator

    emulator = Emulator(load_demo=True)
    emulator.start()
    yield emulator, tmp_path
    emulator.stop()


def test_token_returns_only_changes_and_deletions(fresh):
    emulator, folder = fresh
    gateway, stop = start_gateway(emulator, folder, refresh_interval=REFRESH)
    try:
        session = gateway.session(ALICE)
        a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
        for uid in (a, b):
            assert session.put(f"{gateway.url}{CAL}{uid}.ics", data=event(uid)).status_code \
                == 201
        token, everything, _ = parse(sync(gateway, session))
        assert {f"{a}.ics", f"{b}.ics"} <= everything
        same, changed, deleted = parse(sync(gateway, session, token))
        assert same == token and not changed and not deleted
        assert session.put(f"{gateway.url}{CAL}{a}.ics",
                           data=event(a, "Changed")).status_code == 204
        assert session.delete(f"{gateway.url}{CAL}{b}.ics").status_code in (200, 204)
        token2, changed, deleted = parse(sync(gateway, session, token))
        assert changed == {f"{a}.ics"} and deleted == {f"{b}.ics"}
        assert token2 != token
    finally:
        stop()


def test_outlook_changes_reach_sync_within_refresh_interval(fresh):
    emulator, folder = fresh
    gateway, stop = start_gateway(emulator, folder, refresh_interval=REFRESH)
    try:
        session = gateway.session(ALICE)
        token, before, _ = parse(sync(gateway, session))
        tag = ctag(gateway, session)
        created = outlook_event(emulator, "Made in Outlook", "2026-12-02")
        time.sleep(REFRESH + 0.2)
        token2, changed, deleted = parse(sync(gateway, session, token))
        assert len(changed) == 1 and not deleted
        (href,) = changed
        body = session.get(f"{gateway.url}{CAL}{href}").text
        assert "SUMMARY:Made in Outlook" in body
        new_tag = ctag(gateway, session)
        assert new_tag != tag
        assert ctag(gateway, session) == new_tag  # no change, same ctag
        emulator.store.delete_event("alice@contoso.com", created["id"])
        time.sleep(REFRESH + 0.2)
        _, changed, deleted = parse(sync(gateway, session, token2))
        assert deleted == {href} and not changed
    finally:
        stop()


def test_token_survives_gateway_restart(fresh):
    emulator, folder = fresh
    gateway, stop = start_gateway(emulator, folder, refresh_interval=REFRESH)
    session = gateway.session(ALICE)
    token, _, _ = parse(sync(gateway, session))
    old_tag = ctag(gateway, session)
    stop()
    # While the gateway is down, Outlook adds an event.
    outlook_event(emulator, "While down", "2026-12-03")
    gateway, stop = start_gateway(emulator, folder, refresh_interval=REFRESH)
    try:
        session = gateway.session(ALICE)
        response = sync(gateway, session, token)
        assert response.status_code == 207, response.text
        _, changed, deleted = parse(response)
        assert len(changed) == 1 and not deleted
        assert ctag(gateway, session) != old_tag
    finally:
        stop()


def test_unknown_token_gives_valid_sync_token(fresh):
    emulator, folder = fresh
    gateway, stop = start_gateway(emulator, folder, refresh_interval=REFRESH)
    try:
        session = gateway.session(ALICE)
        for bad in ("http://radicale-graph.invalid/ns/sync/ffff-3",
                    "http://example.com/other-server-token"):
            response = sync(gateway, session, bad)
            assert response.status_code == 403
            assert "valid-sync-token" in response.text
    finally:
        stop()
