"""HTTP plumbing for Graph: the requests session, bounded retries, per-mailbox concurrency.

Retries are urllib3's ``Retry`` mounted through requests' ``HTTPAdapter``; ``GraphRetry``
only adds a budget on the total time spent waiting. Graph's guidance
(learn.microsoft.com/graph/throttling): on 429 wait for ``Retry-After`` then retry; back
off on 503/504. Outlook allows 4 concurrent requests per app and mailbox
(learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from .. import request_log
from .settings import GraphSettings

log = logging.getLogger("radicale_graph.graph")

RETRY_STATUSES = frozenset({429, 503, 504})
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"})


class GraphRetry(Retry):
    """urllib3 ``Retry`` whose waits for one call add up to at most ``max_wait`` seconds.

    Each wait is ``Retry-After`` (seconds or HTTP date) when the response has one, else
    exponential backoff with jitter: ``backoff_factor * 2**(n-1) + U(0, backoff_jitter)``
    for the n-th consecutive retry, capped at ``backoff_max``. When the next wait would
    overrun the budget, ``increment()`` raises ``MaxRetryError`` without waiting: with
    ``raise_on_status=False`` urllib3 then hands back the last 429/503 response, which the
    client turns into ``Throttled``/``ServiceUnavailable``.

    The wait happens inside ``increment()`` and ``sleep()`` is a no-op: urllib3 calls
    ``increment()`` then ``sleep()`` back to back, so that is the same moment, and it lets
    the budget decision and the wait be made in one place (and lets test doubles of the
    transport that call ``increment()`` only, such as ``responses``, see the same waits).
    ``waited`` is the seconds already waited for this call; urllib3 makes a new instance per
    retry through ``new()``, so the object shared by all threads is never mutated.
    """

    def __init__(self, *args, max_wait: float = 120.0, waited: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        self.waited = waited

    def new(self, **kw) -> GraphRetry:
        """Copy with updated counters, carrying ``max_wait`` and ``waited``."""
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def backoff_seconds(self, n: int) -> float:
        """Backoff before the n-th consecutive retry (n >= 1), seconds, jitter included."""
        if n < 1:
            return 0.0
        value = self.backoff_factor * (2 ** (n - 1))
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, value)))

    def get_backoff_time(self) -> float:
        """Backoff for the current history (urllib3 waits 0 before the first retry; Graph
        asks to back off on 503 already, so the first retry waits ``backoff_factor``)."""
        consecutive = 0
        for entry in reversed(self.history):
            if entry.redirect_location is not None:
                break
            consecutive += 1
        return self.backoff_seconds(consecutive)

    def planned_wait(self, response) -> float:
        """Seconds to wait before retrying after ``response`` (None for errors)."""
        if response is not None and self.respect_retry_after_header:
            header = response.headers.get("Retry-After")
            if header:
                try:
                    return float(self.parse_retry_after(header))
                except InvalidHeader:
                    pass
        return self.get_backoff_time()

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None) -> GraphRetry:
        """urllib3's increment, then the budget check and the wait. Raises MaxRetryError."""
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = new.planned_wait(response)
        path = request_log.template(urlsplit(url or "").path)
        status = getattr(response, "status", None)
        if new.waited + wait > self.max_wait:
            log.info("Graph %s %s: not retrying (%s); waiting %.1f s would exceed the retry "
                     "budget of %.0f s (%.1f s already waited)", method, path,
                     status or type(error).__name__, wait, self.max_wait, new.waited)
            raise MaxRetryError(_pool, url, error or ResponseError(
                f"retry wait budget of {self.max_wait:g} s exhausted"))
        headers = getattr(response, "headers", None)  # retried: the exchange is reported here
        request_log.graph_exchange(status or type(error).__name__, headers,
                                   (headers or {}).get("request-id"), method=method, url=url,
                                   retried=True)
        new.waited += wait
        log.info("Graph %s %s: %s, retry %d in %.1f s", method, path,
                 status or type(error).__name__, len(new.history), wait)
        if wait > 0:
            self.wait(wait)
        return new

    def wait(self, seconds: float) -> None:
        """Block for ``seconds`` (tests replace this to record waits)."""
        time.sleep(seconds)

    def sleep(self, response=None) -> None:
        """No-op: the wait already happened in ``increment()``."""

    def sleep_for_retry(self, response=None) -> bool:
        """No-op (redirect path): waits happen in ``increment()``."""
        return False


def build_retry(settings: GraphSettings) -> GraphRetry:
    """The retry policy of the Graph session: 429/503/504 on every method (our POSTs are
    idempotent through ``transactionId``), at most ``max_retries`` retries, connection
    failures retried at most twice, read failures once, TLS and other errors never."""
    n = settings.max_retries
    return GraphRetry(
        total=n,
        connect=min(2, n),
        read=min(1, n),
        status=n,
        other=0,
        allowed_methods=RETRY_METHODS,
        status_forcelist=RETRY_STATUSES,
        respect_retry_after_header=True,
        raise_on_status=False,
        backoff_factor=1.0,
        backoff_jitter=1.0,
        backoff_max=min(60.0, max(settings.max_retry_wait, 0.0)),
        max_wait=settings.max_retry_wait,
    )


def build_session(settings: GraphSettings, user_agent: str) -> tuple[requests.Session,
                                                                     GraphRetry]:
    """A requests session for Graph: TLS verified against ``ca_file`` or the system store,
    ``GraphRetry`` mounted, a connection pool large enough for several mailboxes' worth of
    concurrent requests (32). Returns ``(session, retry)``."""
    session = requests.Session()
    session.verify = settings.ca_file or True
    session.headers["User-Agent"] = user_agent
    session.headers["Accept"] = "application/json"
    retry = build_retry(settings)
    pool = max(32, 4 * settings.max_concurrency)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, retry


class MailboxLimiter:
    """At most ``limit`` requests in flight per mailbox, shared by all threads.

    A slot is held for a whole call, retries' waits included: Outlook counts concurrent
    requests per mailbox ("MailboxConcurrency") and answers 429 while the mailbox is busy;
    giving the slot away while waiting out a 429 would let other threads fire more requests
    into the throttled mailbox. ``slots(mailbox, n)`` takes n slots at once (a ``$batch``
    makes Outlook run up to 4 of its requests in parallel); acquiring them atomically avoids
    two batches each holding half the slots and waiting for the rest. Mailbox names are
    compared case-insensitively; ``None`` (calls not about one mailbox) shares one pool.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cond = threading.Condition()
        self._in_use: dict[str, int] = {}

    @contextmanager
    def slots(self, mailbox: str | None, n: int = 1) -> Iterator[None]:
        """Hold ``n`` (clamped to 1..limit) slots of ``mailbox`` for the ``with`` body."""
        key = (mailbox or "").casefold()
        n = max(1, min(n, self.limit))
        with self._cond:
            while self._in_use.get(key, 0) + n > self.limit:
                self._cond.wait()
            self._in_use[key] = self._in_use.get(key, 0) + n
        try:
            yield
        finally:
            with self._cond:
                left = self._in_use[key] - n
                if left:
                    self._in_use[key] = left
                else:
                    del self._in_use[key]
                self._cond.notify_all()
