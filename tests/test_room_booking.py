"""Room booking the Exchange way (issue 12): an invited room's Resource Booking Attendant
accepts when the room is free and declines when it is busy, asynchronously; the decision is the
room attendee's ``status`` in the organizer's event and, through the gateway, its PARTSTAT.

Graph-level tests use the module's own emulator (``emu``/``graph``); the end-to-end tests use
the session's gateway (refresh_interval=1) and its emulator.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

import pytest

from radicale_graph.emulator import demo

from .conftest import ALICE

ALICE_UPN = "alice@contoso.com"
BAKER = "room-baker@contoso.com"
ADAMS = "room-adams@contoso.com"


def _day(weeks: int, weekday: int = 2) -> str:
    """A day ``weeks`` after the demo's anchor Monday (Wednesday by default)."""
    return (demo.anchor() + dt.timedelta(weeks=weeks, days=weekday)).isoformat()


def _body(subject, day, start, end, rooms=(BAKER,), **extra) -> dict:
    return {"subject": subject,
            "body": {"contentType": "text", "content": "Agenda"},
            "start": {"dateTime": f"{day}T{start}:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T{end}:00", "timeZone": "UTC"},
            "attendees": [{"type": "resource", "emailAddress": {"address": r, "name": r}}
                          for r in rooms], **extra}


def _room_status(event: dict, room: str = BAKER) -> dict:
    return next(a["status"] for a in event["attendees"]
                if a["emailAddress"]["address"].lower() == room)


def _wait_status(graph, event_id: str, room: str = BAKER, timeout: float = 5.0) -> dict:
    """Poll the organizer's event until the room has answered (the attendant is async)."""
    deadline = time.monotonic() + timeout
    while True:
        got = graph("GET", f"/users/{ALICE_UPN}/events/{event_id}").json()
        status = _room_status(got, room)
        if status["response"] != "none" or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def _copies(store, uid: str, room: str = BAKER) -> list:
    return [r for r in store.records(room, None) if r.data.get("iCalUId") == uid]


# -- Graph level ---------------------------------------------------------------------------


def test_free_room_accepts_asynchronously_and_keeps_a_copy(emu, graph):
    r = graph("POST", f"/users/{ALICE_UPN}/events", json=_body("Sync", _day(3), "13:00", "14:00"))
    assert r.status_code == 201, r.text
    created = r.json()
    # The 201 is answered before the room decided (Exchange's attendant is asynchronous).
    assert _room_status(created)["response"] == "none"
    got = _wait_status(graph, created["id"])
    status = _room_status(got)
    assert status["response"] == "accepted"
    assert status["time"] != "0001-01-01T00:00:00Z"
    assert got["changeKey"] != created["changeKey"]
    assert got["lastModifiedDateTime"] >= created["lastModifiedDateTime"]
    [copy] = _copies(emu.store, created["iCalUId"])
    data = copy.data
    assert data["isOrganizer"] is False
    assert data["organizer"]["emailAddress"]["address"] == ALICE_UPN
    assert data["responseStatus"]["response"] == "accepted"
    assert data["start"] == got["start"] or data["start"]["dateTime"].startswith(
        f"{_day(3)}T13:00")
    # Exchange's defaults for rooms: the organizer's name replaces the subject, body removed.
    assert data["subject"] == "Alice Archer"
    assert data["body"]["content"] == ""


def test_busy_room_declines_and_keeps_no_copy(emu, graph):
    first = graph("POST", f"/users/{ALICE_UPN}/events",
                  json=_body("Planning", _day(4), "09:00", "10:00")).json()
    second = graph("POST", f"/users/{ALICE_UPN}/events",
                   json=_body("Overlap", _day(4), "09:30", "10:30")).json()
    assert _room_status(_wait_status(graph, first["id"]))["response"] == "accepted"
    assert _room_status(_wait_status(graph, second["id"]))["response"] == "declined"
    assert len(_copies(emu.store, first["iCalUId"])) == 1
    assert _copies(emu.store, second["iCalUId"]) == []
    # Back to back is no conflict.
    third = graph("POST", f"/users/{ALICE_UPN}/events",
                  json=_body("After", _day(4), "10:00", "11:00")).json()
    assert _room_status(_wait_status(graph, third["id"]))["response"] == "accepted"


def test_location_alone_does_not_book(emu, graph):
    body = _body("Location only", _day(5), "09:00", "10:00", rooms=())
    body["location"] = {"displayName": "Baker Huddle Room", "locationEmailAddress": BAKER,
                        "locationType": "conferenceRoom"}
    created = graph("POST", f"/users/{ALICE_UPN}/events", json=body).json()
    emu.store.booking.run_pending()
    assert _copies(emu.store, created["iCalUId"]) == []


def test_reschedule_decides_again_and_cancel_removes_the_copy(emu, graph):
    blocker = graph("POST", f"/users/{ALICE_UPN}/events",
                    json=_body("Blocker", _day(6), "15:00", "16:00")).json()
    moving = graph("POST", f"/users/{ALICE_UPN}/events",
                   json=_body("Moving", _day(6), "08:00", "09:00")).json()
    emu.store.booking.run_pending()
    assert _room_status(_wait_status(graph, moving["id"]))["response"] == "accepted"
    # A subject change is no new request: the response stays, the copy follows.
    before = _room_status(_wait_status(graph, moving["id"]))
    r = graph("PATCH", f"/users/{ALICE_UPN}/events/{moving['id']}", json={"subject": "Moved"})
    assert r.status_code == 200
    emu.store.booking.run_pending()
    assert _room_status(_wait_status(graph, moving["id"])) == before
    # Writing the room's status back (a client re-sending its copy) does not change it.
    r = graph("PATCH", f"/users/{ALICE_UPN}/events/{moving['id']}",
              json={"attendees": [{"type": "resource", "status": {"response": "none"},
                                   "emailAddress": {"address": BAKER, "name": "Baker"}}]})
    assert _room_status(r.json()) == before
    # Moved onto the blocker: declined, the room's copy is gone.
    r = graph("PATCH", f"/users/{ALICE_UPN}/events/{moving['id']}", json={
        "start": {"dateTime": f"{_day(6)}T15:30:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{_day(6)}T16:30:00", "timeZone": "UTC"}})
    assert r.status_code == 200
    emu.store.booking.run_pending()
    assert _room_status(_wait_status(graph, moving["id"]))["response"] == "declined"
    assert _copies(emu.store, moving["iCalUId"]) == []
    # Cancelling the blocker removes its copy from the room.
    assert len(_copies(emu.store, blocker["iCalUId"])) == 1
    assert graph("DELETE", f"/users/{ALICE_UPN}/events/{blocker['id']}").status_code == 204
    emu.store.booking.run_pending()
    assert _copies(emu.store, blocker["iCalUId"]) == []


def test_uninviting_the_room_removes_its_copy(emu, graph):
    created = graph("POST", f"/users/{ALICE_UPN}/events",
                    json=_body("Uninvite", _day(7), "09:00", "10:00")).json()
    emu.store.booking.run_pending()
    assert len(_copies(emu.store, created["iCalUId"])) == 1
    graph("PATCH", f"/users/{ALICE_UPN}/events/{created['id']}", json={"attendees": []})
    emu.store.booking.run_pending()
    assert _copies(emu.store, created["iCalUId"]) == []


def _weekly(subject, day, start, end, count=None, **extra):
    body = _body(subject, day, start, end, **extra)
    weekday = dt.date.fromisoformat(day).strftime("%A").lower()
    rng = {"type": "numbered", "numberOfOccurrences": count, "startDate": day} if count \
        else {"type": "noEnd", "startDate": day}
    body["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [weekday]},
                          "range": rng}
    return body


def test_series_conflicts_and_booking_window(emu, graph):
    store = emu.store
    one = graph("POST", f"/users/{ALICE_UPN}/events",
                json=_body("One-off", _day(10), "11:00", "12:00")).json()
    # A weekly series whose second occurrence hits the one-off: declined (no conflicts allowed).
    series = graph("POST", f"/users/{ALICE_UPN}/events",
                   json=_weekly("Weekly", _day(9), "11:30", "12:30", count=4)).json()
    store.booking.run_pending()
    assert _room_status(_wait_status(graph, one["id"]))["response"] == "accepted"
    assert _room_status(_wait_status(graph, series["id"]))["response"] == "declined"
    assert _copies(store, series["iCalUId"]) == []
    # With one conflict allowed the series is accepted and that occurrence declined.
    store.booking.set_policy(BAKER, MaximumConflictInstances=1, ConflictPercentageAllowed=25)
    try:
        allowed = graph("POST", f"/users/{ALICE_UPN}/events",
                        json=_weekly("Weekly 2", _day(9), "11:30", "12:30", count=4)).json()
        store.booking.run_pending()
        assert _room_status(_wait_status(graph, allowed["id"]))["response"] == "accepted"
        [copy] = _copies(store, allowed["iCalUId"])
        assert len(copy.cancelled) == 1
    finally:
        store.booking.set_policy(BAKER, MaximumConflictInstances=0, ConflictPercentageAllowed=0)
    # A series without end reaches past BookingWindowInDays: declined while the horizon is
    # enforced (EnforceSchedulingHorizon, the default), accepted when it is not.
    endless = graph("POST", f"/users/{ALICE_UPN}/events",
                    json=_weekly("Endless", _day(9, 4), "07:00", "07:30", rooms=(ADAMS,))).json()
    store.booking.run_pending()
    assert _room_status(_wait_status(graph, endless["id"], ADAMS), ADAMS)["response"] == \
        "declined"
    store.booking.set_policy(ADAMS, EnforceSchedulingHorizon=False)
    endless2 = graph("POST", f"/users/{ALICE_UPN}/events",
                     json=_weekly("Endless 2", _day(9, 4), "07:00", "07:30",
                                  rooms=(ADAMS,))).json()
    store.booking.run_pending()
    assert _room_status(_wait_status(graph, endless2["id"], ADAMS), ADAMS)["response"] == \
        "accepted"
    assert store.booking.policy(ADAMS).EnforceSchedulingHorizon is False


def test_policy_controls(emu, graph):
    store = emu.store
    assert store.booking.policy(BAKER).AutomateProcessing == "AutoAccept"
    assert store.booking.policy(BAKER).AllowConflicts is False
    assert store.booking.policy(BAKER).BookingWindowInDays == 180
    with pytest.raises(TypeError):
        store.booking.set_policy(BAKER, NoSuchSetting=True)
    far = (dt.date.today() + dt.timedelta(days=200)).isoformat()
    late = graph("POST", f"/users/{ALICE_UPN}/events",
                 json=_body("Too far", far, "09:00", "10:00")).json()
    store.booking.run_pending()
    assert _room_status(_wait_status(graph, late["id"]))["response"] == "declined"
    store.booking.set_policy(BAKER, AllowConflicts=True)
    try:
        a = graph("POST", f"/users/{ALICE_UPN}/events",
                  json=_body("Double A", _day(11), "09:00", "10:00")).json()
        b = graph("POST", f"/users/{ALICE_UPN}/events",
                  json=_body("Double B", _day(11), "09:00", "10:00")).json()
        store.booking.run_pending()
        assert _room_status(_wait_status(graph, a["id"]))["response"] == "accepted"
        assert _room_status(_wait_status(graph, b["id"]))["response"] == "accepted"
    finally:
        store.booking.set_policy(BAKER, AllowConflicts=False)
    store.booking.set_policy(BAKER, AutomateProcessing="None")
    try:
        ignored = graph("POST", f"/users/{ALICE_UPN}/events",
                        json=_body("Ignored", _day(12), "09:00", "10:00")).json()
        store.booking.run_pending()
        got = graph("GET", f"/users/{ALICE_UPN}/events/{ignored['id']}").json()
        assert _room_status(got)["response"] == "none"
        assert _copies(store, ignored["iCalUId"]) == []
    finally:
        store.booking.set_policy(BAKER, AutomateProcessing="AutoAccept")


def test_demo_meeting_is_accepted_by_its_room(emu):
    review = next(r for r in emu.store.records(ALICE_UPN, None)
                  if r.data["subject"] == "Project review")
    assert _room_status(review.data, ADAMS)["response"] == "accepted"
    [copy] = _copies(emu.store, review.data["iCalUId"], ADAMS)
    assert copy.data["subject"] == "Project review"


# -- end to end through the gateway ---------------------------------------------------------

ALICE_CAL = "/alice@contoso.com/calendar/"


def _ics(uid: str, day: str, start: str, end: str) -> str:
    d = day.replace("-", "")
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//room booking//EN",
        "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z",
        f"DTSTART:{d}T{start}00Z", f"DTEND:{d}T{end}00Z", "SUMMARY:Huddle",
        "ORGANIZER;CN=Alice Archer:mailto:alice@contoso.com",
        "ATTENDEE;CUTYPE=ROOM;CN=Baker Huddle Room:mailto:room-baker@contoso.com",
        "END:VEVENT", "END:VCALENDAR", ""])


def _room_partstat(session, url: str, timeout: float = 10.0) -> str:
    """PARTSTAT of the room's ATTENDEE line, polled until it is not NEEDS-ACTION."""
    deadline = time.monotonic() + timeout
    while True:
        text = session.get(url).text.replace("\r\n ", "")
        line = re.search(r"^ATTENDEE[^\r\n]*mailto:room-baker@contoso\.com", text,
                         re.IGNORECASE | re.MULTILINE)
        assert line, text
        found = re.search(r"PARTSTAT=([A-Z-]+)", line.group(0))
        partstat = found.group(1) if found else "NEEDS-ACTION"
        if partstat != "NEEDS-ACTION" or time.monotonic() > deadline:
            assert "CUTYPE=ROOM" in line.group(0), line.group(0)
            return partstat
        time.sleep(0.3)


def test_gateway_room_booking_accepts_then_declines(gateway):
    session = gateway.session(ALICE)
    store = gateway.emulator.store
    day = _day(8, 3)
    first_uid, second_uid = str(uuid.uuid4()), str(uuid.uuid4())
    first_url = f"{gateway.url}{ALICE_CAL}{first_uid}.ics"
    put = session.put(first_url, data=_ics(first_uid, day, "1300", "1400"),
                      headers={"Content-Type": "text/calendar", "If-None-Match": "*"})
    assert put.status_code in (201, 204), put.text
    assert _room_partstat(session, first_url) == "ACCEPTED"
    copies = [r for r in store.records(BAKER, None)
              if r.data["start"]["dateTime"].startswith(f"{day}T13:00")]
    assert len(copies) == 1 and copies[0].data["isOrganizer"] is False
    assert copies[0].data["organizer"]["emailAddress"]["address"].lower() == ALICE_UPN

    second_url = f"{gateway.url}{ALICE_CAL}{second_uid}.ics"
    put = session.put(second_url, data=_ics(second_uid, day, "1330", "1430"),
                      headers={"Content-Type": "text/calendar", "If-None-Match": "*"})
    assert put.status_code in (201, 204), put.text
    assert _room_partstat(session, second_url) == "DECLINED"
    assert not [r for r in store.records(BAKER, None)
                if r.data["start"]["dateTime"].startswith(f"{day}T13:30")]
    # The first booking still stands.
    assert _room_partstat(session, first_url) == "ACCEPTED"
