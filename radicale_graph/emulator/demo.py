"""The demo tenant: Contoso with three users (two served by the gateway), two rooms, a group.

Event bodies start from request bodies of the Graph documentation (``data/*.json``, listed in
``data/SOURCES.md``), with dates moved next to the current week and addresses moved into the
demo tenant. ``anchor(today)`` is the Monday the demo is built around: the Monday of the week
containing ``today + 2 days`` (so on a weekend the demo shows the coming week).

Alice's default calendar holds a weekly series (Pacific Standard Time) whose occurrence on the
anchor Monday is moved to Tuesday and retitled (an exception) and whose next one is cancelled,
an all-day event, a meeting with Bob, an external guest and room-adams (copied into Bob's and
room-adams's calendars, as Exchange would after sending invitations), and single events; her
"Project Falcon" calendar holds two more. Bob has a couple of events of his own, one of them
private ("Gym").

Sharing (issue 11; resources/calendarpermission.md): Bob shares his default calendar with Alice
(``read``) and has Carol as his delegate (``delegateWithPrivateEventAccess``: write, with
private access). Carol (``DELEGATES``) is a mailbox and a Microsoft sign-in of the emulator
only; the gateway's demo does not serve her mailbox. The Microsoft 365 group "Project Falcon
Team" (``GROUP``) has Alice and Bob as members and three events in its calendar; the room list
"Building 18" (``ROOM_LIST``, shaped like example 2 of api/place-list.md) holds both rooms.

"My Organization" (Exchange's Default permission, for every user of the tenant without a
permission of their own) keeps its default ``freeBusyRead`` everywhere except on room-adams's
primary calendar, where it is ``limitedRead`` (typical for rooms: everyone sees the titles and
locations of its bookings); room-baker keeps ``freeBusyRead`` (free/busy only).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

TENANT_ID = "5f8c1a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b"
CLIENT_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
CLIENT_SECRET = "demo-secret~Contoso.Graph.Emulator.2026"  # demo only, not a real credential
DOMAINS = ("contoso.com", "contoso.onmicrosoft.com")
USERS = ("alice@contoso.com", "bob@contoso.com")
ROOMS = ("room-adams@contoso.com", "room-baker@contoso.com")
#: Users of the emulated tenant that the gateway's demo does not serve (Bob's delegate).
DELEGATES = ("carol@contoso.com",)
#: The Microsoft 365 group (mail) with Alice and Bob, and the room list (mail) with both rooms.
GROUP = "falcon-team@contoso.com"
ROOM_LIST = "building-18@contoso.com"
#: Microsoft sign-in passwords of the demo users (delegated mode; demo only, not real
#: credentials). Rooms are resource mailboxes: their accounts do not sign in.
USER_PASSWORDS = {"alice@contoso.com": "Alice-M365-pass", "bob@contoso.com": "Bob-M365-pass",
                  "carol@contoso.com": "Carol-M365-pass"}
#: Delegated permissions the demo app has admin consent for (scopes-oidc.md, permissions).
DELEGATED_SCOPES = ("openid", "profile", "offline_access", "User.Read", "Calendars.ReadWrite",
                    "Calendars.ReadWrite.Shared", "Group.ReadWrite.All", "Place.Read.All")
#: Redirect URIs of the demo app; for localhost/127.0.0.1 the port is ignored when matching
#: (learn.microsoft.com/entra/identity-platform/reply-url, "Localhost exceptions").
REDIRECT_URIS = ("http://localhost/.signin/callback", "http://127.0.0.1/.signin/callback")
PACIFIC = "Pacific Standard Time"
_DATA = Path(__file__).parent / "data"


def _fixture(name: str) -> dict:
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


def anchor(today: dt.date | None = None) -> dt.date:
    """The Monday the demo events are placed around."""
    day = (today or dt.date.today()) + dt.timedelta(days=2)
    return day - dt.timedelta(days=day.weekday())


def _at(day: dt.date, hhmm: str, zone: str = PACIFIC) -> dict:
    return {"dateTime": f"{day.isoformat()}T{hhmm}:00", "timeZone": zone}


def _retime(body: dict, day: dt.date, zone: str | None = None) -> dict:
    """Move a fixture body's start/end to ``day``, keeping the times of day."""
    body = copy.deepcopy(body)
    for key in ("start", "end"):
        hhmm = body[key]["dateTime"][11:16]
        body[key] = _at(day, hhmm, zone or body[key]["timeZone"])
    return body


def _attendee(address: str, name: str, kind: str = "required") -> dict:
    return {"emailAddress": {"address": address, "name": name}, "type": kind}


def load(store, today: dt.date | None = None) -> None:
    """Fill ``store`` (a :class:`~radicale_graph.emulator.store.Store`) with the demo tenant."""
    mon = anchor(today)
    alice = store.add_mailbox(USERS[0], "Alice Archer", given_name="Alice", surname="Archer",
                              job_title="Product Manager", office="18/2111")
    bob = store.add_mailbox(USERS[1], "Bob Brown", given_name="Bob", surname="Brown",
                            job_title="Engineer", office="18/2112")
    carol = store.add_mailbox(DELEGATES[0], "Carol Clark", given_name="Carol", surname="Clark",
                              job_title="Executive Assistant", office="18/2113")
    adams = store.add_mailbox(ROOMS[0], "Adams Conference Room", kind="room")
    store.add_mailbox(ROOMS[1], "Baker Huddle Room", kind="room")
    # Room booking (booking.py): room-adams keeps its bookings' subjects and bodies (it shows
    # them to everyone, see below); room-baker has Exchange's defaults (organizer as subject).
    store.booking.set_policy(adams.upn, DeleteSubject=False, AddOrganizerToSubject=False,
                             DeleteComments=False)
    falcon = store.create_calendar(alice.upn, {"name": "Project Falcon", "color": "lightGreen",
                                               "hexColor": "#87d28e"})

    places = _fixture("place-list__1__response.json")["value"]
    for place, (address, name) in zip(places, [(ROOMS[0], "Adams Conference Room"),
                                               (ROOMS[1], "Baker Huddle Room")], strict=True):
        place.update({"emailAddress": address, "displayName": name, "nickname": name})
    store.places = places
    building = _fixture("place-list__2__response.json")["value"][0]
    store.add_room_list(ROOM_LIST, "Building 18", ROOMS, address=building["address"])

    # Weekly series (user-post-events__3): started four weeks back, runs sixteen more.
    series_body = _retime(_fixture("user-post-events__3__request.json"), mon - dt.timedelta(28))
    series_body["subject"] = "Team lunch"
    series_body["attendees"] = [_attendee(bob.upn, bob.display_name)]
    series_body["recurrence"]["range"].update({
        "startDate": (mon - dt.timedelta(28)).isoformat(),
        "endDate": (mon + dt.timedelta(16 * 7)).isoformat(),
    })
    master = store.create_event(alice.upn, None, series_body)
    hhmm = series_body["start"]["dateTime"][11:16]
    store.update_event(alice.upn, _occurrence(master["id"], mon, hhmm), {
        "subject": "Team lunch (moved to Tuesday)",
        "start": _at(mon + dt.timedelta(1), "12:30"),
        "end": _at(mon + dt.timedelta(1), "14:00"),
    })
    store.delete_event(alice.upn, _occurrence(master["id"], mon + dt.timedelta(7), hhmm))

    # All-day event (no documentation example has one; written by hand).
    store.create_event(alice.upn, None, {
        "subject": "Company holiday",
        "body": {"contentType": "text", "content": "Office closed."},
        "isAllDay": True, "showAs": "oof", "isReminderOn": False,
        "start": _at(mon + dt.timedelta(3), "00:00"),
        "end": _at(mon + dt.timedelta(4), "00:00"),
    })

    # Meeting with Bob, an external guest and a room (user-post-events__1).
    meeting = _retime(_fixture("user-post-events__1__request.json"), mon + dt.timedelta(1))
    meeting.pop("transactionId", None)
    meeting.update({
        "subject": "Project review",
        "start": _at(mon + dt.timedelta(1), "10:00"),
        "end": _at(mon + dt.timedelta(1), "11:00"),
        "location": {"displayName": adams.display_name, "locationEmailAddress": adams.upn,
                     "locationType": "conferenceRoom"},
        "attendees": [
            _attendee(bob.upn, bob.display_name),
            _attendee("samantha.booth@fabrikam.com", "Samantha Booth"),
            _attendee(adams.upn, adams.display_name, "resource"),
        ],
    })
    created = store.create_event(alice.upn, None, meeting)
    organizer = {"emailAddress": {"name": alice.display_name, "address": alice.upn}}
    for box, response in ((adams, "accepted"), (bob, "notResponded")):
        copy_body = copy.deepcopy(meeting)
        copy_body.update({"organizer": organizer, "isOrganizer": False,
                          "iCalUId": created["iCalUId"],
                          "responseStatus": {"response": response,
                                             "time": "0001-01-01T00:00:00Z"}})
        store.create_event(box.upn, None, copy_body)

    # Multiple locations (user-post-events__2) and single events.
    store.create_event(alice.upn, None, _retime(
        _fixture("user-post-events__2__request.json") | {"subject": "Plan winter company party"},
        mon + dt.timedelta(2)))
    store.create_event(alice.upn, None, {
        "subject": "Call with the Berlin office",
        "body": {"contentType": "text", "content": "Quarterly numbers."},
        "start": _at(mon + dt.timedelta(1), "16:00", "W. Europe Standard Time"),
        "end": _at(mon + dt.timedelta(1), "16:30", "W. Europe Standard Time"),
        "sensitivity": "normal", "showAs": "tentative",
    })
    store.create_event(alice.upn, None, {
        "subject": "Dentist", "sensitivity": "private", "showAs": "oof",
        "start": _at(mon + dt.timedelta(4), "08:00"), "end": _at(mon + dt.timedelta(4), "09:00"),
    })

    # Project Falcon calendar: online meeting (user-post-events__4) and calendar-post-events__1.
    kickoff = _retime(_fixture("user-post-events__4__request.json"), mon + dt.timedelta(2))
    kickoff["subject"] = "Project Falcon kickoff"
    store.create_event(alice.upn, falcon["id"], kickoff)
    review = _retime(_fixture("calendar-post-events__1__request.json"), mon + dt.timedelta(4))
    review.pop("transactionId", None)
    review["subject"] = "Falcon design review"
    store.create_event(alice.upn, falcon["id"], review)

    # Bob's own events (outlook-create-event-in-shared-delegated-calendar__2 and one more).
    christmas = dt.date(mon.year, 12, 25)
    if christmas < mon:
        christmas = dt.date(mon.year + 1, 12, 25)
    store.create_event(bob.upn, None, _retime(
        _fixture("outlook-create-event-in-shared-delegated-calendar__2__request.json"), christmas))
    store.create_event(bob.upn, None, {
        "subject": "Gym", "sensitivity": "private",
        "body": {"contentType": "text", "content": "Leg day."},
        "location": {"displayName": "Contoso Fitness"},
        "start": _at(mon + dt.timedelta(2), "07:00"), "end": _at(mon + dt.timedelta(2), "08:00"),
    })

    # Sharing and delegation of Bob's primary calendar, as set up in Outlook.
    store.share(bob.upn, None, alice.upn, "read")
    store.share(bob.upn, None, carol.upn, "delegateWithPrivateEventAccess")
    # Rooms: everyone in the organization sees room-adams's bookings' titles and locations;
    # room-baker keeps the default "My Organization" role, freeBusyRead.
    store.set_organization_role(adams.upn, None, "limitedRead")

    # The Microsoft 365 group and its calendar (group calendars are delegated-only).
    group = store.add_group(GROUP, "Project Falcon Team", members=(alice.upn, bob.upn),
                            description="Everyone working on Project Falcon.")
    for day, hhmm, end, subject in ((mon, "09:00", "09:15", "Falcon stand-up"),
                                    (mon + dt.timedelta(2), "14:00", "15:00", "Falcon demo"),
                                    (mon + dt.timedelta(4), "11:00", "12:00", "Falcon retro")):
        store.group_store.create_event(group.mail, None, {
            "subject": subject, "body": {"contentType": "text", "content": "Group meeting."},
            "start": _at(day, hhmm), "end": _at(day, end),
        })
    # room-adams has accepted "Project review" by the time the demo is served.
    store.booking.run_pending()


def _occurrence(master_id: str, day: dt.date, hhmm: str) -> str:
    """Id of the series occurrence originally on ``day`` at ``hhmm`` Pacific time."""
    from . import ids, times

    return ids.occurrence_id(master_id, times.from_dtz(_at(day, hhmm)))
