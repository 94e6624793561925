"""Room and calendar feeds for displays, served by the gateway's application under ``/.feeds/``.

* ``GET /.feeds/<token>.ics``: the calendar's events in the feed's window as one VCALENDAR
  (``text/calendar; charset=utf-8``; body: :mod:`.feed_render`). No CalDAV login: the token
  (:mod:`radicale_graph.storage.feed_tokens`) is the secret. ``HEAD`` answers the same
  headers without a body. An unknown, malformed or revoked token, and a calendar Graph no
  longer lists, answer 404; other methods 405 (``Allow: GET, HEAD``).
* ``ETag``: a strong validator, the quoted first 32 hex digits of the body's SHA-256 (RFC 7232
  section 2.3). ``If-None-Match`` with that ETag (or ``*``; weak comparison, section 3.2)
  answers ``304 Not Modified`` with the ETag and Cache-Control and no body (section 4.1).
  ``Cache-Control: max-age=<refresh_interval>, private`` (RFC 9111 section 5.2.2: seconds; the
  URL holds a secret, so shared caches must not keep it).
* **Cost:** the calendar is read through the app-only token with the same cache, loader and
  listing lock as CalDAV clients (``Storage.loader_for``; ``CalendarCollection._refresh``), so
  however many displays poll, a calendar costs at most one Graph round (one
  ``calendarView/delta`` round, see :mod:`radicale_graph.storage.loader`) per
  ``refresh_interval`` seconds: the first poll after the cache expired refreshes it while the
  others wait on the listing lock and then find it fresh. The body is rendered once per change
  of the calendar's events, of the feed's settings or of the day (kept per feed), under a
  per-feed lock, so concurrent polls render it once.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from ..storage import errors
from ..storage.collection import CalendarCollection
from ..storage.feed_tokens import Feed, FeedTokens
from . import feed_render

logger = logging.getLogger("radicale_graph.feeds")

PREFIX = "/.feeds/"
SUFFIX = ".ics"
ALLOWED = "GET, HEAD"

Response = tuple[int, dict[str, str], bytes]


def body_etag(body: bytes) -> str:
    """Quoted strong ETag of a feed body (RFC 7232 section 2.3)."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def if_none_match_hits(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value matches ``etag`` (RFC 7232 section 3.2: ``*`` or a
    list of entity-tags, compared weakly, so ``W/"x"`` matches ``"x"``)."""
    header = (header or "").strip()
    if not header:
        return False
    if header == "*":
        return True
    opaque = etag[2:] if etag.startswith("W/") else etag
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == opaque:
            return True
    return False


def _text(status: int, message: str, extra: dict | None = None) -> Response:
    return status, {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}, \
        (message.strip() + "\n").encode("utf-8")


class FeedServer:
    """The ``/.feeds/`` routes over ``storage`` (a :class:`~radicale_graph.storage.storage.
    Storage` with a ``state_folder``). ``error_response(exc) -> (status, headers, body)``
    answers Graph failures (the application's, e.g. 503 with Retry-After when throttled)."""

    def __init__(self, storage, error_response, tokens: FeedTokens | None = None) -> None:
        self.storage = storage
        self.error_response = error_response
        self.tokens = tokens or FeedTokens(storage.options.state_folder)
        self._lock = threading.Lock()
        self._feed_locks: dict[str, threading.Lock] = {}
        # feed id -> (key the body was rendered for, body, ETag)
        self._bodies: dict[str, tuple[tuple, bytes, str]] = {}

    # -- dispatch ----------------------------------------------------------------------
    def handle(self, environ) -> Response:
        """Answer one request whose path starts with ``/.feeds``."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "")
        name = path[len(PREFIX):] if path.startswith(PREFIX) else ""
        if not name.endswith(SUFFIX) or "/" in name:
            return _text(404, "no such feed")
        if method not in ("GET", "HEAD"):
            return _text(405, "feeds are read-only: use GET or HEAD", {"Allow": ALLOWED})
        feed = self.tokens.find(name[:-len(SUFFIX)])
        if feed is None:
            return _text(404, "no such feed (unknown or revoked token)")
        try:
            status, headers, body = self._serve(feed, environ)
        except Exception as exc:
            logger.warning("feed %s (%s): %s", feed.id, feed.calendar, exc)
            return self.error_response(exc)
        finally:
            errors.clear()
        self.tokens.touch(feed)
        return status, headers, body

    def _serve(self, feed: Feed, environ) -> Response:
        info = self.storage.app_directory.find(feed.mailbox, feed.segment)
        if info is None:
            return _text(404, "the feed's calendar no longer exists")
        loader = self.storage.loader_for(info)
        # The CalDAV collection's own refresh: same cache, listing lock and freshness.
        CalendarCollection(self.storage, info, loader.cache, loader)._refresh()
        body, etag = self._body(feed, info, loader.cache.entries())
        options = self.storage.options
        headers = {"ETag": etag,
                   "Cache-Control": f"max-age={max(0, int(options.refresh_interval))}, private"}
        if if_none_match_hits(environ.get("HTTP_IF_NONE_MATCH", ""), etag):
            # No body; Content-Length as the 200 would have it (RFC 9110 section 8.6).
            return 304, dict(headers, **{"Content-Length": str(len(body))}), b""
        headers["Content-Type"] = "text/calendar; charset=utf-8"
        return 200, headers, body

    # -- the body, rendered once per change ----------------------------------------------
    def _feed_lock(self, feed_id: str) -> threading.Lock:
        with self._lock:
            lock = self._feed_locks.get(feed_id)
            if lock is None:
                lock = self._feed_locks[feed_id] = threading.Lock()
            return lock

    def _body(self, feed: Feed, info, entries) -> tuple[bytes, str]:
        zone = self.storage.options.default_timezone
        today = feed_render.today_in(zone)
        name = feed.name or (info.owner_name if info.is_default and info.owner_name
                             else info.display_name)
        contents = hashlib.sha256()
        for href, etag in sorted((e.href, e.etag) for e in entries):
            contents.update(f"{href}\0{etag}\n".encode())
        key = (feed.settings, name, today, zone, self.storage.options.refresh_interval,
               contents.hexdigest())
        kept = self._bodies.get(feed.id)
        if kept is not None and kept[0] == key:
            return kept[1], kept[2]
        with self._feed_lock(feed.id):
            kept = self._bodies.get(feed.id)
            if kept is not None and kept[0] == key:
                return kept[1], kept[2]
            start, end = feed_render.window(today, feed.days_back, feed.days_ahead, zone)
            slack = feed_render.ALL_DAY_SLACK
            low, high = start.timestamp() - slack, end.timestamp() + slack
            texts = [e.text for e in entries
                     if e.time_range[0] < high and e.time_range[1] > low]
            body = feed_render.render(texts, start, end, expand=feed.expand,
                                      privacy=feed.privacy, name=name,
                                      refresh_seconds=self.storage.options.refresh_interval)
            etag = body_etag(body)
            self._bodies[feed.id] = (key, body, etag)
            logger.debug("feed %s rendered: %d events' resources, %d bytes", feed.id,
                         len(texts), len(body))
            return body, etag
