"""Round trip Graph -> iCalendar -> Graph for every event payload in ../shared/fixtures/graph/.

Each event (responses, request bodies, list and instance pages; not getSchedule items, not
the type template ``event__1__resource.json``) is rendered as a CalDAV resource and planned
back; the body written must carry every writable Graph value the payload has, and validate
against the v1.0 schema.
"""

from __future__ import annotations

import json

import pytest

from radicale_graph.translation import event_plan, to_resource
from radicale_graph.translation.body import body_text, words
from radicale_graph.translation.fields.location import graph_locations
from radicale_graph.translation.fields.recurrence import pattern as _recurrence
from radicale_graph.translation.recurrence import first_occurrence
from radicale_graph.translation.timezones import (
    UTC,
    graph_wall_date,
    iana_from_graph,
    parse_graph_datetime,
)

from .test_roundtrip_helpers import SHARED, event_validator, schema_errors

FOLDER = SHARED / "fixtures" / "graph"


def _events(value):
    if isinstance(value, dict):
        if isinstance(value.get("start"), dict) and "dateTime" in value["start"] and \
                not isinstance(value.get("status"), str):
            yield value
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                yield from _events(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _events(inner)


def payloads() -> list[tuple[str, dict]]:
    """Every event object of the Graph fixtures, labelled ``file#n``."""
    out = []
    for path in sorted(FOLDER.glob("*.json")):
        if path.name.endswith("__resource.json"):
            continue
        for number, event in enumerate(_events(json.loads(path.read_text())), 1):
            out.append((f"{path.stem}#{number}", event))
    return out


def _start(event: dict):
    if event.get("isAllDay"):
        value = graph_wall_date(event["start"])
    else:
        value = parse_graph_datetime(event["start"]).astimezone(UTC)
    if event.get("recurrence"):
        zone = iana_from_graph(event.get("originalStartTimeZone")) or "UTC"
        if not event.get("isAllDay"):
            from radicale_graph.translation.timezones import zone as tz

            value = value.astimezone(tz(zone))
        value = first_occurrence(event["recurrence"], value)
        if not event.get("isAllDay"):
            value = value.astimezone(UTC)
    return value


def writable(event: dict) -> dict:
    """The writable Graph values of an event that the mapping carries, in comparable form
    (only those the payload has: documentation examples are truncated)."""
    out: dict = {}
    present = set(event)
    if "start" in present:
        out["start"] = _start(event)
        out["allDay"] = bool(event.get("isAllDay"))
    if "end" in present and "start" in present:
        if event.get("isAllDay"):
            out["length"] = (graph_wall_date(event["end"]) - graph_wall_date(event["start"]))
        else:
            out["length"] = (parse_graph_datetime(event["end"])
                             - parse_graph_datetime(event["start"]))
    if "subject" in present:
        out["subject"] = event.get("subject") or ""
    if (event.get("body") or {}).get("content"):
        out["body"] = words(body_text(event["body"]))
        out["bodyType"] = str(event["body"].get("contentType") or "text").lower()
    if "location" in present or "locations" in present:
        out["location"] = (event.get("location") or {}).get("displayName") or ""
        out["locations"] = graph_locations(event)
    if "attendees" in present:
        out["attendees"] = sorted(
            (a["emailAddress"]["address"].lower(), str(a.get("type") or "required").lower(),
             str((a.get("status") or {}).get("response") or "none").replace(
                 "notResponded", "none"))
            for a in event.get("attendees") or [])
    for name, default in (("sensitivity", "normal"), ("showAs", "busy"),
                          ("importance", "normal")):
        if name in present:
            out[name] = str(event.get(name) or default).lower()
    if "categories" in present:
        out["categories"] = list(event.get("categories") or [])
    if "isReminderOn" in present:
        out["reminder"] = (event.get("reminderMinutesBeforeStart")
                           if event.get("isReminderOn") else None)
    if event.get("recurrence"):
        out["recurrence"] = _recurrence(event)
    if "responseRequested" in present and event.get("attendees"):
        out["responseRequested"] = event.get("responseRequested") is not False
    if event.get("isOnlineMeeting") and event.get("onlineMeetingProvider") not in (
            None, "unknown"):
        out["online"] = event["onlineMeetingProvider"]
    if event.get("allowNewTimeProposals") is False:
        out["allowNewTimeProposals"] = False
    return out


@pytest.mark.parametrize("label, event", payloads(), ids=[label for label, _ in payloads()])
def test_graph_payload_round_trips(label, event):
    event = {"id": f"AAMk-{label}", **event}
    text = to_resource(event).text
    plan = event_plan(text, "payload.ics")
    body = plan.master
    assert not schema_errors(event_validator(), body)
    expected = writable(event)
    actual = writable({**body, "originalStartTimeZone": body["start"]["timeZone"]})
    assert {k: actual.get(k) for k in expected} == expected


def test_every_graph_fixture_with_events_is_covered():
    covered = {label.split("#")[0] for label, _ in payloads()}
    assert len(payloads()) >= 30
    assert {"user-post-events__2__response", "user-post-events__3__response",
            "event-list-instances__1__response", "group-list-events__1__response"} <= covered
