"""End to end through CalDAV: a series with an EXDATE and a moved, retitled override, edited
three times by PUT of the whole series, leaves Graph with exactly the expected instances, and
the client reads back what it wrote each time."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from .conftest import start_gateway
from .test_roundtrip_helpers import emulator_of_its_own, vevent_items

own_emulator = pytest.fixture(scope="module")(emulator_of_its_own)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def own_gateway(own_emulator, tmp_path_factory):
    gateway, stop = start_gateway(own_emulator, tmp_path_factory.mktemp("caldav-edits"),
                                  refresh_interval=1)
    yield gateway
    stop()


def series(uid: str, summary: str, exdates: list[str], overrides: dict[str, tuple[str, str]],
           extra: str = "") -> str:
    """A weekly series of six Tuesdays from 2027-01-05 10:00 Berlin; ``overrides`` maps an
    original day (YYYYMMDD) to (new start HHMMSS on that day, new summary)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20261201T000000Z",
             "DTSTART;TZID=Europe/Berlin:20270105T100000",
             "DTEND;TZID=Europe/Berlin:20270105T110000", "RRULE:FREQ=WEEKLY;COUNT=6",
             f"SUMMARY:{summary}"]
    lines += [f"EXDATE;TZID=Europe/Berlin:{day}T100000" for day in exdates]
    lines += [x for x in extra.split("\n") if x]
    lines.append("END:VEVENT")
    for day, (time, title) in overrides.items():
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261201T000000Z",
                  f"RECURRENCE-ID;TZID=Europe/Berlin:{day}T100000",
                  f"DTSTART;TZID=Europe/Berlin:{day}T{time}",
                  f"DTEND;TZID=Europe/Berlin:{day}T{int(time[:2]) + 1:02d}{time[2:]}",
                  f"SUMMARY:{title}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def graph_instances(emulator, uid: str) -> list[tuple[dt.datetime, str]]:
    """(start in Berlin, subject) of every live instance of the series in Alice's calendar,
    straight from the emulator's store (what Graph holds)."""
    store = emulator.store
    from radicale_graph.emulator import series as graph_series

    found = []
    for record in store.records("alice@contoso.com", None):
        ext = {v[0].lower(): v[1] for v in record.ext.values()}
        if not any(value == uid for value in ext.values()):
            continue
        for instance in graph_series.instances(
                record, dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2027, 3, 1, tzinfo=dt.UTC)):
            data, _ = store.full(record, instance)
            found.append((instance.start.astimezone(BERLIN).replace(tzinfo=None),
                          data["subject"]))
    return sorted(found)


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2027, 1, 1) + dt.timedelta(days=day - 1, hours=hour)


def test_series_edited_three_times_leaves_exactly_the_expected_instances(own_gateway,
                                                                         own_emulator):
    session = own_gateway.session()
    uid = f"edits-{uuid.uuid4()}"
    url = f"{own_gateway.url}/alice@contoso.com/calendar/{uid}.ics"
    steps = [
        # created: week 2 cancelled, week 3 moved to 14:00 and retitled
        (series(uid, "Sync", ["20270112"], {"20270119": ("140000", "Moved sync")}),
         [(at(5, 10), "Sync"), (at(19, 14), "Moved sync"), (at(26, 10), "Sync"),
          (at(33, 10), "Sync"), (at(40, 10), "Sync")]),
        # edit 1: the override retitled again, week 4 cancelled too
        (series(uid, "Sync", ["20270112", "20270126"],
                {"20270119": ("140000", "Moved again")}),
         [(at(5, 10), "Sync"), (at(19, 14), "Moved again"), (at(33, 10), "Sync"),
          (at(40, 10), "Sync")]),
        # edit 2: the override removed (week 3 back to normal), a client property added
        (series(uid, "Sync", ["20270112", "20270126"], {}, "X-CLIENT-NOTE:kept"),
         [(at(5, 10), "Sync"), (at(19, 10), "Sync"), (at(33, 10), "Sync"),
          (at(40, 10), "Sync")]),
        # edit 3: the series retitled and week 5 moved to 16:00
        (series(uid, "Team sync", ["20270112", "20270126"],
                {"20270202": ("160000", "Late sync")}, "X-CLIENT-NOTE:kept"),
         [(at(5, 10), "Team sync"), (at(19, 10), "Team sync"), (at(33, 16), "Late sync"),
          (at(40, 10), "Team sync")]),
    ]
    etag = None
    for number, (text, expected) in enumerate(steps):
        headers = {"Content-Type": "text/calendar"}
        if etag:
            headers["If-Match"] = etag
        response = session.put(url, data=text.encode(), headers=headers)
        assert response.status_code in (201, 204), (number, response.text)
        etag = response.headers["ETag"]
        assert graph_instances(own_emulator, uid) == expected, number
        got = session.get(url)
        assert got.status_code == 200
        assert vevent_items(got.text) == vevent_items(text), number
