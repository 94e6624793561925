"""Keeping one calendar's cache current from Graph v1.0 with the fewest requests.

Graph v1.0 tracks changes only through ``calendarView/delta`` over a window
(api/event-delta.md, concepts/delta-query-events.md; per-calendar ``/events/delta`` is beta
only, and the gateway never uses it). A round returns single events, occurrences and
exceptions, never series masters, and reports ``@removed`` for deletions, for events that left
the window and for events added or changed outside it. Series masters' ``cancelledOccurrences``
and ``exceptionOccurrences`` come only from a GET of the master by id (resources/event.md).
Deleted events stay readable by id for a while (they sit in Deleted Items), so a read by id
never proves an event is still in its calendar; only a listing of the calendar does.

What the loader does:

* **First read (listing):** open a ``calendarView/delta`` round over ``delta_window`` days
  back and forward (its first page fixes the moment it tracks from), list the calendar's
  single events and masters (pages of 1,000 with every field), and read the series masters
  by id, 20 per ``$batch``, for their exceptions and cancellations.
* **Each refresh (``refresh_interval``):** one delta round. Reported single events whose
  ``changeKey`` is new, and the masters of reported occurrences and exceptions, are read by id
  (20 per ``$batch``). ``@removed`` the gateway did not cause itself, and every
  ``full_listing_interval`` seconds, trigger a **reconciliation**: the light listing
  (``id``, ``type``, ``changeKey`` of every event, 1,000 per page) tells which events are gone
  and which changed anywhere in time (far past and far future included); changed ones are
  read by id.
* An expired token (410 ``syncStateNotFound``) or a refused one leads to a new listing; a
  calendar whose delta Graph refuses is kept current by reconciliations alone.
* A content-identical re-read (only ``changeKey`` or ``lastModifiedDateTime`` moved) keeps the
  text and ETag clients hold.

Every change is stamped in the :class:`~.sync_state.SyncState` for sync-collection.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from dataclasses import replace

from ..graph import GraphError
from ..metrics import count_delta_round
from ..translation.graph_to_ical import to_resource
from .cache import CachedEvent, CalendarCache, entry_from_graph
from .graph_events import CalendarEvents
from .paths import default_href
from .sync_state import SyncState

logger = logging.getLogger("radicale_graph.storage")

# A delta round's window is fixed in its token; open a new round when it is this old.
WINDOW_REOPEN = 86400.0  # seconds
# More changed single events than this in one reconciliation: list them instead of by id.
RELIST_THRESHOLD = 200
# More unexplained @removed events than this in one round: reconcile instead of checking each.
EXPLAIN_LIMIT = 40
SERIES_TYPES = (None, "singleInstance", "seriesMaster")
# Series masters read by id per $batch (json-batching.md: 20 requests per batch).
BATCH_SIZE = 20
# Listed events waiting for the translator at most (bounds the JSON held in memory).
TRANSLATE_QUEUE = 2000


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


def is_series_master(event: dict) -> bool:
    """Whether a listed Graph event is a series master (read it by id for its exceptions)."""
    return event.get("type") == "seriesMaster" or bool(event.get("recurrence"))


class CalendarLoader:
    """Refreshes ``cache`` for the calendar behind ``events``; ``key`` names it in ``state``.

    ``delta_window``: days tracked by ``calendarView/delta`` before and after now;
    ``full_listing_interval``: seconds between reconciliations. Methods raise the Graph
    client's ``GraphError`` subclasses; the caller holds the calendar's listing lock."""

    def __init__(self, events: CalendarEvents, cache: CalendarCache, state: SyncState,
                 key: str, rooms: frozenset[str], delta_window: float = 90.0,
                 full_listing_interval: float = 3600.0) -> None:
        self.events = events
        self.owner = getattr(events, "owner", events.mailbox)
        self.cache = cache
        self.state = state
        self.key = key
        self.rooms = rooms
        self.delta_window = dt.timedelta(days=delta_window)
        self.full_listing_interval = full_listing_interval
        self.delta_supported = True
        self._listed_at = 0.0       # monotonic time of the last listing or reconciliation
        self._window_opened = 0.0   # monotonic time the delta round's window was opened
        self._lock = threading.Lock()
        # The delta round a listing opened, still following its pages in the background:
        # (thread, its result dict); taken up by the next refresh (_finish_round).
        self._pending_round: tuple[threading.Thread, dict] | None = None
        # Occurrence or exception id -> its series master (learnt from delta items).
        self._series_of: dict[str, str] = {}
        # Event id -> iCalUId, to ask the calendar whether it still holds an event.
        self._ical_uids: dict[str, str] = {}

    # -- entry points ------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the cache up to date now."""
        started = time.monotonic()
        if self._pending_round is not None:
            self._finish_round()
        if not self.cache.loaded or (self.delta_supported and (
                self.cache.delta_link is None
                or started - self._window_opened > WINDOW_REOPEN)):
            self._full_listing()
            logger.debug("listed %s: %d events in %.0f ms", self.key, len(self.cache.hrefs()),
                         (time.monotonic() - started) * 1000)
            return
        stale: set[str] = set()
        unexplained: set[str] = set()
        if self.delta_supported:
            try:
                stale, unexplained = self._delta_round(self.cache.delta_link)
            except GraphError as exc:
                if exc.status not in (400, 404, 410):
                    raise
                logger.info("delta token for %s refused (%s): listing again", self.key, exc)
                self._full_listing()
                return
        explained = self._explain(unexplained) if unexplained else set()
        if (explained is None or not self.delta_supported
                or started - self._listed_at > self.full_listing_interval):
            self._reconcile(stale)
        elif stale | explained:
            self._read(stale | explained, listed=None)
        self.cache.touch()

    def _removed_here(self, event_id: str) -> bool:
        """Whether the gateway deleted this event, or the series of this occurrence, or
        cancelled this occurrence itself (``CalendarEvents.removed_ids``)."""
        removed = self.events.removed_ids
        with self._lock:
            master = self._series_of.get(event_id)
        return event_id in removed or (master is not None and master in removed)

    def reread(self, event_id: str) -> CachedEvent | None:
        """Read one event of this calendar by id now (after a failed or partial write) and
        put what Graph holds into the cache, keeping text and ETag when the content a client
        reads is unchanged. Returns the entry, or ``None`` when Graph no longer has it (the
        entry is then dropped)."""
        old = self.cache.by_event_id(event_id)
        master = self.events.get_many([event_id]).get(event_id)
        if master is None:
            if old is not None:
                self.cache.remove(old.href)
                self.state.record(self.key, {}, removed={old.href})
            return None
        updates: dict[str, str] = {}
        gone: set[str] = set()
        entry = self._install(master, old, self.cache.hrefs(), updates, gone)
        if updates or gone:
            self.state.record(self.key, updates, removed=gone)
        return entry

    # -- listing -----------------------------------------------------------------------
    def _full_listing(self) -> None:
        """Open a delta round, list every single event and master, read masters by id.

        Pipelined: a translator thread turns each event into a cache entry while this thread
        waits on Graph for the next page or ``$batch`` (translation is CPU, the rest is
        network), and a listed event's Graph dict is dropped once translated, so a big
        calendar never holds every event's JSON at once. Entries keep the listing's order,
        which decides the href of two events claiming the same one."""
        opened, listed = threading.Event(), threading.Event()
        round_result: dict = {}
        worker = None
        if self.delta_supported:
            worker = threading.Thread(target=self._open_round,
                                      args=(opened, listed, round_result),
                                      name=f"delta {self.key}", daemon=True)
            worker.start()
            opened.wait()  # the round's first page fixes where it tracks from
            if "error" in round_result:
                worker.join()
                self._round_refused(round_result["error"])
        old_by_id = {e.event_id: e for e in self.cache.entries()}
        translated: dict[str, CachedEvent | None] = {}
        work: queue.Queue = queue.Queue(maxsize=TRANSLATE_QUEUE)
        failure: list[BaseException] = []

        def translator() -> None:
            while (event := work.get()) is not None:
                if failure:
                    continue  # drain: the listing reports the first failure
                try:
                    old = old_by_id.get(event["id"])
                    translated[event["id"]] = translate(
                        event, list(event.get("exceptionOccurrences") or []), self.rooms,
                        href=old.href if old else None, owner=self.owner)
                except BaseException as exc:  # a bug, not bad data: raised below
                    failure.append(exc)

        thread = threading.Thread(target=translator, name=f"translate {self.key}",
                                  daemon=True)
        thread.start()
        order: list[str] = []
        ical_uids: dict[str, str] = {}
        done = False
        try:
            masters: dict[str, dict] = {}
            for event in self.events.list_masters():
                order.append(event["id"])
                if event.get("iCalUId"):
                    ical_uids[event["id"]] = event["iCalUId"]
                if is_series_master(event):
                    masters[event["id"]] = event  # translated once read by id
                else:
                    work.put(event)
            ids = list(masters)
            for start in range(0, len(ids), BATCH_SIZE):
                chunk = ids[start:start + BATCH_SIZE]
                by_id = self.events.get_many(chunk)
                for event_id in chunk:
                    listed_copy = masters.pop(event_id)
                    work.put(by_id.get(event_id) or listed_copy)
            done = True
        finally:
            work.put(None)
            thread.join()
            if not done or failure:
                round_result["abandoned"] = True  # nothing to track: the round stops
            listed.set()  # the round's other pages follow now, after the listing
        if failure:
            raise failure[0]
        entries: list[CachedEvent] = []
        taken: set[str] = set()
        for event_id in order:
            entry = translated.get(event_id)
            if entry is None:
                continue
            if entry.href in taken:
                entry = replace(entry, href=default_href(f"{entry.uid}-{event_id}", event_id))
            old = old_by_id.get(event_id)
            if old is not None and old.same_content(entry):
                entry = _keep_text(entry, old)
            entries.append(entry)
            taken.add(entry.href)
        self.cache.replace_all(entries)
        self.cache.delta_link = None
        now = time.monotonic()
        self._listed_at = now
        if worker is not None and self.delta_supported:
            self._window_opened = now
            self._pending_round = (worker, round_result)
        with self._lock:
            self._series_of = {}
            self._ical_uids = ical_uids
        self.state.record(self.key, {e.href: e.etag for e in entries}, complete=True)

    def settle(self, timeout: float | None = None) -> None:
        """Wait, holding no lock, until the delta round the last listing opened has reached
        its deltaLink (no wait when none is pending), so a background refresh does not hold
        the listing lock, which writes need, while that round's last pages arrive."""
        pending = self._pending_round
        if pending is not None:
            pending[0].join(timeout)

    def tracking_link(self) -> str | None:
        """The deltaLink the next round starts from (``None`` before the first listing, or
        when Graph refuses delta), waiting for the round the last listing opened to reach
        it. Raises what that round failed with. The caller holds the listing lock."""
        if self._pending_round is not None:
            self._finish_round()
        return self.cache.delta_link

    def _finish_round(self) -> None:
        """Take up the delta round the last listing opened: wait for its last page, keep its
        deltaLink and what it learnt of series. A refusal of delta turns to reconciliations;
        another failure leaves no deltaLink (the next refresh lists again) and is raised."""
        worker, result = self._pending_round
        worker.join()
        self._pending_round = None
        if result.get("error") is not None:
            self._round_refused(result["error"])
            return
        self.cache.delta_link = result.get("link")
        with self._lock:
            self._series_of = result.get("series_of") or {}

    def _round_refused(self, error: BaseException) -> None:
        """A delta round failed: Graph refusing ``calendarView/delta`` for this calendar
        (400/404/405/501) makes reconciliations keep it current; anything else is raised."""
        if isinstance(error, GraphError) and error.status in (400, 404, 405, 501):
            logger.info("Graph refused calendarView/delta for %s (%s): reconciling by "
                        "listing every %.0f s", self.key, error, self.full_listing_interval)
            self.delta_supported = False
            return
        raise error

    def _open_round(self, opened: threading.Event, listed: threading.Event,
                    result: dict) -> None:
        """Run a new delta round to its end (in a thread): its deltaLink and which series
        each occurrence belongs to go into ``result`` (``error`` if Graph refused). After
        the first page, which fixes where the round tracks from, it waits for ``listed``: the
        listing and the reads of series masters go first (they share the mailbox's 4
        concurrent requests), the rest of the round follows in the background."""
        try:
            now = dt.datetime.now(dt.UTC)
            series_of: dict[str, str] = {}
            link = None
            for page in self.events.view_delta_pages(now - self.delta_window,
                                                     now + self.delta_window, None):
                if not opened.is_set():
                    opened.set()
                    listed.wait()
                    if result.get("abandoned"):
                        return
                for item in page.get("value") or []:
                    if item.get("seriesMasterId") and item.get("id"):
                        series_of[item["id"]] = item["seriesMasterId"]
                link = page.get("@odata.deltaLink") or link
            result.update(link=link, series_of=series_of)
        except Exception as exc:  # reported by the listing thread
            result["error"] = exc
        finally:
            opened.set()

    # -- delta -------------------------------------------------------------------------
    def _delta_round(self, link: str) -> tuple[set[str], set[str]]:
        """Follow one delta round from ``link``. Returns (ids of events to read by id, ids
        reported ``@removed`` that the gateway did not remove itself)."""
        count_delta_round()
        stale: set[str] = set()
        unexplained: set[str] = set()
        next_link = link
        for page in self.events.view_delta_pages(None, None, link):
            for item in page.get("value") or []:
                event_id = item.get("id")
                if not event_id:
                    continue
                if "@removed" in item:
                    if not self._removed_here(event_id):
                        # Deleted, left the window, or changed outside it: only the
                        # calendar's own listing can tell (api/event-delta.md).
                        unexplained.add(event_id)
                    continue
                master_id = item.get("seriesMasterId")
                if master_id:
                    with self._lock:
                        self._series_of[event_id] = master_id
                    stale.add(master_id)
                    continue
                if item.get("type") == "seriesMaster":
                    stale.add(event_id)
                    continue
                cached = self.cache.by_event_id(event_id)
                if cached is None or cached.change_key != item.get("changeKey"):
                    stale.add(event_id)
            next_link = page.get("@odata.deltaLink") or next_link
        self.cache.delta_link = next_link
        return {i for i in stale if not self._removed_here(i)}, unexplained

    def _explain(self, removed: set[str]) -> set[str] | None:
        """Tell, for ``@removed`` ids of events (or occurrences of series) the cache holds,
        whether the calendar still has them (they changed outside the window: returned, to be
        read by id) or not (deleted: dropped now), with one folder-scoped check per 20
        events. ``None`` when an id is unknown (an event added outside the window, say) or
        there are too many: a reconciliation is needed."""
        targets: dict[str, CachedEvent] = {}
        for event_id in removed:
            with self._lock:
                master = self._series_of.get(event_id)
            entry = self.cache.by_event_id(event_id) or (
                self.cache.by_event_id(master) if master else None)
            uid = self._ical_uids.get(entry.event_id) if entry else None
            if entry is None or not uid:
                return None
            targets[entry.event_id] = entry
        if len(targets) > EXPLAIN_LIMIT:
            return None
        present = self.events.present({i: self._ical_uids[i] for i in targets})
        gone = {e.href for i, e in targets.items() if i not in present}
        for href in gone:
            self.cache.remove(href)
        if gone:
            self.state.record(self.key, {}, removed=gone)
        return present

    def _reconcile(self, stale: set[str]) -> None:
        """The light listing: drop events the calendar no longer holds, read by id those
        new or changed (and ``stale``, when still listed)."""
        listed = {e["id"]: e for e in self.events.list_keys() if e.get("id")}
        gone = set()
        for entry in self.cache.entries():
            if entry.event_id not in listed:
                self.cache.remove(entry.href)
                gone.add(entry.href)
        changed = {i for i, e in listed.items()
                   if (c := self.cache.by_event_id(i)) is None or c.change_key != e.get(
                       "changeKey")}
        wanted = (changed | stale) & set(listed)
        singles = [i for i in wanted if not is_series_master(listed[i])]
        if gone:
            self.state.record(self.key, {}, removed=gone)
        if len(singles) > RELIST_THRESHOLD:
            self._full_listing()
            return
        if wanted:
            self._read(wanted, listed=set(listed))
        self._listed_at = time.monotonic()

    def _read(self, event_ids: set[str], listed: set[str] | None) -> None:
        """Read events by id and install them. ``listed``: ids the calendar's listing just
        showed (``None`` when they come from delta items, which are in the calendar)."""
        wanted = sorted(i for i in event_ids
                        if not self._removed_here(i) or (listed is not None and i in listed))
        if not wanted:
            return
        fetched = self.events.get_many(wanted)
        updates: dict[str, str] = {}
        gone: set[str] = set()
        taken = self.cache.hrefs()
        for event_id, master in fetched.items():
            old = self.cache.by_event_id(event_id)
            if master is None:
                if old is not None:
                    self.cache.remove(old.href)
                    gone.add(old.href)
                continue
            if master.get("type") not in SERIES_TYPES:
                continue
            self._install(master, old, taken, updates, gone)
        if updates or gone:
            self.state.record(self.key, updates, removed=gone)

    def note_written(self, master: dict) -> None:
        """Remember what the gateway needs to track an event it just wrote (its
        ``iCalUId``)."""
        if master.get("id") and master.get("iCalUId"):
            with self._lock:
                self._ical_uids[master["id"]] = master["iCalUId"]

    def _install(self, master: dict, old: CachedEvent | None, taken: set[str],
                 updates: dict[str, str], gone: set[str]) -> CachedEvent | None:
        self.note_written(master)
        entry = translate(master, list(master.get("exceptionOccurrences") or []), self.rooms,
                          href=old.href if old else None,
                          taken=taken - ({old.href} if old else set()), owner=self.owner)
        if entry is None:
            return None
        if old is not None and old.same_content(entry):
            # Only Graph's bookkeeping moved: keep what clients hold, text and ETag alike.
            entry = _keep_text(entry, old)
            self.cache.put(entry)
            return entry
        if old is not None and old.href != entry.href:
            gone.add(old.href)
        self.cache.put(entry)
        taken.add(entry.href)
        updates[entry.href] = entry.etag
        return entry


def _keep_text(entry: CachedEvent, old: CachedEvent) -> CachedEvent:
    return replace(entry, href=old.href, text=old.text, etag=old.etag,
                   last_modified=old.last_modified)
