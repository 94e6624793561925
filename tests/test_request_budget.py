"""Graph request budget per CalDAV request (issue 4's table), counted in the emulator's
request log. Each row of the table is one assertion here."""

from __future__ import annotations

import math
import re
import time
import uuid

import pytest

from .conftest import ALICE, start_gateway

REFRESH = 6.0  # seconds: the gateway's refresh_interval here (long enough for slow CI)
CAL = "/alice@contoso.com/calendar/"

PROPFIND_CTAG = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">
  <D:prop><CS:getctag/><D:sync-token/><D:getetag/></D:prop></D:propfind>"""


def sync_report(token: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
            f'<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')


def multiget(hrefs) -> str:
    refs = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return ('<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/>'
            f'</D:prop>{refs}</C:calendar-multiget>')


def event(uid: str, summary: str = "Budget", extra: str = "", day: str = "20261210") -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
            f"DTSTART;TZID=Europe/Berlin:{day}T100000\r\n"
            f"DTEND;TZID=Europe/Berlin:{day}T110000\r\nSUMMARY:{summary}\r\n{extra}"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


class Counter:
    """Graph HTTP round trips (batch items are not round trips) made during a block."""

    def __init__(self, emulator):
        self.emulator = emulator

    def __enter__(self):
        self.start = len(self.emulator.request_log)
        return self

    def __exit__(self, *exc):
        self.calls = [r for r in self.emulator.request_log[self.start:] if not r.batched]
        self.items = [r for r in self.emulator.request_log[self.start:] if r.batched]

    @property
    def count(self) -> int:
        return len(self.calls)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from radicale_graph.emulator import Emulator

    emulator = Emulator(load_demo=True)
    emulator.start()
    folder = tmp_path_factory.mktemp("budget")
    # Counted budgets: no background refresh (tests/test_background_refresh.py has its own).
    gateway, stop = start_gateway(emulator, folder, refresh_interval=REFRESH,
                                  background_refresh=False)
    session = gateway.session(ALICE)
    yield emulator, gateway, session, folder
    stop()
    emulator.stop()


def put_events(gateway, session, prefix: str, count: int) -> list[str]:
    """PUT ``count`` new single events; return their hrefs."""
    hrefs = []
    for n in range(count):
        uid = f"{prefix}-{n}-{uuid.uuid4().hex[:6]}"
        href = f"{CAL}{uid}.ics"
        assert session.put(gateway.url + href, data=event(uid)).status_code == 201
        hrefs.append(href)
    return hrefs


def warm(gateway, session):
    """Make the cache fresh (a PROPFIND within the refresh interval)."""
    response = session.request("PROPFIND", gateway.url + CAL, data=PROPFIND_CTAG,
                               headers={"Depth": "1"})
    assert response.status_code == 207


def test_reads_within_refresh_interval_cost_nothing(setup):
    emulator, gateway, session, _ = setup
    warm(gateway, session)
    token_response = session.request("REPORT", gateway.url + CAL, data=sync_report(),
                                      headers={"Depth": "1"})
    token = token_response.text.split("<sync-token>")[1].split("</sync-token>")[0]
    with Counter(emulator) as counter:
        for depth in ("0", "1"):
            assert session.request("PROPFIND", gateway.url + CAL, data=PROPFIND_CTAG,
                                   headers={"Depth": depth}).status_code == 207
        assert session.request("REPORT", gateway.url + CAL, data=sync_report(token),
                               headers={"Depth": "1"}).status_code == 207
    assert counter.count == 0, counter.calls


def test_after_refresh_interval_one_delta_round(setup):
    emulator, gateway, session, _ = setup
    warm(gateway, session)
    time.sleep(REFRESH + 0.2)
    with Counter(emulator) as counter:
        assert session.request("PROPFIND", gateway.url + CAL, data=PROPFIND_CTAG,
                               headers={"Depth": "0"}).status_code == 207
    assert counter.count == 1, counter.calls
    # Graph v1.0 tracks changes with calendarView/delta only (/events/delta is beta).
    assert counter.calls[0].path.endswith("/calendarView/delta")


def test_round_after_own_delete_needs_no_listing(setup):
    """The @removed a gateway DELETE causes is expected: the next round costs one request."""
    emulator, gateway, session, _ = setup
    uid = f"del-{uuid.uuid4()}"
    url = f"{gateway.url}{CAL}{uid}.ics"
    assert session.put(url, data=event(uid)).status_code == 201
    warm(gateway, session)
    time.sleep(REFRESH + 0.2)
    warm(gateway, session)  # the round that reports the create
    assert session.delete(url).status_code in (200, 204)
    time.sleep(REFRESH + 0.2)
    with Counter(emulator) as counter:
        assert session.request("PROPFIND", gateway.url + CAL, data=PROPFIND_CTAG,
                               headers={"Depth": "0"}).status_code == 207
    assert [c.path.rsplit("/", 1)[-1] for c in counter.calls] == ["delta"], counter.calls


def test_housekeeping_costs_one_read_and_keeps_the_etag(setup):
    """A changeKey moved by Exchange alone: one round plus one $batch read, same ETag."""
    emulator, gateway, session, _ = setup
    uid = f"hk-{uuid.uuid4()}"
    url = f"{gateway.url}{CAL}{uid}.ics"
    etag = session.put(url, data=event(uid)).headers["ETag"]
    time.sleep(REFRESH + 0.2)
    warm(gateway, session)
    (record,) = [r for r in emulator.store.records("alice@contoso.com", None)
                 if r.data.get("subject") == "Budget" and any(uid in v for _, v in r.ext.values())]
    emulator.housekeep(event_id=record.id)
    time.sleep(REFRESH + 0.2)
    with Counter(emulator) as counter:
        assert session.get(url).headers["ETag"] == etag
    paths = [c.path.rsplit("/", 1)[-1] for c in counter.calls if not c.batched]
    assert paths == ["delta", "$batch"], counter.calls


def test_multiget_warm_costs_nothing(setup):
    emulator, gateway, session, _ = setup
    hrefs = put_events(gateway, session, "mg", 5)
    warm(gateway, session)
    with Counter(emulator) as counter:
        response = session.request("REPORT", gateway.url + CAL, data=multiget(hrefs),
                                   headers={"Depth": "1"})
    assert response.status_code == 207
    assert response.text.count("BEGIN:VEVENT") == len(hrefs)
    assert counter.count == 0, counter.calls


def test_multiget_cold_costs_one_batch_per_twenty(setup):
    emulator, gateway, session, folder = setup
    hrefs = put_events(gateway, session, "cold", 30)
    cold, stop = start_gateway(emulator, folder / "cold", refresh_interval=REFRESH,
                               background_refresh=False)
    try:
        with Counter(emulator) as counter:
            response = cold.session(ALICE).request(
                "REPORT", cold.url + CAL, data=multiget(hrefs), headers={"Depth": "1"})
        assert response.status_code == 207
        assert response.text.count("BEGIN:VEVENT") == len(hrefs)
        batches = [c for c in counter.calls if c.path.endswith("/$batch")]
        others = [c for c in counter.calls if not c.path.endswith("/$batch")]
        assert len(batches) <= math.ceil(len(hrefs) / 20)
        # The only other request is the mailbox's calendar list (kept for 5 minutes).
        assert [c.path for c in others] == ["/v1.0/users/alice@contoso.com/calendars"]
    finally:
        stop()


def test_put_new_single_event_costs_one(setup):
    emulator, gateway, session, _ = setup
    uid = f"new-{uuid.uuid4()}"
    warm(gateway, session)
    with Counter(emulator) as counter:
        assert session.put(f"{gateway.url}{CAL}{uid}.ics", data=event(uid)).status_code == 201
    assert [c.method for c in counter.calls] == ["POST"]


def test_put_update_and_delete_cost_one_each(setup):
    emulator, gateway, session, _ = setup
    uid = f"upd-{uuid.uuid4()}"
    url = f"{gateway.url}{CAL}{uid}.ics"
    assert session.put(url, data=event(uid)).status_code == 201
    warm(gateway, session)
    with Counter(emulator) as counter:
        assert session.put(url, data=event(uid, "Changed")).status_code == 204
    assert [c.method for c in counter.calls] == ["PATCH"]
    warm(gateway, session)
    with Counter(emulator) as counter:
        assert session.delete(url).status_code in (200, 204)
    assert [c.method for c in counter.calls] == ["DELETE"]


def test_put_series_with_k_exceptions(setup):
    emulator, gateway, session, _ = setup
    uid = f"series-{uuid.uuid4()}"
    overrides = ""
    for day in ("20261215", "20261222"):
        overrides += (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
                      f"RECURRENCE-ID;TZID=Europe/Berlin:{day}T100000\r\n"
                      f"DTSTART;TZID=Europe/Berlin:{day}T150000\r\n"
                      f"DTEND;TZID=Europe/Berlin:{day}T160000\r\nSUMMARY:Moved {day}\r\n"
                      "END:VEVENT\r\n")
    text = event(uid, "Weekly", "RRULE:FREQ=WEEKLY;COUNT=8\r\n"
                 "EXDATE;TZID=Europe/Berlin:20261229T100000\r\n", day="20261208")
    text = text.replace("END:VCALENDAR", overrides + "END:VCALENDAR")
    k = 3
    warm(gateway, session)
    with Counter(emulator) as counter:
        response = session.put(f"{gateway.url}{CAL}{uid}.ics", data=text)
    assert response.status_code == 201, response.text
    lookups = [c for c in counter.calls if c.path.endswith("/instances")]
    assert len(lookups) <= 1
    assert counter.count - len(lookups) <= 1 + k, [(c.method, c.path) for c in counter.calls]
    # What the client reads back is what it wrote: 2 overrides and the EXDATE.
    got = session.get(f"{gateway.url}{CAL}{uid}.ics")
    assert got.headers["ETag"] == response.headers["ETag"]
    assert got.text.count("RECURRENCE-ID") == 2 and "EXDATE" in got.text


def test_outlook_change_and_delete_outside_the_window(setup):
    """An Outlook change far outside the delta window comes as @removed (api/event-delta.md):
    one folder-scoped check tells changed from deleted, without listing the calendar."""
    from .conftest import outlook_event

    emulator, gateway, session, _ = setup
    far = outlook_event(emulator, "Far future", "2031-03-04")
    time.sleep(REFRESH + 0.2)
    warm(gateway, session)  # the round that (as @removed) and the check that find it
    url = next(f"{gateway.url}{CAL}{h}" for h in _hrefs(gateway, session)
               if "Far future" in session.get(f"{gateway.url}{CAL}{h}").text)
    emulator.store.update_event("alice@contoso.com", far["id"], {"subject": "Far and moved"})
    time.sleep(REFRESH + 0.2)
    with Counter(emulator) as counter:
        assert "Far and moved" in session.get(url).text
    kinds = [c.path.rsplit("/", 1)[-1] for c in counter.calls if not c.batched]
    assert kinds == ["delta", "$batch", "$batch"], counter.calls  # round, check, read
    emulator.store.delete_event("alice@contoso.com", far["id"])
    time.sleep(REFRESH + 0.2)
    with Counter(emulator) as counter:
        assert session.get(url).status_code == 404
    kinds = [c.path.rsplit("/", 1)[-1] for c in counter.calls if not c.batched]
    assert kinds == ["delta", "$batch"], counter.calls  # round, check


def _hrefs(gateway, session) -> list[str]:
    response = session.request("PROPFIND", gateway.url + CAL, data=PROPFIND_CTAG,
                               headers={"Depth": "1"})
    return [h.rsplit("/", 1)[-1] for h in
            re.findall(r"<href>([^<]+\.ics)</href>", response.text)]
