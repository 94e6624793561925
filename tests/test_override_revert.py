"""An override removed from a series through CalDAV is reverted in Graph, whatever field it
changed (issue 9): the writer reverts an exception with translation's body, which carries
every occurrence field of the mapping table (``fields.revert_body``), and compares an
exception with a body by the same table (``fields.holds``).

Before the fix the writer had its own list of occurrence fields without ``importance``,
``locations`` and ``isAllDay``: PUT a weekly series whose only override changes PRIORITY,
then PUT it again without the override: the answer was 204, but the exception stayed in
Graph with ``importance: high`` and the next GET still showed its RECURRENCE-ID."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import icalendar
import pytest

from radicale_graph.translation import fields

ALICE_CAL = "/alice@contoso.com/calendar/"


def series(uid: str, override: dict[str, str] | None) -> str:
    """A weekly series of four Mondays from 2027-03-01 09:00 Berlin, with an override of the
    second occurrence whose lines are the master's SUMMARY and LOCATION updated by
    ``override`` (property name -> value; None: no override)."""
    own = {"SUMMARY": "Weekly", "LOCATION": "Room 1"}
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20270101T000000Z",
             "DTSTART;TZID=Europe/Berlin:20270301T090000",
             "DTEND;TZID=Europe/Berlin:20270301T100000", "RRULE:FREQ=WEEKLY;COUNT=4"]
    lines += [f"{k}:{v}" for k, v in own.items()] + ["END:VEVENT"]
    if override is not None:
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270101T000000Z",
                  "RECURRENCE-ID;TZID=Europe/Berlin:20270308T090000",
                  "DTSTART;TZID=Europe/Berlin:20270308T090000",
                  "DTEND;TZID=Europe/Berlin:20270308T100000"]
        lines += [f"{k}:{v}" for k, v in {**own, **override}.items()] + ["END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def overrides(text: str) -> list:
    return [e for e in icalendar.Calendar.from_ical(text).walk("VEVENT")
            if "RECURRENCE-ID" in e]


def exception_records(emulator, uid: str) -> list[dict]:
    """The exceptions Graph holds for the series with the kept ``uid`` (the emulator's
    store), as instance JSON."""
    from radicale_graph.emulator import series as graph_series

    store = emulator.store
    found = []
    for record in store.records("alice@contoso.com", None):
        ext = {v[0].lower(): v[1] for v in record.ext.values()}
        if uid not in ext.values():
            continue
        for instance in graph_series.instances(record, dt.datetime(2027, 2, 1, tzinfo=dt.UTC),
                                               dt.datetime(2027, 4, 1, tzinfo=dt.UTC)):
            data, _ = store.full(record, instance)
            if data.get("type") == "exception":
                found.append(data)
    return found


@pytest.mark.parametrize("override", [
    {"PRIORITY": "1"},                       # importance: missing from the old revert body
    {"GEO": "52.5;13.4"},                    # location coordinates
    {"LOCATION": "Room 2"},
    {"SUMMARY": "Changed"},
], ids=["priority", "geo", "location", "summary"])
def test_override_removed_by_put_is_gone_from_graph_and_caldav(gateway, override):
    session = gateway.session()
    uid = f"revert-{uuid.uuid4()}"
    url = f"{gateway.url}{ALICE_CAL}{uid}.ics"
    text = series(uid, override)
    put = session.put(url, data=text, headers={"If-None-Match": "*"})
    assert put.status_code == 201, put.text
    got = session.get(url)
    assert len(overrides(got.text)) == 1, got.text
    assert len(exception_records(gateway.emulator, uid)) == 1

    put = session.put(url, data=series(uid, None))
    assert put.status_code == 204, put.text
    assert [e.get("subject") for e in exception_records(gateway.emulator, uid)
            if not fields.redundant(e, _master(gateway.emulator, uid))] == []
    got = session.get(url)
    assert overrides(got.text) == [], got.text
    time.sleep(1.1)  # past refresh_interval: the next GET reads Graph again
    got = session.get(url)
    assert overrides(got.text) == [], got.text
    assert "PRIORITY" not in got.text


def _master(emulator, uid: str) -> dict:
    store = emulator.store
    for record in store.records("alice@contoso.com", None):
        ext = {v[0].lower(): v[1] for v in record.ext.values()}
        if uid in ext.values():
            data, _ = store.full(record, None)
            return data
    raise AssertionError(uid)
