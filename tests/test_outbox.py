"""Free/busy from Exchange (issue 12): the CalDAV scheduling outbox (RFC 6638 section 5) and
the free-busy-query REPORT (RFC 4791 section 7.10), both answered from Graph's getSchedule
(api/calendar-getschedule.md), against the demo emulator.

The outbox answers must give exactly the busy periods getSchedule reports (asked here
directly with the app's token), in one Graph call for up to 20 attendees."""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import icalendar
import pytest
import requests

from radicale_graph.emulator import demo
from radicale_graph.storage.free_busy import fetch_schedules
from radicale_graph.translation.timezones import parse_graph_datetime
from radicale_graph.web.outbox import FBTYPE

from .conftest import start_gateway

UTC = dt.UTC
ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
ROOM_ADAMS, ROOM_BAKER = demo.ROOMS
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav"}
FMT = "%Y%m%dT%H%M%SZ"
PREFER_UTC = {"Prefer": 'outlook.timezone="UTC"'}


@pytest.fixture(scope="module")
def gw(emu, tmp_path_factory):
    gateway, stop = start_gateway(emu, tmp_path_factory.mktemp("outbox"))
    yield gateway
    stop()


def week() -> tuple[dt.datetime, dt.datetime]:
    mon = demo.anchor()
    start = dt.datetime(mon.year, mon.month, mon.day, tzinfo=UTC)
    return start, start + dt.timedelta(days=7)


def at(day_offset: int, hour: int) -> dt.datetime:
    return week()[0] + dt.timedelta(days=day_offset, hours=hour)


def graph_time(value: dt.datetime) -> dict:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.fixture(scope="module")
def seeded(emu):
    """Events of every showAs in the demo week, as Outlook would put them there."""
    def add(mailbox, subject, start, hours, show_as):
        emu.store.create_event(mailbox, None, {
            "subject": subject, "showAs": show_as, "start": graph_time(start),
            "end": graph_time(start + dt.timedelta(hours=hours))})
    add(ALICE, "Dentist maybe", at(1, 13), 1, "tentative")
    add(ALICE, "Lunch walk", at(1, 12), 1, "free")
    add(BOB, "Conference abroad", at(3, 6), 10, "oof")
    add(BOB, "Focus", at(4, 14), 2, "busy")
    add(ROOM_ADAMS, "Board meeting", at(2, 15), 2, "busy")
    add(BOB, "Far away", at(80, 9), 1, "busy")  # beyond the first 61 days of a long ask
    add(ROOM_BAKER, "Secret board meeting", at(2, 9), 1, "busy")
    add(ROOM_BAKER, "Maybe workshop", at(4, 10), 3, "tentative")


def freebusy_request(attendees, start, end, organizer=ALICE) -> str:
    """A VFREEBUSY request as Apple Calendar sends it (RFC 5546 section 3.3.2)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//outbox//EN", "METHOD:REQUEST",
             "BEGIN:VFREEBUSY", f"UID:{uuid.uuid4()}", f"DTSTAMP:{start:{FMT}}",
             f"DTSTART:{start:{FMT}}", f"DTEND:{end:{FMT}}",
             f"ORGANIZER;CN=Organizer:mailto:{organizer}"]
    lines += [f"ATTENDEE:mailto:{a}" for a in attendees]
    lines += ["END:VFREEBUSY", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def post(gw, text, login=ALICE, auth=None, outbox=None, content_type="text/calendar"):
    return requests.post(f"{gw.url}/{outbox or login}/.outbox/", data=text.encode(),
                         auth=auth if auth is not None else (login, "demo"),
                         headers={"Content-Type": content_type}, timeout=30)


def schedule_calls(emu) -> list:
    return [r for r in emu.request_log if r.path.lower().endswith("/calendar/getschedule")]


def parse_schedule_response(text: str) -> dict[str, tuple[str, icalendar.Calendar | None]]:
    """recipient address -> (request-status, reply VCALENDAR or None)."""
    root = ET.fromstring(text)
    assert root.tag == "{urn:ietf:params:xml:ns:caldav}schedule-response", text
    found = {}
    for response in root.findall("C:response", NS):
        href = response.findtext("C:recipient/D:href", namespaces=NS)
        status = response.findtext("C:request-status", namespaces=NS)
        data = response.findtext("C:calendar-data", namespaces=NS)
        found[href.removeprefix("mailto:").lower()] = (
            status, icalendar.Calendar.from_ical(data) if data else None)
    return found


def periods_of(calendar: icalendar.Calendar) -> set[tuple[dt.datetime, dt.datetime, str]]:
    [reply] = calendar.walk("VFREEBUSY")
    props = reply.get("FREEBUSY", [])
    props = props if isinstance(props, list) else [props]
    out = set()
    for prop in props:
        low, high = prop.dt
        out.add((low.astimezone(UTC), high.astimezone(UTC), prop.params.get("FBTYPE", "BUSY")))
    return out


def expected_periods(graph, addresses, start, end, requester=ALICE) -> dict[str, set]:
    """getSchedule asked directly with the app token (windows of at most 61 days), as
    FREEBUSY periods clipped to [start, end)."""
    found: dict[str, set] = {a: set() for a in addresses}
    low = start
    while low < end:
        high = min(low + dt.timedelta(days=61), end)
        resp = graph("POST", f"/users/{requester}/calendar/getSchedule", headers=PREFER_UTC,
                     json={"schedules": addresses, "startTime": graph_time(low),
                           "endTime": graph_time(high), "availabilityViewInterval": 60})
        assert resp.status_code == 200, resp.text
        for entry in resp.json()["value"]:
            for item in entry["scheduleItems"]:
                if item["status"].lower() == "free":
                    continue
                s = max(parse_graph_datetime(item["start"]).astimezone(UTC), start)
                e = min(parse_graph_datetime(item["end"]).astimezone(UTC), end)
                if s < e:
                    found[entry["scheduleId"].lower()].add(
                        (s, e, FBTYPE[item["status"].lower()]))
        low = high
    return found


# -- principal discovery ------------------------------------------------------------------

PROPFIND = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>
<C:schedule-outbox-URL/><C:calendar-user-address-set/><C:calendar-home-set/>
<C:schedule-inbox-URL/></D:prop></D:propfind>"""


def test_propfind_principal_gives_the_schedule_outbox_url(gw):
    resp = requests.request("PROPFIND", f"{gw.url}/{ALICE}/", data=PROPFIND, auth=(ALICE, "demo"),
                            headers={"Depth": "0", "Content-Type": "application/xml"},
                            timeout=30)
    assert resp.status_code == 207, resp.text
    [response] = ET.fromstring(resp.content).findall("D:response", NS)
    ok = [p for p in response.findall("D:propstat", NS)
          if " 200 " in p.findtext("D:status", namespaces=NS)]
    missing = [p for p in response.findall("D:propstat", NS)
               if " 404 " in p.findtext("D:status", namespaces=NS)]
    assert len(ok) == 1, resp.text
    outbox = ok[0].find("D:prop/C:schedule-outbox-URL/D:href", NS)
    assert outbox is not None and unquote(outbox.text) == f"/{ALICE}/.outbox/", resp.text
    addresses = [h.text for h in ok[0].findall("D:prop/C:calendar-user-address-set/D:href", NS)]
    assert addresses[0] == f"mailto:{ALICE}" and unquote(addresses[1]) == f"/{ALICE}/"
    assert all(p.find("D:prop/C:schedule-outbox-URL", NS) is None for p in missing)
    # not implemented: the inbox stays 404
    assert any(p.find("D:prop/C:schedule-inbox-URL", NS) is not None for p in missing)


def test_propfind_of_a_calendar_is_unchanged(gw):
    resp = requests.request("PROPFIND", f"{gw.url}/{ALICE}/calendar/", data=PROPFIND,
                            auth=(ALICE, "demo"),
                            headers={"Depth": "0", "Content-Type": "application/xml"},
                            timeout=30)
    assert resp.status_code == 207, resp.text
    assert ".outbox" not in resp.text and "mailto:" not in resp.text


# -- the outbox ---------------------------------------------------------------------------

def test_two_people_and_a_room_in_one_getschedule_call(gw, emu, graph, seeded):
    start, end = week()
    attendees = [ALICE, BOB, ROOM_ADAMS]
    emu.clear_log()
    resp = post(gw, freebusy_request(attendees, start, end))
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/xml")
    assert len(schedule_calls(emu)) == 1, emu.request_log
    answers = parse_schedule_response(resp.text)
    assert set(answers) == set(attendees)
    expected = expected_periods(graph, attendees, start, end)
    for address in attendees:
        status, calendar = answers[address]
        assert status == "2.0;Success"
        assert str(calendar["METHOD"]) == "REPLY"
        [reply] = calendar.walk("VFREEBUSY")
        assert str(reply["ATTENDEE"]).lower() == f"mailto:{address}"
        assert str(reply["ORGANIZER"]).lower() == f"mailto:{ALICE}"
        assert reply["DTSTART"].dt == start and reply["DTEND"].dt == end
        assert "UID" in reply and "DTSTAMP" in reply
        assert periods_of(calendar) == expected[address], address
        assert expected[address], address
    # every FBTYPE the seeded events give, and no details of any event
    assert (at(1, 13), at(1, 14), "BUSY-TENTATIVE") in periods_of(answers[ALICE][1])
    assert not any(p[0] == at(1, 12) for p in periods_of(answers[ALICE][1]))  # free
    assert (at(3, 6), at(3, 16), "BUSY-UNAVAILABLE") in periods_of(answers[BOB][1])
    assert (at(2, 15), at(2, 17), "BUSY") in periods_of(answers[ROOM_ADAMS][1])
    for word in ("Board meeting", "Conference", "Dentist", "SUMMARY", "LOCATION"):
        assert word not in resp.text


def test_free_busy_only_people_and_rooms_answer(gw, emu, graph, seeded):
    """Carol (no served mailbox) asks for room-baker (freeBusyRead for everyone) and Bob."""
    start, end = week()
    resp = post(gw, freebusy_request([ROOM_BAKER, BOB], start, end, organizer=CAROL),
                login=CAROL)
    assert resp.status_code == 200, resp.text
    answers = parse_schedule_response(resp.text)
    expected = expected_periods(graph, [ROOM_BAKER, BOB], start, end)
    assert answers[BOB][0] == "2.0;Success"
    assert periods_of(answers[BOB][1]) == expected[BOB]
    assert periods_of(answers[ROOM_BAKER][1]) == expected[ROOM_BAKER]


def test_25_attendees_take_two_getschedule_calls(gw, emu, graph, seeded):
    start, end = week()
    unknown = [f"nobody{i}@contoso.com" for i in range(21)]
    attendees = [ALICE, BOB, ROOM_ADAMS, ROOM_BAKER] + unknown
    assert len(attendees) == 25
    emu.clear_log()
    resp = post(gw, freebusy_request(attendees, start, end))
    assert resp.status_code == 200, resp.text
    assert len(schedule_calls(emu)) == 2, emu.request_log
    answers = parse_schedule_response(resp.text)
    assert len(answers) == 25
    for address in unknown:
        assert answers[address] == ("3.7;Invalid calendar user", None), address
    expected = expected_periods(graph, attendees[:4], start, end)
    for address in attendees[:4]:
        assert answers[address][0] == "2.0;Success"
        assert periods_of(answers[address][1]) == expected[address]


def test_a_period_of_100_days_is_split_into_two_calls(gw, emu, graph, seeded):
    start = week()[0]
    end = start + dt.timedelta(days=100)
    attendees = [ALICE, BOB, ROOM_ADAMS]
    emu.clear_log()
    resp = post(gw, freebusy_request(attendees, start, end))
    assert resp.status_code == 200, resp.text
    assert len(schedule_calls(emu)) == 2, emu.request_log
    answers = parse_schedule_response(resp.text)
    expected = expected_periods(graph, attendees, start, end)
    for address in attendees:
        assert periods_of(answers[address][1]) == expected[address]
    assert (at(80, 9), at(80, 10), "BUSY") in periods_of(answers[BOB][1])


def test_an_organizer_other_than_the_login_is_403(gw, emu):
    start, end = week()
    emu.clear_log()
    resp = post(gw, freebusy_request([BOB], start, end, organizer=BOB))
    assert resp.status_code == 403, resp.text
    assert "organizer-allowed" in resp.text and BOB in resp.text
    assert schedule_calls(emu) == []


def test_another_logins_outbox_is_403(gw, emu):
    start, end = week()
    emu.clear_log()
    resp = post(gw, freebusy_request([BOB], start, end), outbox=BOB)
    assert resp.status_code == 403, resp.text
    assert schedule_calls(emu) == []


def test_unauthenticated_is_401(gw, emu):
    start, end = week()
    text = freebusy_request([BOB], start, end).encode()
    emu.clear_log()
    resp = requests.post(f"{gw.url}/{ALICE}/.outbox/", data=text, timeout=30,
                         headers={"Content-Type": "text/calendar"})
    assert resp.status_code == 401 and "Basic" in resp.headers.get("WWW-Authenticate", "")
    wrong = post(gw, text.decode(), auth=(ALICE, "wrong"))
    assert wrong.status_code == 401
    assert schedule_calls(emu) == []


@pytest.mark.parametrize(("body", "content_type", "status", "marker"), [
    ("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20300101T090000Z"
     "\r\nORGANIZER:mailto:alice@contoso.com\r\nATTENDEE:mailto:bob@contoso.com\r\nEND:VEVENT"
     "\r\nEND:VCALENDAR\r\n", "text/calendar", 403, "valid-scheduling-message"),
    ("not a calendar", "text/calendar", 400, "valid-calendar-data"),
    ("<x/>", "application/xml", 415, "text/calendar"),
])
def test_other_requests_are_refused(gw, emu, body, content_type, status, marker):
    emu.clear_log()
    resp = post(gw, body, content_type=content_type)
    assert resp.status_code == status, resp.text
    assert marker in resp.text
    assert schedule_calls(emu) == []


def test_reversed_or_too_long_periods_are_refused(gw, emu):
    start, end = week()
    assert post(gw, freebusy_request([BOB], end, start)).status_code == 400
    long = post(gw, freebusy_request([BOB], start, start + dt.timedelta(days=400)))
    assert long.status_code == 403 and "366 days" in long.text


def test_non_mailto_attendees_are_invalid_calendar_users(gw, seeded):
    start, end = week()
    text = freebusy_request([BOB], start, end).replace(
        "ATTENDEE:mailto:bob@contoso.com",
        "ATTENDEE:mailto:bob@contoso.com\r\nATTENDEE:urn:uuid:1234")
    resp = post(gw, text)
    assert resp.status_code == 200, resp.text
    answers = parse_schedule_response(resp.text)
    assert answers["urn:uuid:1234"] == ("3.7;Invalid calendar user", None)
    assert answers[BOB][0] == "2.0;Success"


# -- fetch_schedules against fakes ----------------------------------------------------------

class FakeClient:
    def __init__(self):
        self.bodies = []

    def request(self, method, path, *, mailbox, operation, json=None, headers=None, **_):
        from types import SimpleNamespace

        self.bodies.append(json)
        value = []
        for address in json["schedules"]:
            if address.startswith("nobody"):
                value.append({"scheduleId": address, "error": {
                    "message": "not found", "responseCode": "ErrorMailRecipientNotFound"}})
            else:
                value.append({"scheduleId": address, "scheduleItems": [
                    {"status": "busy", "start": json["startTime"], "end": json["endTime"]}]})
        return SimpleNamespace(status=200, body={"value": value}, headers={})


def test_fetch_schedules_chunks_of_20_and_61_days():
    from radicale_graph.graph import NotFound

    fake = FakeClient()
    addresses = [f"p{i}@contoso.com" for i in range(41)] + ["nobody@contoso.com", "P0@contoso.com"]
    start = dt.datetime(2030, 1, 1, tzinfo=UTC)
    result = fetch_schedules(fake, "/users/a@contoso.com", "a@contoso.com", addresses, start,
                             start + dt.timedelta(days=100))
    # 42 distinct addresses -> 3 chunks; 100 days -> 2 windows each (the unknown one once)
    assert [len(b["schedules"]) for b in fake.bodies] == [20, 20, 20, 20, 2, 1]
    assert all(parse_graph_datetime(b["endTime"]) - parse_graph_datetime(b["startTime"])
               <= dt.timedelta(days=61) for b in fake.bodies)
    assert len(result) == 42 and isinstance(result["nobody@contoso.com"], NotFound)
    assert len(result["p0@contoso.com"]) == 2


# -- free-busy-query REPORT ----------------------------------------------------------------

FREE_BUSY_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <C:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>
</C:free-busy-query>"""


def report_periods(gw, path, start, end) -> set[tuple[dt.datetime, dt.datetime, str]]:
    resp = requests.request("REPORT", f"{gw.url}{path}", auth=(ALICE, "demo"), timeout=30,
                            data=FREE_BUSY_QUERY.format(start=start, end=end),
                            headers={"Depth": "1", "Content-Type": "application/xml"})
    assert resp.status_code == 200, resp.text
    calendar = icalendar.Calendar.from_ical(resp.text)
    return periods_of(calendar)


@pytest.mark.parametrize("owner,segment", [(ALICE, "calendar"), (ROOM_BAKER,
                                                                f"{ROOM_BAKER}~calendar")])
def test_free_busy_query_matches_getschedule(gw, graph, seeded, owner, segment):
    """A person's own calendar (Radicale computes it from the cached events) and a free/busy
    only calendar (getSchedule through FreeBusyCollection) give getSchedule's busy times.
    Radicale has no BUSY-UNAVAILABLE and shows the periods unclipped, so times compare."""
    start, end = week()
    got = {(s, e) for s, e, _ in report_periods(gw, f"/{ALICE}/{segment}/", start, end)}
    want = {(s, e) for s, e, _ in expected_periods(graph, [owner], start, end)[owner]}
    if segment == "calendar":
        # Known difference: Radicale reads an all-day event's DTSTART;VALUE=DATE as a UTC day
        # (RFC 4791 section 9.9, no C:calendar-timezone), getSchedule as the event's zone.
        moved = all_day_spans(graph, owner, start, end)
        assert moved, "the demo has an all-day event in Alice's week"
        want = {moved.get(period, period) for period in want}
    assert want and got == want


def all_day_spans(graph, owner, start, end) -> dict:
    """(UTC span Graph gives) -> (UTC midnights of the event's dates) of all-day events."""
    from radicale_graph.translation.timezones import graph_wall_date, zone

    resp = graph("GET", f"/users/{owner}/calendar/calendarView", headers=PREFER_UTC,
                 params={"startDateTime": start.isoformat(), "endDateTime": end.isoformat(),
                         "$top": "200"})
    assert resp.status_code == 200, resp.text
    spans = {}
    for event in resp.json()["value"]:
        if not event.get("isAllDay") or event.get("showAs") == "free":
            continue
        days = [graph_wall_date(event[name]) for name in ("start", "end")]
        local = zone(event.get("originalStartTimeZone") or "UTC")
        in_zone = tuple(dt.datetime(d.year, d.month, d.day, tzinfo=local).astimezone(UTC)
                        for d in days)
        spans[in_zone] = tuple(dt.datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days)
    return spans


# -- delegated: the person's own token ------------------------------------------------------

def test_delegated_login_asks_with_its_own_token_through_me(emu, graph, seeded,
                                                           tmp_path_factory):
    """[storage] mode = both: Alice logs in with her app password, so getSchedule is asked as
    her (``POST /me/calendar/getSchedule``, api/calendar-getschedule.md) in one call."""
    from .test_delegated import sign_in

    gateway, stop = start_gateway(emu, tmp_path_factory.mktemp("outbox-delegated"),
                                  mode="both")
    try:
        _browser, password = sign_in(gateway.url, emu, ALICE)
        start, end = week()
        attendees = [BOB, ROOM_ADAMS, ROOM_BAKER]
        emu.clear_log()
        resp = post(gateway, freebusy_request(attendees, start, end), auth=(ALICE, password))
        assert resp.status_code == 200, resp.text
        calls = schedule_calls(emu)
        assert len(calls) == 1 and calls[0].path.lower() == "/v1.0/me/calendar/getschedule", \
            calls
        answers = parse_schedule_response(resp.text)
        expected = expected_periods(graph, attendees, start, end)
        for address in attendees:
            assert answers[address][0] == "2.0;Success", address
            assert periods_of(answers[address][1]) == expected[address], address
        wrong = post(gateway, freebusy_request([BOB], start, end, organizer=BOB),
                     auth=(ALICE, password))
        assert wrong.status_code == 403
    finally:
        stop()
