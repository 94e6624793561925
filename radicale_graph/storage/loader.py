"""Keeping one calendar's cache current from Graph with the fewest requests.

The first read lists the calendar (pages of up to 1,000 events with ``$select`` and
``$expand``) after opening a delta round (api/event-delta.md) whose ``deltaLink`` marks the
moment the listing began. Later, when the cache is older than ``refresh_interval``, one delta
round (plus its pages) reports what changed; changed events are read back 20 per ``$batch``
(json-batching.md), deleted ones dropped.

Delta per calendar (``/calendars/{id}/events/delta``) is documented for beta; where Graph
refuses it, the loader tracks ``calendarView/delta`` over a window around today
(``delta_window`` days back and forward) and lists the whole calendar again every
``full_listing_interval`` seconds for changes outside the window. A refused or expired delta
token (410) falls back to a full listing. Every change is stamped in the
:class:`~.sync_state.SyncState` for sync-collection.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace

from ..graph import GraphError
from ..translation.graph_to_ical import to_resource
from .cache import CachedEvent, CalendarCache, entry_from_graph
from .graph_events import CalendarEvents
from .paths import default_href
from .sync_state import SyncState

logger = logging.getLogger("radicale_graph.storage")


def translate(master: dict, exceptions: list[dict], rooms: frozenset[str],
              href: str | None = None, taken: set[str] | frozenset = frozenset(),
              owner: str | None = None) -> CachedEvent | None:
    """Cache entry for a Graph master and its exceptions; ``None`` (logged) when the event
    cannot be shown. ``href`` forces the resource name; ``taken`` are names already used;
    ``owner`` is the mailbox address (its own reply is rendered as its PARTSTAT)."""
    try:
        resource = to_resource(master, exceptions, rooms, owner=owner)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("event %s cannot be translated: %s", master.get("id"), exc)
        return None
    href = href or resource.href or default_href(resource.uid, master["id"])
    if href in taken:
        href = default_href(f"{resource.uid}-{master['id']}", master["id"])
    return entry_from_graph(master, exceptions, resource, href)


class CalendarLoader:
    """Refreshes ``cache`` for the calendar behind ``events``; ``key`` names it in ``state``."""

    MODES = ("events", "view", "none")  # tried in this order

    def __init__(self, events: CalendarEvents, cache: CalendarCache, state: SyncState,
                 key: str, rooms: frozenset[str], delta_window: float = 365.0,
                 full_listing_interval: float = 3600.0) -> None:
        self.events = events
        self.owner = events.mailbox
        self.cache = cache
        self.state = state
        self.key = key
        self.rooms = rooms
        self.mode = "events"
        self.delta_window = dt.timedelta(days=delta_window)
        self.full_listing_interval = full_listing_interval
        self._listed_at = 0.0

    def refresh(self) -> None:
        """Bring the cache up to date now (the caller holds the calendar's listing lock)."""
        started = time.monotonic()
        due = self.mode != "events" and started - self._listed_at > self.full_listing_interval
        if self.cache.delta_link and not due:
            try:
                self._apply_delta(self.cache.delta_link)
                return
            except GraphError as exc:
                if exc.status not in (400, 404, 410, 501):
                    raise
                logger.info("delta token for %s refused (%s): listing again", self.key, exc)
        self._full_listing()
        self._listed_at = time.monotonic()
        logger.debug("listed %s (%s delta): %d events in %.0f ms", self.key, self.mode,
                     len(self.cache.hrefs()), (time.monotonic() - started) * 1000)

    def _full_listing(self) -> None:
        link = None
        while self.mode != "none":
            try:
                link = self._open_round()
                break
            except GraphError as exc:
                if exc.status not in (400, 404, 405, 501):
                    raise
                following = self.MODES[self.MODES.index(self.mode) + 1]
                logger.info("Graph refused %s delta for %s (%s): using %s", self.mode,
                            self.key, exc, following)
                self.mode = following
        entries: list[CachedEvent] = []
        taken: set[str] = set()
        for master in self.events.list_masters():
            entry = translate(master, list(master.get("exceptionOccurrences") or []),
                              self.rooms, taken=taken, owner=self.owner)
            if entry is not None:
                entries.append(entry)
                taken.add(entry.href)
        self.cache.replace_all(entries)
        self.cache.delta_link = link
        self.state.record(self.key, {e.href: e.etag for e in entries}, complete=True)

    def _open_round(self) -> str | None:
        """Run a delta round to its end and return its deltaLink (its items are not needed:
        the listing that follows reads the same events with every property)."""
        link = None
        for page in self._pages(None):
            link = page.get("@odata.deltaLink") or link
        return link

    def _pages(self, link: str | None):
        if self.mode == "view":
            now = dt.datetime.now(dt.UTC)
            return self.events.view_delta_pages(now - self.delta_window,
                                                now + self.delta_window, link)
        return self.events.delta_pages(link)

    def _apply_delta(self, link: str) -> None:
        changed: dict[str, str | None] = {}  # event id -> changeKey reported
        removed: set[str] = set()
        unconfirmed = self.cache.take_unconfirmed()
        next_link = link
        for page in self._pages(link):
            for item in page.get("value") or []:
                event_id = item.get("id")
                if not event_id:
                    continue
                if "@removed" in item:
                    if self.mode == "view" and self.cache.by_event_id(event_id) is None:
                        # An occurrence left the window or was cancelled: which series it
                        # belongs to is not said, so read the calendar again.
                        self.cache.take_unconfirmed()
                        self._full_listing()
                        self._listed_at = time.monotonic()
                        return
                    removed.add(event_id)
                    changed.pop(event_id, None)
                else:
                    changed[item.get("seriesMasterId") or event_id] = item.get("changeKey")
                    removed.discard(event_id)
            next_link = page.get("@odata.deltaLink") or next_link
        stale = [event_id for event_id, change_key in changed.items()
                 if not self._current(event_id, change_key)]
        # Written through the gateway but not reported: read them to know (404 = deleted).
        stale += sorted(unconfirmed - set(changed) - removed)
        fetched = self.events.get_many(stale) if stale else {}
        updates: dict[str, str] = {}
        gone: set[str] = set()
        for event_id in removed:
            entry = self.cache.by_event_id(event_id)
            if entry is not None:
                self.cache.remove(entry.href)
                gone.add(entry.href)
        taken = self.cache.hrefs()
        for event_id, master in fetched.items():
            old = self.cache.by_event_id(event_id)
            if master is None:
                if old is not None:
                    self.cache.remove(old.href)
                    gone.add(old.href)
                continue
            if master.get("type") not in (None, "singleInstance", "seriesMaster"):
                continue
            entry = translate(master, list(master.get("exceptionOccurrences") or []),
                              self.rooms, href=old.href if old else None,
                              taken=taken - ({old.href} if old else set()), owner=self.owner)
            if entry is None:
                continue
            if old is not None and old.same_content(entry):
                # Only Graph's bookkeeping moved (e.g. the changeKey after the gateway's own
                # exception writes): keep what clients hold, text and ETag alike.
                entry = replace(entry, text=old.text, etag=old.etag,
                                last_modified=old.last_modified)
                self.cache.put(entry)
                continue
            self.cache.put(entry)
            taken.add(entry.href)
            updates[entry.href] = entry.etag
        self.cache.delta_link = next_link
        self.cache.touch()
        if updates or gone:
            self.state.record(self.key, updates, removed=gone)

    def _current(self, event_id: str, change_key: str | None) -> bool:
        entry = self.cache.by_event_id(event_id)
        return bool(entry is not None and change_key and entry.change_key == change_key)
