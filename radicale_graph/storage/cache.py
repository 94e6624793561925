"""Translated events of one calendar, kept in memory and served without re-translating.

Each entry holds what Radicale needs to build an item without parsing (text, etag, uid,
component name, time range) plus what the writer needs to change the series on Graph (ids of
the master and of its exceptions, cancelled occurrences). Lookups by href and by UID are O(1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate

from ..translation.graph_to_ical import Resource
from ..translation.ical_to_graph import occurrence_key
from ..translation.timezones import (
    iana_from_graph,
    parse_graph_datetime,
    parse_graph_offset_datetime,
)
from ..translation.timezones import zone as tz_for


@dataclass(frozen=True)
class CachedEvent:
    """One CalDAV resource backed by one Graph single event or series master.

    ``etag``: quoted strong ETag derived from Graph's ``changeKey`` of the master, of every
    exception and from the cancelled occurrences (so an Outlook edit of one occurrence changes
    it). ``odata_etag``: the master's ``@odata.etag`` for If-Match on Graph writes.
    ``exceptions``: occurrence key -> Graph id of the exception instance.
    ``cancelled``: occurrence keys of cancelled occurrences. ``last_modified``: HTTP date.
    """

    href: str
    uid: str
    event_id: str
    etag: str
    text: str
    time_range: tuple[int, int]
    last_modified: str
    odata_etag: str | None = None
    zone: str = "UTC"
    all_day: bool = False
    is_series: bool = False
    exceptions: dict[str, str] = field(default_factory=dict)
    cancelled: frozenset[str] = frozenset()


def etag_for(master: dict, exceptions: list[dict] | tuple = ()) -> str:
    """Quoted ETag from the master's ``changeKey``, its exceptions' and cancellations.

    Source: Graph ``changeKey`` changes on every edit of an item (resources/event.md)."""
    parts = [master.get("changeKey") or master.get("@odata.etag") or master["id"]]
    parts += sorted(e.get("changeKey") or e["id"] for e in exceptions)
    parts += sorted(master.get("cancelledOccurrences") or [])
    if len(parts) == 1:
        return f'"{parts[0]}"'
    return f'"{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:32]}"'


def entry_from_graph(master: dict, exceptions: list[dict] | tuple, resource: Resource,
                     href: str) -> CachedEvent:
    """Cache entry for a translated Graph event (``resource`` from ``to_resource``)."""
    zone = iana_from_graph(master.get("originalStartTimeZone")) or "UTC"
    all_day = bool(master.get("isAllDay"))
    exception_ids = {}
    for exception in exceptions:
        original = parse_graph_offset_datetime(exception["originalStart"])
        exception_ids[occurrence_key(original, zone, all_day)] = exception["id"]
    cancelled = frozenset(_cancelled_keys(master, zone, all_day))
    stamp = master.get("lastModifiedDateTime")
    modified = formatdate(parse_graph_offset_datetime(stamp).timestamp() if stamp
                          else time.time(), usegmt=True)
    return CachedEvent(
        href=href, uid=resource.uid, event_id=master["id"], etag=etag_for(master, exceptions),
        text=resource.text, time_range=resource.time_range, last_modified=modified,
        odata_etag=master.get("@odata.etag"), zone=zone, all_day=all_day,
        is_series=bool(master.get("recurrence")), exceptions=exception_ids,
        cancelled=cancelled)


def _cancelled_keys(master: dict, zone: str, all_day: bool):
    """Occurrence keys of ``cancelledOccurrences`` (``OID.<master id>.<local date>``)."""
    start = parse_graph_datetime(master["start"]).astimezone(tz_for(zone))
    for text in master.get("cancelledOccurrences") or []:
        day = dt.date.fromisoformat(text.rsplit(".", 1)[-1][:10])
        if all_day:
            yield day.isoformat()
        else:
            local = dt.datetime.combine(day, start.time()).replace(tzinfo=start.tzinfo)
            yield occurrence_key(local, zone, all_day)


class CalendarCache:
    """The entries of one calendar, with the time they were listed from Graph.

    Thread-safe: one lock guards the maps; readers get consistent snapshots."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_href: dict[str, CachedEvent] = {}
        self._href_by_uid: dict[str, str] = {}
        self.loaded_at: float | None = None  # time.monotonic() of the last full listing

    def is_fresh(self, max_age: float) -> bool:
        """Whether the last full listing is younger than ``max_age`` seconds."""
        with self._lock:
            return self.loaded_at is not None and time.monotonic() - self.loaded_at < max_age

    def replace_all(self, entries: list[CachedEvent]) -> None:
        """Install a full listing (marks the cache fresh)."""
        with self._lock:
            self._by_href = {e.href: e for e in entries}
            self._href_by_uid = {e.uid: e.href for e in entries}
            self.loaded_at = time.monotonic()

    def put(self, entry: CachedEvent) -> None:
        """Insert or replace one entry (after a write through the gateway)."""
        with self._lock:
            old = self._by_href.get(entry.href)
            if old is not None and self._href_by_uid.get(old.uid) == old.href:
                del self._href_by_uid[old.uid]
            self._by_href[entry.href] = entry
            self._href_by_uid[entry.uid] = entry.href

    def remove(self, href: str) -> None:
        """Drop one entry (after a delete through the gateway)."""
        with self._lock:
            old = self._by_href.pop(href, None)
            if old is not None and self._href_by_uid.get(old.uid) == href:
                del self._href_by_uid[old.uid]

    def invalidate(self) -> None:
        """Force the next read to list the calendar again."""
        with self._lock:
            self.loaded_at = None

    def get(self, href: str) -> CachedEvent | None:
        with self._lock:
            return self._by_href.get(href)

    def by_uid(self, uid: str) -> CachedEvent | None:
        with self._lock:
            href = self._href_by_uid.get(uid)
            return self._by_href.get(href) if href else None

    def entries(self) -> list[CachedEvent]:
        with self._lock:
            return list(self._by_href.values())
