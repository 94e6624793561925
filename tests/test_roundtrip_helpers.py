"""Helpers of the round-trip tests: fixture splitting, comparison of resources, and an emulator
calendar written through the storage's own writer (``storage.writer`` over
``storage.graph_events.CalendarEvents`` and the project's GraphClient, over HTTPS) and read
back by id as the loader reads it. The few tests here check the helpers themselves."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import icalendar
import recurring_ical_events
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from radicale_graph.storage import writer
from radicale_graph.storage.graph_events import CalendarEvents
from radicale_graph.storage.loader import translate
from radicale_graph.translation import extended, lines

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# Properties the store sets itself (RFC 5545 3.8.7.2 and 3.8.7.3 describe the store's copy).
SERVER_PROPERTIES = {"DTSTAMP", "LAST-MODIFIED"}


# -- fixtures ----------------------------------------------------------------------------


def split_resources(path: Path) -> list[tuple[str, str | None]]:
    """Split an .ics file into CalDAV resources as a client would PUT them: one per UID
    (master and overrides together) with the calendar's VTIMEZONEs; other components one
    each. Returns ``(label, text)``; ``text`` is None when the file does not parse."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    try:
        tops = icalendar.Calendar.from_ical(raw, multiple=True)
    except (ValueError, KeyError, IndexError, TypeError):
        return [(path.name, None)]
    out = []
    for number, top in enumerate(tops):
        if top.name == "VCALENDAR":
            zones = [c for c in top.subcomponents if c.name == "VTIMEZONE"]
            others = [c for c in top.subcomponents if c.name != "VTIMEZONE"]
            head = top
        else:
            zones, others, head = [], [top], None
        groups: dict[str, list] = {}
        for index, component in enumerate(others):
            uid = str(component.get("UID", "")) if component.name == "VEVENT" else ""
            key = uid or f"#{index}-{component.name}"
            groups.setdefault(key, []).append(component)
        for key, components in groups.items():
            calendar = icalendar.Calendar()
            if head is not None:
                for name, value in head.property_items(recursive=False):
                    if name not in ("BEGIN", "END"):
                        calendar.add(name, value)
            if "VERSION" not in calendar:
                calendar.add("VERSION", "2.0")
            if "PRODID" not in calendar:
                calendar.add("PRODID", "-//fixture//EN")
            for zone in zones:
                calendar.add_component(zone)
            for component in components:
                calendar.add_component(component)
            try:
                text = calendar.to_ical().decode()
                icalendar.Calendar.from_ical(text)
            except (ValueError, KeyError, IndexError, TypeError):
                text = None
            out.append((f"{path.name}[{number}:{key}]", text))
    return out


def all_fixture_resources() -> list[tuple[str, str | None]]:
    """Every resource of every .ics fixture, labelled ``dir/file[n:uid]``."""
    base = SHARED / "fixtures" / "ics"
    out = []
    for path in sorted(base.rglob("*.ics")):
        rel = path.relative_to(base).as_posix()
        for label, text in split_resources(path):
            out.append((rel + label[len(path.name):], text))
    return out


# -- comparison --------------------------------------------------------------------------


def _normal_line(text: str) -> str:
    name, params, value = lines.parts(text)
    items = ";".join(f"{k.upper()}={params[k]}" for k in sorted(params))
    return f"{name};{items}:{value}"


def vevent_items(text: str) -> dict[str, Counter]:
    """Per VEVENT (keyed by RECURRENCE-ID text, ``master`` for the master), the multiset of
    its normalized property lines and subcomponents, without the store's own properties."""
    calendar = icalendar.Calendar.from_ical(text)
    out = {}
    for event in calendar.walk("VEVENT"):
        key = "master"
        if "RECURRENCE-ID" in event:
            key = _instant_text(event.decoded("RECURRENCE-ID"))
        found = Counter()
        for _group, item in lines.property_items(event):
            if lines.is_component(item):
                found["COMPONENT " + lines.unfold(item)] += 1
                continue
            name = lines.parts(item)[0]
            if name not in SERVER_PROPERTIES:
                found[_normal_line(item)] += 1
        out[key] = found
    return out


def _instant_text(value) -> str:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).isoformat()
    return value.isoformat()


def _stamp(value):
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def occurrences(text: str, years: int = 10) -> set[tuple]:
    """(start, end, summary) of every occurrence over ``years`` from the master's DTSTART
    (recurring-ical-events), aware times in UTC, floating and dates as they are."""
    calendar = icalendar.Calendar.from_ical(text)
    events = calendar.walk("VEVENT")
    starts = [e.decoded("DTSTART") for e in events if "DTSTART" in e]
    first = min(_date_of(s) for s in starts)
    window = (first - dt.timedelta(days=2), first + dt.timedelta(days=366 * years))
    found = set()
    for event in recurring_ical_events.of(calendar).between(*window):
        start = event.decoded("DTSTART")
        end = event.decoded("DTEND") if "DTEND" in event else None
        found.add((_stamp(start), _stamp(end), str(event.get("SUMMARY", ""))))
    return found


def _date_of(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def meaning(text: str, floating_zone: str = "UTC") -> dict:
    """What a resource means, property by property, as the gateway's mapping defines it
    (docs/mapping.md): independent of spelling, so a rendering from Graph's values alone
    (nothing kept) can be compared with the client's original."""
    from radicale_graph.translation.values import (
        BUSYSTATUS_TO_SHOW_AS,
        CLASS_TO_SENSITIVITY,
        PARTSTAT_TO_RESPONSE,
        ROLE_TO_TYPE,
        priority_to_importance,
    )

    calendar = icalendar.Calendar.from_ical(text)
    tz = dt.UTC if floating_zone == "UTC" else __import__("zoneinfo").ZoneInfo(floating_zone)
    out = {}
    for event in calendar.walk("VEVENT"):
        key = "master"
        if "RECURRENCE-ID" in event:
            key = _instant_text(_pin(event.decoded("RECURRENCE-ID"), tz))
        start = _pin(event.decoded("DTSTART"), tz)
        if "DTEND" in event:
            end = _pin(event.decoded("DTEND"), tz)
        elif "DURATION" in event:
            end = start + event.decoded("DURATION")
        else:
            end = start if isinstance(start, dt.datetime) else start + dt.timedelta(days=1)
        attendees = {}
        for prop in _all(event, "ATTENDEE"):
            params = prop.params
            kind = ("resource" if str(params.get("CUTYPE", "")).upper() in ("ROOM", "RESOURCE")
                    else ROLE_TO_TYPE.get(str(params.get("ROLE", "REQ-PARTICIPANT")).upper(),
                                          "required"))
            attendees[lines.address_of(prop)] = (kind, PARTSTAT_TO_RESPONSE.get(
                str(params.get("PARTSTAT", "NEEDS-ACTION")).upper(), "none"))
        busy = BUSYSTATUS_TO_SHOW_AS.get(str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", ""))
                                         .upper())
        show = busy or ("free" if str(event.get("TRANSP", "")).upper() == "TRANSPARENT"
                        else "busy")
        alarms = [a for a in event.walk("VALARM") if "TRIGGER" in a]
        reminder = None
        for alarm in alarms:
            value = alarm.decoded("TRIGGER")
            if isinstance(value, dt.timedelta) and value <= dt.timedelta(0) and str(
                    alarm["TRIGGER"].params.get("RELATED", "START")).upper() == "START":
                reminder = int(-value.total_seconds() // 60)
                break
        out[key] = {
            "start": _stamp(start), "end": _stamp(end),
            "summary": str(event.get("SUMMARY", "")),
            "description": " ".join(str(event.get("DESCRIPTION", "")).split()),
            "location": str(event.get("LOCATION", "")),
            "class": CLASS_TO_SENSITIVITY.get(str(event.get("CLASS", "PUBLIC")).upper(),
                                              "private"),
            "show": show,
            "importance": priority_to_importance(int(event.get("PRIORITY", 0))),
            "categories": sorted(str(c) for g in _all(event, "CATEGORIES") for c in g.cats),
            "attendees": attendees,
            "cancelled": str(event.get("STATUS", "")).upper() == "CANCELLED",
            "reminder": reminder,
        }
    return out


def _pin(value, tz):
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=tz)
    return value


def _all(event, name):
    found = event.get(name)
    return [] if found is None else found if isinstance(found, list) else [found]


def without_kept(event: dict) -> dict:
    """A Graph event without the gateway's kept data (Graph's own values only)."""
    out = dict(event)
    out["singleValueExtendedProperties"] = [
        p for p in event.get("singleValueExtendedProperties") or []
        if p.get("id", "").lower() != extended.KEPT_PROPERTY.lower()]
    return out


# -- Graph schema ------------------------------------------------------------------------


def event_validator() -> Draft202012Validator:
    """A validator for Graph v1.0 ``event`` bodies (../shared/graph-schema, see its
    README)."""
    folder = SHARED / "graph-schema"
    registry = Registry().with_resources(
        (p.name, Resource.from_contents(json.loads(p.read_text())))
        for p in folder.glob("microsoft.graph.*.json"))
    return Draft202012Validator({"$ref": "microsoft.graph.event.json"}, registry=registry)


def schema_errors(validator: Draft202012Validator, body: dict) -> list[str]:
    """Schema violations of a Graph body, as ``path: message`` strings."""
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(body)]


# -- Graph over HTTP ----------------------------------------------------------------------


class EmulatorCalendar:
    """The default calendar of one emulator mailbox, written and read as the storage does:
    through ``storage.writer.create`` over a real ``storage.graph_events.CalendarEvents`` (so
    over the project's GraphClient and HTTPS), read back by id (``CalendarEvents.get_many``)
    and translated with ``storage.loader.translate``."""

    def __init__(self, client, mailbox: str) -> None:
        self.client = client
        self.mailbox = mailbox
        calendar = client.get_json(f"/users/{quote(mailbox)}/calendar", mailbox=mailbox,
                                   operation="read default calendar")
        self.events = CalendarEvents(client, mailbox, calendar["id"])

    def write(self, href: str, text: str, plan) -> tuple[dict, list[dict]]:
        """PUT of a new resource: ``storage.writer.create`` (POST the master, look the
        instances up, DELETE cancelled occurrences, PATCH overrides). Returns Graph's
        ``(master, exceptions)`` as the writer assembled them."""
        def adopt(event: dict):
            return translate(event, list(event.get("exceptionOccurrences") or []),
                             frozenset(), href=href, owner=self.mailbox)

        return writer.create(self.events, href, text, plan, adopt)

    def create(self, plan, text: str | None = None, href: str | None = None) -> str:
        """:meth:`write` for a plan alone (``text`` only seeds the transactionId); returns
        the master's id."""
        seed = text if text is not None else json.dumps(plan.master, sort_keys=True)
        master, _ = self.write(href or f"{plan.uid}.ics", seed, plan)
        return master["id"]

    def read(self, event_id: str) -> tuple[dict, list[dict]]:
        """The master by id (with ``cancelledOccurrences`` and ``exceptionOccurrences``) and
        its exceptions, as the loader reads series masters."""
        master = self.events.get_many([event_id])[event_id]
        assert master is not None, f"event {event_id} not readable by id"
        return master, list(master.get("exceptionOccurrences") or [])

    def delete(self, event_id: str) -> None:
        """DELETE the event, as the storage does."""
        self.events.delete(event_id)


def emulator_of_its_own():
    """A Graph emulator for one test module (no faults left by other tests); use as
    ``own_emulator = pytest.fixture(scope="module")(emulator_of_its_own)``."""
    from radicale_graph.emulator import Emulator

    emulator = Emulator(load_demo=True)
    emulator.start()
    yield emulator
    emulator.stop()


def graph_client(emulator):
    """A GraphClient for the emulator's demo app (as ``radicale-graph demo`` configures)."""
    from radicale_graph.emulator import demo
    from radicale_graph.graph import GraphClient, GraphSettings

    return GraphClient(GraphSettings(
        tenant_id=demo.TENANT_ID, client_id=demo.CLIENT_ID, client_secret=demo.CLIENT_SECRET,
        authority_host=emulator.authority_host, graph_url=emulator.graph_url,
        ca_file=emulator.ca_file))


def ensure_mailbox(emulator, address: str) -> str:
    """The mailbox for ``address`` in the emulator, added as a user when missing (a
    fixture's organizer gets their own calendar, as their own client would PUT to it)."""
    if emulator.store.mailbox(address) is None:
        emulator.store.add_mailbox(address, address.split("@")[0])
    return address


# -- tests of the helpers ------------------------------------------------------------------


def test_split_keeps_overrides_with_their_master_and_zones():
    resources = split_resources(SHARED / "fixtures/ics/ical.js/recur_instances.ics")
    texts = [t for _, t in resources if t]
    assert len(texts) == 2  # the series (master + 2 overrides) and the X-UNKNOWN component
    calendar = icalendar.Calendar.from_ical(texts[0])
    assert len(calendar.walk("VEVENT")) == 3
    assert calendar.walk("VTIMEZONE")


def test_comparison_sees_a_changed_parameter_and_ignores_dtstamp():
    base = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
            "DTSTAMP:{stamp}\r\nDTSTART:20260101T100000Z\r\nATTENDEE;{param}:mailto:a@b.c\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
    one = vevent_items(base.format(stamp="20260101T000000Z", param="ROLE=CHAIR"))
    two = vevent_items(base.format(stamp="20270101T000000Z", param="ROLE=CHAIR"))
    three = vevent_items(base.format(stamp="20260101T000000Z", param="ROLE=OPT-PARTICIPANT"))
    assert one == two
    assert one != three
