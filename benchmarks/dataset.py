"""The same events in both servers: generated in the emulator, exported through the gateway.

The emulator knows nothing of iCalendar (it imports nothing from the gateway), so Radicale's
copy is what the gateway serves: a gateway (without injected latency) lists the calendar with
PROPFIND and reads every resource with calendar-multiget; each resource is written as one
``.ics`` file into Radicale's collection, under the same href.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import caldav, servers

MAILBOX = "alice@contoso.com"


@dataclass
class Dataset:
    """One calendar size: the emulator holding it, Graph id -> href of the generated items,
    the resources as exported (href -> iCalendar text) and the event changed "in Outlook"."""

    emulator: object
    size: int
    resources: dict[str, str]
    changed_id: str
    changed_href: str
    changed_subject: str
    generated_seconds: float
    exported_seconds: float


def make_emulator(size: int, seed: int, today: dt.date):
    """A started emulator whose Alice's default calendar holds exactly ``size`` generated
    items (the demo's own events there are deleted first). Returns (emulator, Generated)."""
    from radicale_graph.emulator import Emulator, generator

    emulator = Emulator(load_demo=True)
    for record in emulator.store.records(MAILBOX, None):
        emulator.store.delete_event(MAILBOX, record.id)
    made = generator.fill(emulator.store, MAILBOX, size, seed=seed, today=today)
    emulator.start()
    return emulator, made


def export(emulator, folder: Path) -> dict[str, str]:
    """href -> text of every resource of Alice's calendar as a fresh gateway serves it."""
    latency, emulator.latency = emulator.latency, 0.0
    gateway = servers.start_gateway(emulator, folder, refresh_interval=3600)
    try:
        session = gateway.session()
        url = gateway.url + servers.CALENDAR
        listing = caldav.send(session, url, caldav.propfind_request(), 207)
        hrefs = [h for h, _, _ in caldav.responses(listing.text) if not h.endswith("/")]
        out: dict[str, str] = {}
        for start in range(0, len(hrefs), caldav.MULTIGET_CHUNK):
            chunk = hrefs[start:start + caldav.MULTIGET_CHUNK]
            answer = caldav.send(session, url, caldav.multiget_request(chunk), 207)
            for href, props, _ in caldav.responses(answer.text):
                # XML parsing turned CRLF into LF; files keep iCalendar's CRLF (RFC 5545 3.1).
                text = props["calendar-data"].replace("\r\n", "\n").replace("\n", "\r\n")
                out[href.rsplit("/", 1)[-1]] = text
        if len(out) != len(hrefs):
            raise RuntimeError(f"exported {len(out)} of {len(hrefs)} resources")
        return out
    finally:
        gateway.stop()
        emulator.latency = latency
        shutil.rmtree(folder, ignore_errors=True)


def build(size: int, seed: int, work: Path, today: dt.date) -> Dataset:
    """Generate ``size`` events, export them, and write Radicale's copy under ``work``."""
    started = time.monotonic()
    emulator, made = make_emulator(size, seed, today)
    generated = time.monotonic() - started
    started = time.monotonic()
    resources = export(emulator, work / "export")
    servers.write_radicale_calendar(work / "radicale", resources)
    exported = time.monotonic() - started
    changed_id = made.singles[0]
    subject = emulator.store.get_event(MAILBOX, changed_id)["subject"]
    matches = [h for h, text in resources.items() if f"\r\nSUMMARY:{subject}\r\n" in text]
    if len(matches) != 1:
        raise RuntimeError(f"cannot find the resource of {subject!r} ({len(matches)} found)")
    return Dataset(emulator, size, resources, changed_id, matches[0], subject, generated,
                   exported)


def change_in_outlook(data: Dataset, revision: int) -> str:
    """Retitle the chosen event in the emulator (as Outlook would); returns the new subject."""
    subject = f"{data.changed_subject} (rev {revision})"
    data.emulator.store.update_event(MAILBOX, data.changed_id, {"subject": subject})
    return subject


def changed_text(data: Dataset, subject: str) -> str:
    """Radicale's copy of the chosen event with the new SUMMARY (what another client PUTs)."""
    text = data.resources[data.changed_href]
    return text.replace(f"\r\nSUMMARY:{data.changed_subject}\r\n", f"\r\nSUMMARY:{subject}\r\n")
