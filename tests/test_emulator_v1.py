"""The emulator answers as Graph v1.0 does at its strictest, by default (docs/emulator.md).

Each test drives one behaviour through HTTPS with ``requests``; the writes go to calendars the
tests make themselves, so the demo data other tests read stays as loaded.
"""

from __future__ import annotations

import time
import uuid

import pytest

from radicale_graph.emulator import Emulator, demo

ALICE, BOB = demo.USERS
SCOPE = ["https://graph.microsoft.com/.default"]
WINDOW = {"startDateTime": "2027-05-01T00:00:00Z", "endDateTime": "2027-06-01T00:00:00Z"}
REMOVED = {"reason": "deleted"}


def _event(subject, day="2027-05-10", start="09:00", end="10:00", **extra):
    return {"subject": subject,
            "start": {"dateTime": f"{day}T{start}:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T{end}:00", "timeZone": "UTC"}, **extra}


def _weekly(subject, day="2027-05-03", count=4):
    return _event(subject, day=day, recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["Monday"]},
        "range": {"type": "numbered", "startDate": day, "numberOfOccurrences": count}})


def _calendar(graph, user=BOB):
    r = graph("POST", f"/users/{user}/calendars", json={"name": f"v1 {uuid.uuid4()}"})
    assert r.status_code == 201
    return r.json()["id"]


def _round(graph, url, params=None, headers=None):
    """Follow nextLinks to the deltaLink: (items, pages, deltaLink)."""
    body = graph("GET", url, params=params, headers=headers)
    assert body.status_code == 200, body.text
    body = body.json()
    items, pages = [], 1
    while "@odata.nextLink" in body:
        items += body["value"]
        body = graph("GET", body["@odata.nextLink"], headers=headers).json()
        pages += 1
    return items + body["value"], pages, body["@odata.deltaLink"]


# -- 1. /events/delta is beta only ------------------------------------------------------------


def test_events_delta_answers_400_as_v1(emu, graph):
    cid = _calendar(graph)
    paths = [f"/users/{BOB}/calendars/{cid}/events/delta", f"/users/{BOB}/calendar/events/delta",
             f"/users/{BOB}/events/delta"]
    for path in paths:
        r = graph("GET", path)
        assert r.status_code == 400, path
        assert r.json()["error"]["code"] == "BadRequest"
    batch = graph("POST", "/$batch", json={"requests": [
        {"id": str(n), "method": "GET", "url": p} for n, p in enumerate(paths)]}).json()
    assert {x["status"] for x in batch["responses"]} == {400}
    assert emu.api.events_delta is False
    assert Emulator(load_demo=False, beta=True).api.events_delta is True
    emu.api.events_delta = True  # the beta switch
    try:
        assert graph("GET", paths[0]).status_code == 200
    finally:
        emu.api.events_delta = False


# -- 2. calendarView/delta with v1.0 rules ----------------------------------------------------


def test_calendar_view_delta_follows_v1_rules(emu, graph):
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}"
    url = f"{base}/calendarView/delta"
    # the window is required on the first request; query options are refused
    r = graph("GET", url, params={"startDateTime": WINDOW["startDateTime"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidParameter"
    for name, value in (("$select", "subject"), ("$expand", "exceptionOccurrences"),
                        ("$filter", "subject eq 'x'"), ("$orderby", "subject"),
                        ("$search", "x")):
        assert graph("GET", url, params={**WINDOW, name: value}).status_code == 400, name
    for other in (f"/users/{BOB}/calendarView/delta", f"/users/{BOB}/calendar/calendarView/delta"):
        assert graph("GET", other, params=WINDOW).status_code == 200

    keep = graph("POST", f"{base}/events", json=_event("keep", day="2027-05-10")).json()
    gone = graph("POST", f"{base}/events", json=_event("gone", day="2027-05-11")).json()
    leave = graph("POST", f"{base}/events", json=_event("leave", day="2027-05-12")).json()
    series = graph("POST", f"{base}/events", json=_weekly("weekly")).json()
    far = graph("POST", f"{base}/events", json=_weekly("far", day="2027-09-06")).json()
    prefer = {"Prefer": "odata.maxpagesize=2"}
    items, pages, link = _round(graph, url, WINDOW, prefer)
    assert pages >= 3
    assert {i["type"] for i in items} == {"singleInstance", "occurrence"}  # never seriesMaster
    assert series["id"] not in {i["id"] for i in items} and far["id"] not in {
        i["id"] for i in items}
    assert all(i["@odata.type"] == "#microsoft.graph.event" for i in items)
    assert len([i for i in items if i.get("seriesMasterId") == series["id"]]) == 4
    assert "cancelledOccurrences" not in items[0]
    weekly_ids = [i["id"] for i in items if i.get("seriesMasterId") == series["id"]]

    # nothing changed: an empty round (the window comes from the token)
    again, _, link = _round(graph, link)
    assert again == []

    graph("PATCH", f"{base}/events/{keep['id']}", json={"subject": "kept"})
    graph("DELETE", f"{base}/events/{gone['id']}")
    graph("PATCH", f"{base}/events/{leave['id']}", json={  # leaves the window
        "start": {"dateTime": "2027-07-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-07-01T10:00:00", "timeZone": "UTC"}})
    outside = graph("POST", f"{base}/events", json=_event("outside", day="2027-08-01")).json()
    graph("PATCH", f"{base}/events/{far['id']}", json={"subject": "far changed"})
    graph("PATCH", f"{base}/events/{series['id']}", json={  # the whole series leaves too
        "start": {"dateTime": "2027-10-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-10-04T10:00:00", "timeZone": "UTC"},
        "recurrence": {**series["recurrence"], "range": {
            "type": "numbered", "startDate": "2027-10-04", "numberOfOccurrences": 4}}})
    changes, _, link = _round(graph, link)
    assert [i["subject"] for i in changes if "@removed" not in i] == ["kept"]
    removed = {i["id"] for i in changes if "@removed" in i}
    assert all(i["@removed"] == REMOVED and set(i) == {"@odata.type", "id", "@removed"}
               for i in changes if "@removed" in i)
    # deleted, left the window, added/changed outside it (by the master id: none seen)
    assert removed == {gone["id"], leave["id"], outside["id"], far["id"], *weekly_ids}

    emu.expire_delta_tokens()
    r = graph("GET", link)
    assert r.status_code == 410 and r.json()["error"]["code"] == "syncStateNotFound"
    assert graph("GET", url, params=WINDOW).status_code == 200  # a new round works


# -- 3. cancelledOccurrences / exceptionOccurrences only in a GET by id -----------------------


def test_series_exceptions_only_in_get_by_id(graph):
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}"
    master = graph("POST", f"{base}/events", json=_weekly("standup")).json()
    inst = graph("GET", f"{base}/events/{master['id']}/instances", params=WINDOW).json()["value"]
    assert graph("DELETE", f"{base}/events/{inst[1]['id']}").status_code == 204
    graph("PATCH", f"{base}/events/{inst[2]['id']}", json={"subject": "standup (moved)"})
    by_id = f"{base}/events/{master['id']}"
    got = graph("GET", by_id, params={"$select": "subject,cancelledOccurrences"}).json()
    assert got["cancelledOccurrences"] == [f"OID.{master['id']}.2027-05-10"]
    got = graph("GET", by_id, params={"$expand": "exceptionOccurrences"}).json()
    assert [e["subject"] for e in got["exceptionOccurrences"]] == ["standup (moved)"]

    both = {"$select": "subject,cancelledOccurrences", "$expand": "exceptionOccurrences"}
    collections = [(f"{base}/events", both),
                   (f"{base}/calendarView", {**WINDOW, **both}),
                   (f"{base}/events/{master['id']}/instances", {**WINDOW, **both})]
    for path, params in collections:
        r = graph("GET", path, params=params)
        assert r.status_code == 200, path
        for item in r.json()["value"]:
            assert "cancelledOccurrences" not in item and "exceptionOccurrences" not in item
            assert "subject" in item
    listed = graph("GET", f"{base}/events", params={"$expand": "exceptionOccurrences"}).json()
    assert [i["id"] for i in listed["value"]] == [master["id"]]
    assert "exceptionOccurrences" not in listed["value"][0]
    items, _, _ = _round(graph, f"{base}/calendarView/delta", WINDOW)
    assert all("cancelledOccurrences" not in i and "exceptionOccurrences" not in i for i in items)
    query = "?$select=subject,cancelledOccurrences&$expand=exceptionOccurrences"
    batch = graph("POST", "/$batch", json={"requests": [
        {"id": "list", "method": "GET", "url": f"{base}/events{query}"},
        {"id": "one", "method": "GET", "url": f"{by_id}{query}"}]}).json()
    by = {x["id"]: x for x in batch["responses"]}
    assert by["list"]["status"] == 200
    assert "cancelledOccurrences" not in by["list"]["body"]["value"][0]
    assert "exceptionOccurrences" not in by["list"]["body"]["value"][0]
    assert by["one"]["body"]["cancelledOccurrences"] == [f"OID.{master['id']}.2027-05-10"]
    assert len(by["one"]["body"]["exceptionOccurrences"]) == 1


# -- 4. transactionId is used for good --------------------------------------------------------


def test_transaction_id_is_remembered_for_good(graph):
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}/events"
    txn = str(uuid.uuid4())
    first = graph("POST", base, json=_event("once", transactionId=txn))
    assert first.status_code == 201
    for _ in range(2):  # while the event exists, then after it was deleted
        r = graph("POST", base, json=_event("twice", transactionId=txn))
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "ErrorDuplicateTransactionId"
        assert r.json()["error"]["message"] == (
            "Your request can't be completed. The TransactionId specified in the request has "
            "already been used to create a different event.")
        graph("DELETE", f"{base}/{first.json()['id']}")
    assert [e["subject"] for e in graph("GET", base).json()["value"]] == []
    assert graph("POST", f"/users/{ALICE}/events",  # another mailbox has its own ids
                 json=_event("alice", transactionId=txn)).status_code == 201


# -- 5. housekeeping --------------------------------------------------------------------------


def test_housekeeping_moves_change_keys_without_content(emu, graph):
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}"
    ev = graph("POST", f"{base}/events", json=_event("quiet")).json()
    master = graph("POST", f"{base}/events", json=_weekly("series")).json()
    _, _, link = _round(graph, f"{base}/calendarView/delta", WINDOW)
    time.sleep(0.01)
    assert emu.housekeep(BOB, ev["id"]) == [ev["id"]]
    after = graph("GET", f"{base}/events/{ev['id']}").json()
    assert after["@odata.etag"] != ev["@odata.etag"] and after["changeKey"] != ev["changeKey"]
    assert after["lastModifiedDateTime"] > ev["lastModifiedDateTime"]
    strip = ("@odata.etag", "changeKey", "lastModifiedDateTime", "@odata.context")
    assert {k: v for k, v in after.items() if k not in strip} == {
        k: v for k, v in ev.items() if k not in strip}
    changes, _, link = _round(graph, link)
    assert [i["id"] for i in changes] == [ev["id"]]  # reported again by delta
    assert emu.housekeep(event_id=master["id"]) == [master["id"]]  # any mailbox
    assert graph("GET", f"{base}/events/{master['id']}").json()["changeKey"] != master[
        "changeKey"]
    changes, _, _ = _round(graph, link)
    assert {i.get("seriesMasterId") for i in changes} == {master["id"]}
    assert len(emu.housekeep(BOB, count=2)) == 2
    assert len(emu.housekeep(count=3)) == 3

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("REQUESTS_CA_BUNDLE", raising=False)
        busy = Emulator(load_demo=True, housekeeping_interval=0.05)

        def keys():
            with busy.store.lock:
                return {r.id: r.data["changeKey"] for b in busy.store.mailboxes()
                        for r in b.events.values()}

        before = keys()
        busy.start()
        try:
            deadline = time.monotonic() + 5
            while keys() == before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert keys() != before and set(keys()) == set(before)
        finally:
            busy.stop()
        assert busy._housekeeping_thread is None


def test_a_change_between_pages_of_a_round_is_reported_by_the_next_round(graph):
    """Pages are served as the items are when asked for (the emulator copies only what it
    returns); a change made while a client pages through a round still reaches it with the
    next round, as Graph's token tracks from where the round began."""
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}"
    made = [graph("POST", f"{base}/events", json=_event(f"e{n}", day=f"2027-05-{10 + n}")).json()
            for n in range(3)]
    paged = {"Prefer": "odata.maxpagesize=1"}
    first = graph("GET", f"{base}/calendarView/delta", params=WINDOW, headers=paged).json()
    assert [i["subject"] for i in first["value"]] == ["e0"]
    last = made[2]
    assert graph("PATCH", f"{base}/events/{last['id']}",
                 json={"subject": "e2 renamed"}).status_code == 200
    items, link = [], first["@odata.nextLink"]
    while link:
        body = graph("GET", link, headers=paged).json()
        items += body["value"]
        link = body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
    assert [i["id"] for i in items] == [made[1]["id"], last["id"]]
    changes, _, _ = _round(graph, delta_link)
    assert [(i["id"], i["subject"]) for i in changes] == [(last["id"], "e2 renamed")]


# -- 6. deleted events stay readable by id ----------------------------------------------------


def test_deleted_event_is_readable_by_id_while_retained(emu, graph):
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}"
    ev = graph("POST", f"{base}/events", json=_event("to delete")).json()
    series = graph("POST", f"{base}/events", json=_weekly("series to delete")).json()
    _, _, link = _round(graph, f"{base}/calendarView/delta", WINDOW)
    assert graph("DELETE", f"/users/{BOB}/events/{ev['id']}").status_code == 204
    assert graph("DELETE", f"{base}/events/{series['id']}").status_code == 204
    for path in (f"/users/{BOB}/events/{ev['id']}", f"{base}/events/{ev['id']}"):
        r = graph("GET", path)
        assert r.status_code == 200 and r.json()["subject"] == "to delete"
        assert r.json()["changeKey"] == ev["changeKey"]
    assert graph("GET", f"{base}/events/{series['id']}").json()["type"] == "seriesMaster"
    assert graph("GET", f"{base}/events").json()["value"] == []
    assert graph("GET", f"{base}/calendarView", params=WINDOW).json()["value"] == []
    assert graph("GET", f"{base}/events/{series['id']}/instances",
                 params=WINDOW).status_code == 404
    assert graph("PATCH", f"{base}/events/{ev['id']}", json={"subject": "x"}).status_code == 404
    assert graph("DELETE", f"{base}/events/{ev['id']}").status_code == 404
    changes, _, _ = _round(graph, link)
    assert all(i["@removed"] == REMOVED for i in changes)
    assert ev["id"] in {i["id"] for i in changes} and len(changes) == 5  # 1 + 4 occurrences
    emu.deleted_retention = 0
    try:
        assert graph("GET", f"/users/{BOB}/events/{ev['id']}").status_code == 404
    finally:
        emu.deleted_retention = 3600.0
    assert Emulator(load_demo=False, deleted_retention=5.0).deleted_retention == 5.0


# -- 7. batch items are throttled individually; faults ----------------------------------------


def test_batch_items_throttled_individually_and_faults(emu, graph):
    cid = _calendar(graph)
    base = f"/users/{BOB}/calendars/{cid}/events"
    emu.inject_fault(status=429, retry_after=7, path_contains=f"/users/{ALICE}/calendar")
    r = graph("POST", "/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{ALICE}/calendar"},
        {"id": "2", "method": "GET", "url": f"/users/{ALICE}/calendars", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users/{BOB}/calendar"}]})
    assert r.status_code == 200 and "Retry-After" not in r.headers
    by = {x["id"]: x for x in r.json()["responses"]}
    assert by["1"]["status"] == 429 and by["1"]["headers"]["Retry-After"] == "7"
    assert by["1"]["body"]["error"]["code"] == "ApplicationThrottled"
    assert by["2"]["status"] == 424
    assert by["3"]["status"] == 200 and "Retry-After" not in by["3"]["headers"]

    emu.inject_fault(status=500, method="PATCH", retry_after=None, path_contains=base)
    ev = graph("POST", base, json=_event("faulty"))
    assert ev.status_code == 201  # not a PATCH: untouched
    r = graph("PATCH", f"{base}/{ev.json()['id']}", json={"subject": "never"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "InternalServerError"
    assert graph("GET", f"{base}/{ev.json()['id']}").json()["subject"] == "faulty"

    txn = str(uuid.uuid4())
    emu.inject_fault(status=504, method="POST", after=True, path_contains=base)
    lost = graph("POST", base, json=_event("lost answer", transactionId=txn))
    assert lost.status_code == 504 and lost.json()["error"]["code"] == "GatewayTimeout"
    assert lost.headers["Retry-After"] == "2"
    subjects = [e["subject"] for e in graph("GET", base).json()["value"]]
    assert subjects.count("lost answer") == 1  # it was created all the same
    retry = graph("POST", base, json=_event("lost answer", transactionId=txn))
    assert retry.status_code == 400
    assert retry.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    emu.inject_fault(status=503, count=5, path_contains="/nowhere")
    emu.clear_faults()
    with pytest.raises(ValueError):
        emu.inject_fault(status=418)
