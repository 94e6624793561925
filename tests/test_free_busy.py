"""Free/busy only calendars (Exchange role freeBusyRead): getSchedule items -> opaque busy
events -> Radicale's VFREEBUSY (RFC 4791 section 7.10), against fakes and the emulator."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import icalendar
import pytest
from radicale import xmlutils
from radicale.app.report import freebusy_collection_text

from radicale_graph.graph import AccessDenied, GraphError, NotFound
from radicale_graph.storage.free_busy import (
    FreeBusyCollection,
    busy_blocks,
    fetch_schedule,
)

UTC = dt.UTC
BOB = "bob@contoso.com"
ALICE = "alice@contoso.com"


def dtz(text: str) -> dict:
    return {"dateTime": f"{text}.0000000", "timeZone": "UTC"}


def item(status: str, start: str, end: str, address: str = BOB) -> dict:
    return {"status": status, "start": dtz(start), "end": dtz(end), "scheduleId": address}


def event_of(text: str) -> icalendar.Event:
    cal = icalendar.Calendar.from_ical(text)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return events[0]


# -- busy_blocks -----------------------------------------------------------------------------

STATUSES = [
    ("busy", "CONFIRMED", "BUSY"),
    ("tentative", "TENTATIVE", "TENTATIVE"),
    ("oof", "CONFIRMED", "OOF"),
    ("workingElsewhere", "CONFIRMED", "WORKINGELSEWHERE"),
    ("unknown", "CONFIRMED", "UNKNOWN"),
]


@pytest.mark.parametrize(("status", "ical_status", "busystatus"), STATUSES)
def test_busy_blocks_one_opaque_utc_event_per_status(status, ical_status, busystatus):
    [(href, text)] = busy_blocks([item(status, "2030-03-04T09:00:00", "2030-03-04T10:30:00")])
    event = event_of(text)
    assert event["DTSTART"].dt == dt.datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    assert event["DTEND"].dt == dt.datetime(2030, 3, 4, 10, 30, tzinfo=UTC)
    assert "DTSTART:20300304T090000Z" in text.replace("\r\n", "\n")
    assert event["DTSTAMP"].dt == dt.datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Busy"
    assert str(event["TRANSP"]) == "OPAQUE"
    assert str(event["STATUS"]) == ical_status
    assert str(event["X-MICROSOFT-CDO-BUSYSTATUS"]) == busystatus
    assert href == str(event["UID"]).split("@")[0] + ".ics"
    assert "SUBJECT" not in text and "LOCATION" not in text


def test_busy_blocks_skip_free_and_keep_no_details():
    items = [item("free", "2030-03-04T08:00:00", "2030-03-04T09:00:00"),
             {**item("busy", "2030-03-04T09:00:00", "2030-03-04T10:00:00"),
              "subject": "Secret merger", "location": "Room 1", "isPrivate": False}]
    blocks = busy_blocks(items)
    assert len(blocks) == 1
    assert "Secret merger" not in blocks[0][1] and "Room 1" not in blocks[0][1]
    assert busy_blocks([item("free", "2030-03-04T08:00:00", "2030-03-04T09:00:00")]) == []


def test_busy_blocks_uids_are_deterministic_and_distinct():
    base = item("busy", "2030-03-04T09:00:00", "2030-03-04T10:00:00")
    first, again = busy_blocks([base]), busy_blocks([dict(base)])
    assert first == again  # same text too: DTSTAMP comes from the start
    others = [item("tentative", "2030-03-04T09:00:00", "2030-03-04T10:00:00"),
              item("busy", "2030-03-04T09:30:00", "2030-03-04T10:00:00"),
              item("busy", "2030-03-04T09:00:00", "2030-03-04T11:00:00"),
              item("busy", "2030-03-04T09:00:00", "2030-03-04T10:00:00", ALICE)]
    hrefs = {first[0][0]} | {busy_blocks([o])[0][0] for o in others}
    assert len(hrefs) == 5
    uids = [str(event_of(t)["UID"]) for _, t in busy_blocks([base, *others])]
    assert len(set(uids)) == 5


def test_busy_blocks_convert_other_zones_to_utc():
    pacific = {"status": "busy", "scheduleId": BOB,
               "start": {"dateTime": "2030-03-04T09:00:00.0000000",
                         "timeZone": "Pacific Standard Time"},
               "end": {"dateTime": "2030-03-04T10:00:00.0000000",
                       "timeZone": "Pacific Standard Time"}}
    event = event_of(busy_blocks([pacific])[0][1])
    assert event["DTSTART"].dt == dt.datetime(2030, 3, 4, 17, 0, tzinfo=UTC)


# -- fetch_schedule against a recording fake client -------------------------------------------

@dataclass
class FakeResponse:
    body: dict | None
    status: int = 200
    headers: dict = field(default_factory=dict)


class FakeClient:
    """Records ``request`` calls; answers each with ``answer(json)``."""

    def __init__(self, answer):
        self.calls: list[dict] = []
        self.answer = answer

    def request(self, method, path, *, mailbox, operation, params=None, json=None,
                headers=None):
        self.calls.append({"method": method, "path": path, "mailbox": mailbox,
                           "operation": operation, "json": json, "headers": headers,
                           "params": params})
        return FakeResponse(self.answer(json))


def parse_body_time(value: dict) -> dt.datetime:
    assert value["timeZone"] == "UTC"
    return dt.datetime.fromisoformat(value["dateTime"]).replace(tzinfo=UTC)


def test_fetch_schedule_splits_into_61_day_requests():
    spanning = item("busy", "2030-03-02T23:00:00", "2030-03-03T01:00:00")

    def answer(body):
        items = [spanning] if body["startTime"]["dateTime"] < "2030-03-10" else []
        low = parse_body_time(body["startTime"])
        items = [*items, item("oof", (low + dt.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%S"),
                              (low + dt.timedelta(hours=13)).strftime("%Y-%m-%dT%H:%M:%S"))]
        return {"value": [{"scheduleId": BOB, "availabilityView": "",
                           "scheduleItems": [{k: v for k, v in i.items() if k != "scheduleId"}
                                             for i in items]}]}

    client = FakeClient(answer)
    start = dt.datetime(2030, 1, 1, tzinfo=UTC)
    end = start + dt.timedelta(days=150)
    found = fetch_schedule(client, "/users/alice@contoso.com", ALICE, BOB, start, end)

    assert [c["method"] for c in client.calls] == ["POST"] * 3
    assert {c["path"] for c in client.calls} == {"/users/alice@contoso.com/calendar/getSchedule"}
    assert {c["mailbox"] for c in client.calls} == {ALICE}
    assert {c["operation"] for c in client.calls} == {"read free/busy"}
    assert all(c["headers"] == {"Prefer": 'outlook.timezone="UTC"'} for c in client.calls)
    windows = [(parse_body_time(c["json"]["startTime"]), parse_body_time(c["json"]["endTime"]))
               for c in client.calls]
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert [hi - lo for lo, hi in windows] == [dt.timedelta(days=61)] * 2 + [
        dt.timedelta(days=28)]
    for call in client.calls:
        body = call["json"]
        assert body["schedules"] == [BOB]
        assert 5 <= body["availabilityViewInterval"] <= 1440
        assert set(body) == {"schedules", "startTime", "endTime", "availabilityViewInterval"}
    # Three oof items (one per request) and the first-request busy item once, in time order.
    assert [i["status"] for i in found].count("oof") == 3
    assert [i["status"] for i in found].count("busy") == 1
    assert all(i["scheduleId"] == BOB for i in found)
    starts = [i["start"]["dateTime"] for i in found]
    assert starts == sorted(starts)


def test_fetch_schedule_short_range_is_one_request_and_converts_to_utc():
    client = FakeClient(lambda body: {"value": [{"scheduleId": BOB, "scheduleItems": []}]})
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2030, 6, 1, 9, 0, tzinfo=berlin)
    assert fetch_schedule(client, "/me", BOB, BOB, start, start + dt.timedelta(days=7)) == []
    [call] = client.calls
    assert call["path"] == "/me/calendar/getSchedule"
    assert call["json"]["startTime"] == {"dateTime": "2030-06-01T07:00:00", "timeZone": "UTC"}
    assert call["json"]["endTime"] == {"dateTime": "2030-06-08T07:00:00", "timeZone": "UTC"}
    assert fetch_schedule(client, "/me", BOB, BOB, start, start) == []
    assert len(client.calls) == 1
    with pytest.raises(ValueError):
        fetch_schedule(client, "/me", BOB, BOB, dt.datetime(2030, 1, 1),
                       dt.datetime(2030, 1, 2))


@pytest.mark.parametrize(("code", "cls"), [("ErrorMailRecipientNotFound", NotFound),
                                           ("ErrorAccessDenied", AccessDenied),
                                           ("ErrorSomethingElse", GraphError)])
def test_fetch_schedule_raises_for_a_schedule_error(code, cls):
    message = "The mailbox 'nobody@contoso.com' was not found."
    client = FakeClient(lambda body: {"value": [{
        "scheduleId": "nobody@contoso.com", "availabilityView": "", "scheduleItems": [],
        "error": {"message": message, "responseCode": code}}]})
    start = dt.datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(cls) as info:
        fetch_schedule(client, "/users/a", ALICE, "nobody@contoso.com", start,
                       start + dt.timedelta(days=1))
    assert type(info.value) is cls
    assert "nobody@contoso.com" in str(info.value) and message in str(info.value)
    assert info.value.code == code


# -- FreeBusyCollection with Radicale's free-busy code ----------------------------------------

class Recorder:
    def __init__(self, items=()):
        self.items = list(items)
        self.windows: list[tuple[dt.datetime, dt.datetime]] = []
        self.reported: list[BaseException] = []

    def fetch(self, start, end):
        self.windows.append((start, end))
        return self.items

    def report(self, exc):
        self.reported.append(exc)
        return exc


def collection(rec: Recorder, **kwargs) -> FreeBusyCollection:
    kwargs.setdefault("max_days", 5000)  # the 2030 dates of these tests lie inside
    return FreeBusyCollection("bob@contoso.com/calendar", "Bob Brown", "free/busy only",
                              rec.fetch, rec.report, **kwargs)


def freebusy_lines(text: str) -> list[str]:
    unfolded = text.replace("\r\n ", "").replace("\r\n", "\n")
    return sorted(line for line in unfolded.split("\n") if line.startswith("FREEBUSY"))


def test_collection_gives_radicale_the_expected_vfreebusy():
    rec = Recorder([
        item("busy", "2030-03-04T09:00:00", "2030-03-04T10:00:00"),
        item("tentative", "2030-03-04T11:00:00", "2030-03-04T11:30:00"),
        item("free", "2030-03-04T12:00:00", "2030-03-04T13:00:00"),
        item("oof", "2030-03-05T00:00:00", "2030-03-06T00:00:00"),
        item("workingElsewhere", "2030-03-04T15:00:00", "2030-03-04T16:00:00"),
        item("busy", "2030-03-08T09:00:00", "2030-03-08T10:00:00"),  # after the range
    ])
    col = collection(rec)
    start = dt.datetime(2030, 3, 4, tzinfo=UTC)
    end = dt.datetime(2030, 3, 7, tzinfo=UTC)
    text = freebusy_collection_text(col, start, end, 0, lambda: None)
    assert rec.windows == [(start, end)]
    assert "BEGIN:VFREEBUSY" in text
    assert freebusy_lines(text) == sorted([
        "FREEBUSY;FBTYPE=BUSY:20300304T090000Z/20300304T100000Z",
        "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20300304T110000Z/20300304T113000Z",
        "FREEBUSY;FBTYPE=BUSY:20300304T150000Z/20300304T160000Z",
        "FREEBUSY;FBTYPE=BUSY:20300305T000000Z/20300306T000000Z",
    ])


def comp_filter(time_range: dict | None) -> tuple[ET.Element]:
    filt = ET.Element(xmlutils.make_clark("C:filter"))
    cal = ET.SubElement(filt, xmlutils.make_clark("C:comp-filter"), name="VCALENDAR")
    event = ET.SubElement(cal, xmlutils.make_clark("C:comp-filter"), name="VEVENT")
    if time_range is not None:
        ET.SubElement(event, xmlutils.make_clark("C:time-range"), attrib=time_range)
    return (filt,)


def test_get_filtered_yields_items_and_clips_open_ranges():
    rec = Recorder([item("busy", "2030-03-04T09:00:00", "2030-03-04T10:00:00")])
    col = collection(rec)
    results = list(col.get_filtered(comp_filter({"start": "20300304T000000Z",
                                                 "end": "20300305T000000Z"})))
    [(got, matched)] = results
    assert matched is False
    assert got.component_name == "VEVENT" and got.href.endswith(".ics")
    assert got.time_range == (int(dt.datetime(2030, 3, 4, 9, tzinfo=UTC).timestamp()),
                              int(dt.datetime(2030, 3, 4, 10, tzinfo=UTC).timestamp()))
    assert got.etag.startswith('"') and got.uid.startswith(got.href[:-4])
    col = collection(rec, max_days=10)
    list(col.get_filtered(comp_filter(None)))
    low, high = rec.windows[-1]
    now = dt.datetime.now(UTC)
    assert abs((now - low) - dt.timedelta(days=10)) < dt.timedelta(minutes=1)
    assert abs((high - now) - dt.timedelta(days=10)) < dt.timedelta(minutes=1)
    since = (now - dt.timedelta(days=2)).replace(microsecond=0)
    list(col.get_filtered(comp_filter({"start": since.strftime("%Y%m%dT%H%M%SZ")})))
    assert rec.windows[-1][0] == since
    assert abs((rec.windows[-1][1] - now) - dt.timedelta(days=10)) < dt.timedelta(minutes=1)
    calls = len(rec.windows)  # a start after the clipped end: nothing to ask
    assert list(col.get_filtered(comp_filter({"start": "29990101T000000Z"}))) == []
    assert len(rec.windows) == calls


def test_get_filtered_reports_fetch_errors():
    rec = Recorder()
    boom = AccessDenied(403, "ErrorAccessDenied", "no", BOB, "read free/busy")

    def fetch(start, end):
        raise boom

    col = FreeBusyCollection("bob@contoso.com/calendar", "Bob", "no", fetch, rec.report,
                             max_days=5000)
    with pytest.raises(AccessDenied):
        list(col.get_filtered(comp_filter({"start": "20300304T000000Z",
                                           "end": "20300305T000000Z"})))
    assert rec.reported == [boom]


def test_collection_serves_no_event_data_and_refuses_writes():
    rec = Recorder([item("busy", "2030-03-04T09:00:00", "2030-03-04T10:00:00")])
    col = collection(rec)
    assert col.path == "bob@contoso.com/calendar"
    assert col.tag == "VCALENDAR"
    assert col.get_meta() == {"tag": "VCALENDAR", "D:displayname": "Bob Brown",
                              "C:supported-calendar-component-set": "VEVENT"}
    assert col.get_meta("D:displayname") == "Bob Brown"
    assert list(col.get_all()) == []
    href = busy_blocks(rec.items)[0][0]
    assert list(col.get_multi([href, "x.ics"])) == [(href, None), ("x.ics", None)]
    assert col.has_uid("anything") is False
    assert rec.windows == []
    for call in (lambda: col.upload("x.ics", None), lambda: col.delete("x.ics"),
                 lambda: col.delete(), lambda: col.set_meta({})):
        with pytest.raises(PermissionError, match="free/busy only"):
            call()
    assert len(rec.reported) == 4
    token, changed = col.sync("")  # a constant token and no hrefs: no event is ever listed
    assert changed == [] and col.sync("")[0] == token
    assert col.etag == collection(Recorder()).etag and col.etag.startswith('"')
    assert col.etag != FreeBusyCollection("x/y", "", "", rec.fetch, rec.report).etag
    assert col.last_modified == "Thu, 01 Jan 1970 00:00:00 GMT"


# -- against the emulator --------------------------------------------------------------------

def graph_client(emulator):
    from radicale_graph.emulator import demo
    from radicale_graph.graph import GraphClient, GraphSettings

    return GraphClient(GraphSettings(
        tenant_id=demo.TENANT_ID, client_id=demo.CLIENT_ID, client_secret=demo.CLIENT_SECRET,
        authority_host=emulator.authority_host, graph_url=emulator.graph_url,
        ca_file=emulator.ca_file))


def this_week() -> tuple[dt.datetime, dt.datetime]:
    from radicale_graph.emulator import demo

    mon = demo.anchor()
    start = dt.datetime(mon.year, mon.month, mon.day, tzinfo=UTC)
    return start, start + dt.timedelta(days=7)


def pacific(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour,
                       tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)


def test_fetch_schedule_finds_bobs_events_in_the_emulator(emu):
    from radicale_graph.emulator import demo
    from radicale_graph.translation.timezones import parse_graph_datetime

    client = graph_client(emu)
    start, end = this_week()
    items = fetch_schedule(client, f"/users/{ALICE}", ALICE, BOB, start, end)
    got = {(parse_graph_datetime(i["start"]), parse_graph_datetime(i["end"])) for i in items}
    assert all(i["start"]["timeZone"] == "UTC" for i in items)

    view = client.get_json(f"/users/{BOB}/calendar/calendarView", mailbox=BOB,
                           operation="list events",
                           params={"startDateTime": start.isoformat(),
                                   "endDateTime": end.isoformat(), "$top": "100"},
                           headers={"Prefer": 'outlook.timezone="UTC"'})["value"]
    expected = {(parse_graph_datetime(e["start"]), parse_graph_datetime(e["end"]))
                for e in view if e.get("showAs") != "free" and not e.get("isCancelled")}
    assert expected and got == expected
    mon = demo.anchor()
    gym = (pacific(mon + dt.timedelta(2), 7), pacific(mon + dt.timedelta(2), 8))
    review = (pacific(mon + dt.timedelta(1), 10), pacific(mon + dt.timedelta(1), 11))
    assert gym in got and review in got


def test_fetch_schedule_spans_more_than_62_days_in_the_emulator(emu):
    client = graph_client(emu)
    start, _ = this_week()
    items = fetch_schedule(client, f"/users/{ALICE}", ALICE, BOB, start - dt.timedelta(days=70),
                           start + dt.timedelta(days=70))
    assert len(items) >= 2
    with pytest.raises(NotFound, match="nobody@contoso.com"):
        fetch_schedule(client, f"/users/{ALICE}", ALICE, "nobody@contoso.com", start,
                       start + dt.timedelta(days=1))


def test_free_busy_report_from_the_emulator(emu):
    from radicale_graph.emulator import demo

    client = graph_client(emu)
    rec = Recorder()
    col = FreeBusyCollection(
        f"{BOB}/calendar", "Bob Brown", "free/busy only",
        lambda s, e: fetch_schedule(client, f"/users/{ALICE}", ALICE, BOB, s, e), rec.report)
    start, end = this_week()
    text = freebusy_collection_text(col, start, end, 0, lambda: None)
    mon = demo.anchor()
    fmt = "%Y%m%dT%H%M%SZ"
    gym = (pacific(mon + dt.timedelta(2), 7), pacific(mon + dt.timedelta(2), 8))
    line = f"FREEBUSY;FBTYPE=BUSY:{gym[0].strftime(fmt)}/{gym[1].strftime(fmt)}"
    assert line in freebusy_lines(text)
    assert "Gym" not in text and "Contoso Fitness" not in text
    assert rec.reported == []


def test_bounded_ranges_beyond_max_days_are_clipped():
    rec = Recorder()
    col = collection(rec, max_days=10)
    list(col.get_filtered(comp_filter({"start": "20000101T000000Z",
                                       "end": "29990101T000000Z"})))
    low, high = rec.windows[-1]
    now = dt.datetime.now(UTC)
    assert abs((now - low) - dt.timedelta(days=10)) < dt.timedelta(minutes=1)
    assert abs((high - now) - dt.timedelta(days=10)) < dt.timedelta(minutes=1)
