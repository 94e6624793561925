"""Two-way sync through the gateway with real CalDAV clients, on the demo tenant.

vdirsyncer syncs Alice's default calendar with a local folder both ways (changes made in the
folder and changes made "as Outlook" in the emulator) until both sides hold the same hrefs,
UIDs and summaries, and a further sync transfers nothing: hrefs, UIDs and ETags are stable.
The caldav library checks the same from a client's side: ETags unchanged between reads when
nothing changed (also after the gateway re-listed from Graph), hrefs and UIDs come back as
written.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import caldav
import icalendar
import pytest
import requests

from .conftest import ALICE, start_gateway

MAILBOX = ALICE[0]
REFRESH = 0.5  # the gateway's refresh_interval (seconds) in these tests
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav"}
PROPFIND_ETAGS = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/></D:prop></D:propfind>"""
REPORT_ETAGS = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter>
  </C:filter>
</C:calendar-query>"""
# vdirsyncer's own messages when it moves an item (vdirsyncer/sync/__init__.py).
ITEM_ACTIONS = re.compile(r"Copying \(|Deleting item|conflict resolution", re.IGNORECASE)
# vdirsyncer -v debug logs each HTTP request as "debug: METHOD URL".
HTTP_REQUEST = re.compile(r"^debug: ([A-Z]+) http://", re.MULTILINE)


@pytest.fixture
def own_gateway(tmp_path):
    """A fresh demo tenant and a gateway of its own, so the data is this test's alone."""
    from radicale_graph.emulator import Emulator

    emu = Emulator(load_demo=True)
    emu.start()
    folder = tmp_path / "gateway"
    folder.mkdir()
    gateway, stop = start_gateway(emu, folder, refresh_interval=REFRESH)
    yield gateway
    stop()
    emu.stop()


def event_ics(uid: str, summary: str, day: str, rrule: str | None = None) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//radicale-graph tests//EN",
             "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z",
             f"DTSTART;TZID=Europe/Berlin:{day}T090000",
             f"DTEND;TZID=Europe/Berlin:{day}T093000", f"SUMMARY:{summary}"]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def describe(text: str) -> tuple[str, tuple[str, ...]]:
    """(UID, sorted SUMMARYs of every VEVENT) of one calendar object resource."""
    events = icalendar.Calendar.from_ical(text).walk("VEVENT")
    uids = {str(e["UID"]) for e in events}
    assert len(uids) == 1, f"one resource must hold one UID, got {uids}"
    return uids.pop(), tuple(sorted(str(e.get("SUMMARY", "")) for e in events))


def master_summaries(items: dict) -> list[str]:
    return sorted(item["master"] for item in items.values())


def local_items(folder: Path) -> dict:
    """{file name: {"uid", "summaries", "master"}} of the vdirsyncer folder."""
    items = {}
    for path in sorted(folder.glob("*.ics")):
        text = path.read_text(encoding="utf-8")
        uid, summaries = describe(text)
        master = [str(e.get("SUMMARY", "")) for e in icalendar.Calendar.from_ical(text)
                  .walk("VEVENT") if "RECURRENCE-ID" not in e]
        items[path.name] = {"uid": uid, "summaries": summaries, "master": master[0]}
    return items


def server_etags(gateway, session: requests.Session) -> dict[str, str]:
    """{resource name: ETag} of Alice's default calendar by PROPFIND Depth 1."""
    url = f"{gateway.url}/{MAILBOX}/calendar/"
    response = session.request("PROPFIND", url, data=PROPFIND_ETAGS,
                               headers={"Depth": "1", "Content-Type": "application/xml"})
    assert response.status_code == 207, response.text
    etags = {}
    for node in ET.fromstring(response.content).findall("D:response", NS):
        href = unquote(node.find("D:href", NS).text)
        if node.find("D:propstat/D:prop/D:resourcetype/D:collection", NS) is not None:
            continue
        etags[href.rstrip("/").rsplit("/", 1)[-1]] = node.find(
            "D:propstat/D:prop/D:getetag", NS).text
    return etags


def server_items(gateway) -> dict:
    """{resource name: {"uid", "summaries", "master", "etag"}} read through the gateway."""
    session = gateway.session()
    items = {}
    for name, etag in server_etags(gateway, session).items():
        got = session.get(f"{gateway.url}/{MAILBOX}/calendar/{name}")
        assert got.status_code == 200, (name, got.status_code, got.text)
        assert got.headers["ETag"] == etag, f"GET and PROPFIND disagree on {name}'s ETag"
        uid, summaries = describe(got.text)
        master = [str(e.get("SUMMARY", "")) for e in icalendar.Calendar.from_ical(got.text)
                  .walk("VEVENT") if "RECURRENCE-ID" not in e]
        items[name] = {"uid": uid, "summaries": summaries, "master": master[0], "etag": etag}
    return items


def store_subjects(emulator) -> list[str]:
    """Subjects of the events (series masters and single events) in Alice's default
    calendar, as Outlook holds them."""
    return sorted(r.data["subject"] for r in emulator.store.records(MAILBOX, None))


def store_id(emulator, subject: str) -> str:
    ids = [r.id for r in emulator.store.records(MAILBOX, None) if r.data["subject"] == subject]
    assert len(ids) == 1, (subject, ids)
    return ids[0]


def assert_same(local: dict, server: dict, emulator) -> None:
    """Both sides hold the same (href, UID) pairs and summaries; Outlook the same events."""
    assert {(n, i["uid"]) for n, i in local.items()} == \
        {(n, i["uid"]) for n, i in server.items()}
    for name, item in local.items():
        assert item["uid"] == server[name]["uid"]
        assert item["summaries"] == server[name]["summaries"], name
    assert master_summaries(local) == store_subjects(emulator)


class Vdirsyncer:
    """vdirsyncer with a pair ``cal`` between ``folder`` (filesystem storage, ``.ics``) and
    Alice's default calendar through the gateway; status kept under ``tmp``."""

    def __init__(self, gateway, tmp: Path):
        self.folder = tmp / "local"
        self.folder.mkdir()
        status = tmp / "status"
        status.mkdir()
        self.config = tmp / "vdirsyncer.conf"
        self.config.write_text(f"""\
[general]
status_path = "{status}/"

[pair cal]
a = "local"
b = "gateway"
collections = null

[storage local]
type = "filesystem"
path = "{self.folder}/"
fileext = ".ics"

[storage gateway]
type = "caldav"
url = "{gateway.url}/{MAILBOX}/calendar/"
username = "{ALICE[0]}"
password = "{ALICE[1]}"
""", encoding="utf-8")

    def run(self, *args: str) -> str:
        """Run ``vdirsyncer -c CONFIG -v debug ARGS``; return stdout and stderr together.
        Fails the test unless vdirsyncer exits with status 0."""
        done = subprocess.run([sys.executable, "-m", "vdirsyncer", "-c", str(self.config), "-v",
                               "debug", *args],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert "error:" not in output.lower(), output[-4000:]
        return output

    def sync(self) -> str:
        return self.run("sync")


def test_vdirsyncer_two_way_sync_ends_identical(own_gateway, tmp_path):
    emu = own_gateway.emulator
    sync = Vdirsyncer(own_gateway, tmp_path)
    sync.run("discover")

    # 1. The first sync downloads the demo events.
    first = sync.sync()
    local = local_items(sync.folder)
    assert len(local) == len(store_subjects(emu)) == 6
    assert len(re.findall(r"Copying \(uploading\) item \S+ to local", first)) == 6
    assert_same(local, server_items(own_gateway), emu)

    # 2. Changes in the folder: two new events, one edited, one deleted.
    by_master = {item["master"]: name for name, item in local.items()}
    new = [f"vds-{n}-{uuid.uuid4().hex[:12]}" for n in (1, 2)]
    (sync.folder / f"{new[0]}.ics").write_text(event_ics(new[0], "Local new one", "20261207"),
                                               encoding="utf-8")
    (sync.folder / f"{new[1]}.ics").write_text(
        event_ics(new[1], "Local new weekly", "20261208", "FREQ=WEEKLY;COUNT=3"),
        encoding="utf-8")
    edited = sync.folder / by_master["Call with the Berlin office"]
    edited.write_text(edited.read_text(encoding="utf-8").replace(
        "SUMMARY:Call with the Berlin office", "SUMMARY:Call with Berlin (moved)"),
        encoding="utf-8")
    (sync.folder / by_master["Dentist"]).unlink()
    sync.sync()
    local = local_items(sync.folder)
    server = server_items(own_gateway)
    assert_same(local, server, emu)
    assert {f"{new[0]}.ics", f"{new[1]}.ics"} <= set(server)
    assert "Call with Berlin (moved)" in store_subjects(emu)
    assert "Call with the Berlin office" not in store_subjects(emu)
    assert "Dentist" not in store_subjects(emu)
    assert len(server) == 7

    # 3. Changes in Outlook: one created, a gateway-written and a demo event renamed, one of
    # the gateway-written events deleted.
    made = emu.store.create_event(MAILBOX, None, {
        "subject": "Made in Outlook",
        "start": {"dateTime": "2026-12-09T14:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-12-09T15:00:00", "timeZone": "W. Europe Standard Time"}})
    emu.store.update_event(MAILBOX, store_id(emu, "Local new one"),
                           {"subject": "Local new one, renamed in Outlook"})
    emu.store.update_event(MAILBOX, store_id(emu, "Company holiday"),
                           {"subject": "Company holiday (confirmed)"})
    emu.store.delete_event(MAILBOX, store_id(emu, "Local new weekly"))
    time.sleep(REFRESH + 0.3)
    outlook_sync = sync.sync()
    assert len(ITEM_ACTIONS.findall(outlook_sync)) == 4, outlook_sync[-4000:]
    local = local_items(sync.folder)
    server = server_items(own_gateway)
    assert_same(local, server, emu)
    assert f"{new[1]}.ics" not in local
    assert local[f"{new[0]}.ics"]["master"] == "Local new one, renamed in Outlook"
    assert local[f"{new[0]}.ics"]["uid"] == new[0]  # the client's UID and href survive
    outlook_made = [i for i in local.values() if i["master"] == "Made in Outlook"]
    assert [i["uid"] for i in outlook_made] == [made["iCalUId"]]
    assert "Company holiday (confirmed)" in master_summaries(local)

    # 4. Nothing changed anywhere: two more syncs move nothing and send only PROPFINDs
    # (vdirsyncer fetches an item only when its ETag changed).
    mtimes = {p.name: p.stat().st_mtime_ns for p in sync.folder.iterdir()}
    etags = {name: item["etag"] for name, item in server.items()}
    for _ in range(2):
        time.sleep(REFRESH + 0.3)  # let the gateway list from Graph again
        quiet = sync.sync()
        assert not ITEM_ACTIONS.findall(quiet), quiet[-4000:]
        assert set(HTTP_REQUEST.findall(quiet)) == {"PROPFIND"}, quiet[-4000:]
    assert {p.name: p.stat().st_mtime_ns for p in sync.folder.iterdir()} == mtimes
    assert server_etags(own_gateway, own_gateway.session()) == etags


def caldav_etags(client: caldav.DAVClient, url: str, method: str) -> dict[str, str]:
    """{resource name: ETag} by PROPFIND Depth 1 or a calendar-query REPORT."""
    if method == "PROPFIND":
        response = client.propfind(url, PROPFIND_ETAGS, depth=1)
    else:
        response = client.report(url, REPORT_ETAGS, depth=1)
    assert response.status == 207, response.raw
    etags = {}
    for node in ET.fromstring(response.raw).findall("D:response", NS):
        href = unquote(node.find("D:href", NS).text)
        etag = node.find("D:propstat/D:prop/D:getetag", NS)
        if href.endswith("/") or etag is None:
            continue
        etags[href.rsplit("/", 1)[-1]] = etag.text
    return etags


def test_caldav_client_etags_hrefs_and_uids_stable(own_gateway):
    emu = own_gateway.emulator
    client = caldav.DAVClient(url=own_gateway.url + "/", username=ALICE[0],
                              password=ALICE[1])
    url = f"{own_gateway.url}/{MAILBOX}/calendar/"
    calendar = client.calendar(url=url)
    # Hrefs unlike the UIDs, and UIDs of shapes clients use (Apple, Thunderbird, Google).
    written = {
        "A1B2C3D4-1111-2222-3333-444455556666.ics": f"{uuid.uuid4()}".upper(),
        f"thunderbird-{uuid.uuid4().hex[:8]}.ics": f"{{{uuid.uuid4()}}}",
        f"g-{uuid.uuid4().hex[:8]}.ics": f"{uuid.uuid4().hex}@google.com",
    }
    for n, (name, uid) in enumerate(written.items()):
        caldav.Event(client, url=url + name, parent=calendar,
                     data=event_ics(uid, f"caldav event {n}", f"2026121{n}")).save()

    for name, uid in written.items():
        event = calendar.event_by_url(url + name)
        event.load()
        assert describe(event.data)[0] == uid
        assert unquote(str(calendar.event_by_uid(uid).url)).rsplit("/", 1)[-1] == name
    listed = {unquote(str(e.url)).rsplit("/", 1)[-1]: describe(e.data)[0]
              for e in calendar.events()}
    assert {name: listed.get(name) for name in written} == written
    assert len(listed) == 6 + len(written) == len(emu.store.records(MAILBOX, None))

    first = caldav_etags(client, url, "PROPFIND")
    assert set(first) == set(listed)
    token = calendar.objects_by_sync_token(load_objects=False).sync_token
    assert caldav_etags(client, url, "REPORT") == first
    assert caldav_etags(client, url, "PROPFIND") == first
    time.sleep(REFRESH + 0.3)  # the gateway lists from Graph again: still the same ETags
    assert caldav_etags(client, url, "PROPFIND") == first
    assert caldav_etags(client, url, "REPORT") == first
    unchanged = calendar.objects_by_sync_token(sync_token=token, load_objects=False)
    assert [str(o.url) for o in unchanged] == []  # sync-collection (RFC 6578) agrees

    # A change made in Outlook changes exactly that event's ETag, and keeps its href and UID.
    target = next(iter(written))  # written as "caldav event 0"
    emu.store.update_event(MAILBOX, store_id(emu, "caldav event 0"),
                           {"subject": "Renamed in Outlook"})
    time.sleep(REFRESH + 0.3)
    after = caldav_etags(client, url, "PROPFIND")
    assert set(after) == set(first)
    assert {n for n in first if after[n] != first[n]} == {target}
    changed = calendar.objects_by_sync_token(sync_token=unchanged.sync_token,
                                             load_objects=False)
    assert [unquote(str(o.url)).rsplit("/", 1)[-1] for o in changed] == [target]
    event = calendar.event_by_url(url + target)
    event.load()
    assert describe(event.data) == (written[target], ("Renamed in Outlook",))

