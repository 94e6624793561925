"""Translated events of one calendar, kept in memory and served without re-translating.

Each entry holds what Radicale needs to build an item without parsing (text, etag, uid,
component name, time range) plus what the writer needs to change the series on Graph (ids of
the master and of its exceptions, cancelled occurrences). Lookups by href and by UID are O(1).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate

from ..translation.graph_to_ical import Resource
from ..translation.occurrences import cancelled_keys, instance_key
from ..translation.timezones import iana_from_graph, parse_graph_offset_datetime

__all__ = ["ALL_DAY_SLACK", "CachedEvent", "CalendarCache", "cancelled_keys", "entry_from_graph",
           "etag_for"]

ALL_DAY_SLACK = 14 * 3600  # seconds: the largest UTC offset of any zone


@dataclass(frozen=True)
class CachedEvent:
    """One CalDAV resource backed by one Graph single event or series master.

    ``etag``: quoted strong ETag, a digest of the iCalendar text a client reads (DTSTAMP and
    LAST-MODIFIED aside): it changes exactly when that content changes, not when only Graph's
    ``changeKey`` moved (Exchange moves it on housekeeping too: resources/event.md, "Every
    time the event is changed, ChangeKey changes"). ``odata_etag`` and ``change_key``: the
    master's ``@odata.etag`` and ``changeKey`` as last read, for If-Match on Graph writes and
    to tell which events a listing shows as changed.
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
    change_key: str | None = None
    zone: str = "UTC"
    all_day: bool = False
    is_series: bool = False
    exceptions: dict[str, str] = field(default_factory=dict)
    cancelled: frozenset[str] = frozenset()
    is_organizer: bool = True
    organizer: str = ""                      # organizer's address, lower case
    is_cancelled: bool = False
    graph_master: dict | None = None        # series and invitations: the master as Graph has it
    graph_exceptions: tuple[dict, ...] = ()  # series only: its exception instances

    def as_existing(self) -> dict:
        """The Graph facts ``translation.check_against`` needs about this event."""
        return {"organizer": {"emailAddress": {"address": self.organizer}},
                "isCancelled": self.is_cancelled, "isOrganizer": self.is_organizer}

    def same_content(self, other: CachedEvent) -> bool:
        """Whether a client would read the same event (DTSTAMP and LAST-MODIFIED aside,
        which follow Graph's lastModifiedDateTime even when only a changeKey moved)."""
        return self.etag == other.etag


def _semantic(text: str) -> str:
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("DTSTAMP", "LAST-MODIFIED")))


def etag_for(text: str) -> str:
    """Quoted strong ETag of an iCalendar text: a digest of its lines without DTSTAMP and
    LAST-MODIFIED (RFC 7232 section 2.3; the two lines follow Graph's
    ``lastModifiedDateTime``, which housekeeping moves without a change of content)."""
    return f'"{hashlib.sha256(_semantic(text).encode()).hexdigest()[:32]}"'


def entry_from_graph(master: dict, exceptions: list[dict] | tuple, resource: Resource,
                     href: str) -> CachedEvent:
    """Cache entry for a translated Graph event (``resource`` from ``to_resource``)."""
    zone = iana_from_graph(master.get("originalStartTimeZone")) or "UTC"
    all_day = bool(master.get("isAllDay"))
    exception_ids = {}
    for exception in exceptions:
        exception_ids[instance_key(exception, zone, all_day)] = exception["id"]
    cancelled = frozenset(cancelled_keys(master, zone, all_day))
    stamp = master.get("lastModifiedDateTime")
    modified = formatdate(parse_graph_offset_datetime(stamp).timestamp() if stamp
                          else time.time(), usegmt=True)
    time_range = resource.time_range
    if all_day:
        # All-day dates are floating: Radicale's filters read them in UTC, while Graph's times
        # are midnight in the organizer's zone. Widen by the largest zone offset (14 h) so the
        # range stays a superset; get_filtered leaves the exact test to Radicale.
        time_range = (time_range[0] - ALL_DAY_SLACK, time_range[1] + ALL_DAY_SLACK)
    return CachedEvent(
        href=href, uid=resource.uid, event_id=master["id"], etag=etag_for(resource.text),
        text=resource.text, time_range=time_range, last_modified=modified,
        odata_etag=master.get("@odata.etag"), change_key=master.get("changeKey"), zone=zone,
        all_day=all_day,
        is_series=bool(master.get("recurrence")), exceptions=exception_ids,
        cancelled=cancelled,
        is_organizer=master.get("isOrganizer", True) is not False,
        organizer=str(((master.get("organizer") or {}).get("emailAddress") or {})
                      .get("address") or "").lower(),
        is_cancelled=bool(master.get("isCancelled")),
        graph_master=master if master.get("recurrence") or master.get("isOrganizer") is False
        else None,
        graph_exceptions=tuple(exceptions) if master.get("recurrence") else ())


class CalendarCache:
    """The entries of one calendar, with the time they were listed from Graph.

    Thread-safe: one lock guards the maps; readers get consistent snapshots."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_href: dict[str, CachedEvent] = {}
        self._href_by_uid: dict[str, str] = {}
        self._href_by_id: dict[str, str] = {}
        self.loaded_at: float | None = None  # time.monotonic() of the last refresh
        self.delta_link: str | None = None   # where the next delta round starts

    def age(self) -> float | None:
        """Seconds since the last refresh (``None``: never listed)."""
        with self._lock:
            return None if self.loaded_at is None else time.monotonic() - self.loaded_at

    def is_fresh(self, max_age: float) -> bool:
        """Whether the last full listing is younger than ``max_age`` seconds."""
        with self._lock:
            return self.loaded_at is not None and time.monotonic() - self.loaded_at < max_age

    def replace_all(self, entries: list[CachedEvent]) -> None:
        """Install a full listing (marks the cache fresh)."""
        with self._lock:
            self._by_href = {e.href: e for e in entries}
            self._href_by_uid = {e.uid: e.href for e in entries}
            self._href_by_id = {e.event_id: e.href for e in entries}
            self.loaded_at = time.monotonic()

    def touch(self) -> None:
        """Mark the cache fresh (a delta round found it current)."""
        with self._lock:
            self.loaded_at = time.monotonic()

    @property
    def loaded(self) -> bool:
        """Whether the calendar was ever listed (items can be served from memory)."""
        with self._lock:
            return self.loaded_at is not None or bool(self._by_href)

    def put(self, entry: CachedEvent) -> None:
        """Insert or replace one entry (after a write through the gateway)."""
        with self._lock:
            old = self._by_href.get(entry.href)
            if old is not None:
                self._forget(old)
            self._by_href[entry.href] = entry
            self._href_by_uid[entry.uid] = entry.href
            self._href_by_id[entry.event_id] = entry.href

    def _forget(self, old: CachedEvent) -> None:
        if self._href_by_uid.get(old.uid) == old.href:
            del self._href_by_uid[old.uid]
        if self._href_by_id.get(old.event_id) == old.href:
            del self._href_by_id[old.event_id]

    def remove(self, href: str) -> None:
        """Drop one entry (after a delete through the gateway)."""
        with self._lock:
            old = self._by_href.pop(href, None)
            if old is not None:
                self._forget(old)

    def invalidate(self) -> None:
        """Force the next read to list the calendar again."""
        with self._lock:
            self.loaded_at = None

    def get(self, href: str) -> CachedEvent | None:
        with self._lock:
            return self._by_href.get(href)

    def by_event_id(self, event_id: str) -> CachedEvent | None:
        with self._lock:
            href = self._href_by_id.get(event_id)
            return self._by_href.get(href) if href else None

    def hrefs(self) -> set[str]:
        with self._lock:
            return set(self._by_href)

    def by_uid(self, uid: str) -> CachedEvent | None:
        with self._lock:
            href = self._href_by_uid.get(uid)
            return self._by_href.get(href) if href else None

    def entries(self) -> list[CachedEvent]:
        with self._lock:
            return list(self._by_href.values())
