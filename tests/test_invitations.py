"""The mailbox owner's own reply and override-only resources.

* Bob changes his PARTSTAT on his copy of Alice's meeting: the gateway calls Graph's accept
  (seed 001, step 4) instead of PATCHing attendees, and Bob reads back his new PARTSTAT.
* A PUT of only an override (Apple stores invitations this way) changes exactly that
  occurrence and leaves the rest of the series as it was.
"""

from __future__ import annotations

import re
import uuid

import icalendar

from .conftest import ALICE, BOB

BOB_CAL = "/bob@contoso.com/calendar/"
ALICE_CAL = "/alice@contoso.com/calendar/"


def resources(session, url):
    feed = icalendar.Calendar.from_ical(session.get(url).text)
    return feed.walk("VEVENT")


def find_invitation(gateway, session):
    report = session.request("PROPFIND", gateway.url + BOB_CAL, headers={"Depth": "1"})
    for href in re.findall(r"<href>([^<]+\.ics)</href>", report.text):
        got = session.get(gateway.url + href)
        if "mailto:bob@contoso.com" in got.text.lower() and "ORGANIZER" in got.text \
                and "mailto:alice@contoso.com" in got.text.lower():
            return href, got
    raise AssertionError("the demo tenant has no invitation in Bob's calendar")


def test_owner_reply_becomes_accept(gateway):
    session = gateway.session(BOB)
    href, got = find_invitation(gateway, session)
    text = got.text
    bob_line = re.search(r"ATTENDEE[^\r\n]*(\r\n [^\r\n]*)*mailto:bob@contoso.com",
                         text, re.IGNORECASE)
    assert bob_line, text
    unfolded = bob_line.group(0).replace("\r\n ", "")
    assert "PARTSTAT=ACCEPTED" not in unfolded
    replaced = re.sub(r"PARTSTAT=[A-Z-]+", "PARTSTAT=ACCEPTED", unfolded)
    new_text = text.replace(bob_line.group(0), replaced)
    store = gateway.emulator.store
    before = {e["id"]: e.get("attendees") for e in _bob_events(store)}
    start = len(gateway.emulator.request_log)
    put = session.put(gateway.url + href, data=new_text,
                      headers={"If-Match": got.headers["ETag"]})
    assert put.status_code == 204, put.text
    calls = [(r.method, r.path) for r in gateway.emulator.request_log[start:] if not r.batched]
    assert [m for m, p in calls if p.endswith("/accept")] == ["POST"]
    # At most one PATCH (the extended properties that keep Bob's href, UID and spelling);
    # the meeting's attendees, which belong to Alice, are not rewritten.
    assert len([c for c in calls if c[0] == "PATCH"]) <= 1, calls
    after = {e["id"]: e.get("attendees") for e in _bob_events(store)}
    assert after == before
    again = session.get(gateway.url + href).text.replace("\r\n ", "")
    bob = re.search(r"ATTENDEE[^\r\n]*mailto:bob@contoso.com", again, re.IGNORECASE).group(0)
    assert "PARTSTAT=ACCEPTED" in bob


def _bob_events(store):
    calendar = store.calendars("bob@contoso.com")[0]["id"]
    return [store.full(record)[0] for record in store.records("bob@contoso.com", calendar)]


def series(uid: str, with_overrides: bool = True) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if with_overrides:
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z",
                  "DTSTART;TZID=Europe/Berlin:20261207T090000",
                  "DTEND;TZID=Europe/Berlin:20261207T093000", "RRULE:FREQ=WEEKLY;COUNT=6",
                  "SUMMARY:Standup", "END:VEVENT"]
    for day, title in (("20261214", "First moved"), ("20261221", "Second moved")):
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z",
                  f"RECURRENCE-ID;TZID=Europe/Berlin:{day}T090000",
                  f"DTSTART;TZID=Europe/Berlin:{day}T110000",
                  f"DTEND;TZID=Europe/Berlin:{day}T113000", f"SUMMARY:{title}", "END:VEVENT"]
    return "\r\n".join(lines + ["END:VCALENDAR", ""])


def test_override_only_put_changes_just_that_occurrence(gateway):
    session = gateway.session(ALICE)
    uid = f"ovr-{uuid.uuid4()}"
    url = f"{gateway.url}{ALICE_CAL}{uid}.ics"
    assert session.put(url, data=series(uid)).status_code == 201
    only = series(uid).replace("SUMMARY:First moved", "SUMMARY:First moved again")
    # Keep only the first override: a resource without its master.
    body = only.split("BEGIN:VEVENT")
    override_only = body[0] + "BEGIN:VEVENT" + body[2].split("END:VEVENT")[0] + \
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    assert "RRULE" not in override_only and "First moved again" in override_only
    response = session.put(url, data=override_only)
    assert response.status_code == 204, response.text
    events = resources(session, url)
    summaries = sorted(str(e.get("SUMMARY")) for e in events)
    assert summaries == ["First moved again", "Second moved", "Standup"]
