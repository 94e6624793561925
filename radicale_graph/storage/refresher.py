"""Background refresh: calendars clients read recently are kept fresh, so no request waits.

A calendar is *watched* from its first read until nobody has read it for ``idle_after``
seconds. A worker refreshes a watched calendar (one ``calendarView/delta`` round, see
:mod:`.loader`) so that the round ends when its cache turns ``refresh_interval`` seconds old
(it starts early by the time the last rounds took): a calendar costs one round per
``refresh_interval``, however many clients read it, and is never older than that; or at once
when a change notification hints at its mailbox (:meth:`BackgroundRefresher.hint`). A client
never waits for this thread: a watched calendar's cache is served while it is younger than
:data:`GRACE` × ``refresh_interval`` (the round is due or under way); only when the thread
is further behind does the request refresh itself, as without background refresh. Graph's
per-mailbox limits (4 requests in flight, 10,000 per 10 minutes; Outlook throttling,
concepts/throttling-limits.md) are kept by running at most one refresh per
calendar and at most ``per_mailbox`` per mailbox at a time, on ``workers`` threads; the Graph
client's own per-mailbox slots and Retry-After handling apply under that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

logger = logging.getLogger("radicale_graph.storage")

LEAD = 1.0  # refresh when the cache is this share of refresh_interval old
GRACE = 1.5  # a watched calendar's cache is served without waiting up to this share


@dataclass
class _Watched:
    mailbox: str
    refresh: Callable[[bool], None]  # refresh(hinted): one round (takes its listing lock)
    age: Callable[[], float | None]  # seconds since its last refresh (None: never listed)
    last_read: float = field(default_factory=time.monotonic)
    hinted: bool = False
    running: bool = False
    forced: bool = False  # the running round was asked for by a hint
    duration: float = 0.0  # seconds the last rounds took (smoothed)


class BackgroundRefresher:
    """Keeps watched calendars fresh (see the module text). ``refresh_interval`` and
    ``idle_after`` are seconds. Start with :meth:`start`; :meth:`stop` ends the thread."""

    def __init__(self, refresh_interval: float, idle_after: float, workers: int = 4,
                 per_mailbox: int = 2) -> None:
        self.refresh_interval = refresh_interval
        self.idle_after = idle_after
        self.per_mailbox = per_mailbox
        self._lock = threading.Lock()
        self._watched: dict[object, _Watched] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="radicale-graph-refresh")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scheduling thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="radicale-graph-refresher")
                self._thread.start()

    def stop(self) -> None:
        """End the scheduling thread; running refreshes finish."""
        self._stopped.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def touch(self, key, mailbox: str, refresh: Callable[[bool], None],
              age: Callable[[], float | None]) -> None:
        """A client read the calendar ``key`` of ``mailbox``: watch it (again)."""
        with self._lock:
            watched = self._watched.get(key)
            if watched is None:
                self._watched[key] = _Watched(mailbox, refresh, age)
                self._wake.set()
            else:
                watched.last_read = time.monotonic()

    def watching(self, key) -> bool:
        """Whether the calendar ``key`` is kept fresh in the background."""
        with self._lock:
            return key in self._watched and not self._stopped.is_set()

    def hint(self, mailbox: str) -> int:
        """A change notification for ``mailbox``: refresh its watched calendars now.
        Returns how many were hinted. Carries no data: at most one round per calendar."""
        count = 0
        with self._lock:
            for watched in self._watched.values():
                if watched.mailbox == mailbox:
                    watched.hinted = True
                    count += 1
        self._wake.set()
        return count

    def forget(self, key) -> None:
        """Stop watching ``key`` (a deleted calendar)."""
        with self._lock:
            self._watched.pop(key, None)

    # -- the thread ---------------------------------------------------------------------------
    def _tick(self) -> float:
        return max(0.05, min(1.0, self.refresh_interval / 20))

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._tick())
            self._wake.clear()
            if self._stopped.is_set():
                return
            self._schedule()

    def _schedule(self) -> None:
        now = time.monotonic()
        due = []
        with self._lock:
            busy: dict[str, int] = {}
            for watched in self._watched.values():
                if watched.running:
                    busy[watched.mailbox] = busy.get(watched.mailbox, 0) + 1
            for key, watched in list(self._watched.items()):
                if now - watched.last_read > self.idle_after:
                    del self._watched[key]  # nobody reads it: stop refreshing
                    continue
                if watched.running or busy.get(watched.mailbox, 0) >= self.per_mailbox:
                    continue
                age = watched.age()
                if age is None:
                    continue  # never listed: the first read lists it
                if watched.hinted or age >= self._due_age(watched):
                    watched.running, watched.forced = True, watched.hinted
                    watched.hinted = False
                    busy[watched.mailbox] = busy.get(watched.mailbox, 0) + 1
                    due.append(watched)
        for watched in due:
            try:
                self._pool.submit(self._refresh, watched)
            except RuntimeError:  # shut down
                return

    def _due_age(self, watched: _Watched) -> float:
        """The cache age (seconds) at which a round starts: early by the time rounds take,
        so it ends when the cache turns ``refresh_interval`` old (within one tick) — at most
        one round per ``refresh_interval``, and a client finds the cache at most a tick
        older than that."""
        return max(self.refresh_interval * LEAD - watched.duration, self.refresh_interval / 2)

    def _refresh(self, watched: _Watched) -> None:
        began = time.monotonic()
        try:
            watched.refresh(watched.forced)
            took = time.monotonic() - began
            watched.duration = took if not watched.duration else (
                0.5 * watched.duration + 0.5 * took)
        except Exception as exc:  # a client read reports it; keep the thread alive
            logger.info("background refresh of a calendar of %s failed: %s", watched.mailbox,
                        exc)
        finally:
            with self._lock:
                watched.running = False
