"""The room and calendar feeds' secret tokens and settings (``feeds.sqlite3`` in
``state_folder``).

A feed is a read-only iCalendar URL ``<base>/.feeds/<token>.ics`` (:mod:`radicale_graph.web.
feeds`). ``token`` is 32 random bytes (``secrets.token_urlsafe(32)``, 43 characters); only its
SHA-256 is stored (a 256-bit random secret needs no salt or slow hash: a guess costs 2**256
tries whatever the hash's speed). The row also holds a short public ``id`` (8 hex characters,
for ``feed list`` and ``feed revoke``), the calendar (mailbox and path segment, as in the CalDAV
path ``/<mailbox>/<segment>/``) and the feed's settings; times are Unix seconds (UTC). The
token is shown once, when the feed is created; a revoked feed answers 404 from the next
request on (also across processes: SQLite is read on every request).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

FILE_NAME = "feeds.sqlite3"
LAST_USED_RESOLUTION = 60.0  # seconds: last use is written at most once a minute per feed
#: Privacy settings: every detail but private events' (``full``), subject and times only
#: (``subject``), busy blocks only (``busy``); see :mod:`radicale_graph.web.feed_render`.
PRIVACY = ("full", "subject", "busy")
MAX_DAYS = 3660  # days back or ahead: ten years
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    mailbox TEXT NOT NULL,
    segment TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    days_back INTEGER NOT NULL,
    days_ahead INTEGER NOT NULL,
    expand INTEGER NOT NULL,
    privacy TEXT NOT NULL,
    created REAL NOT NULL,
    last_used REAL,
    revoked REAL
);
"""


@dataclass(frozen=True)
class Feed:
    """One feed's settings and metadata (never the token). ``days_back``/``days_ahead``:
    whole days before and after today in the window; ``expand``: recurring series become
    plain occurrences; ``privacy``: one of :data:`PRIVACY`; ``name``: the calendar name the
    feed announces ("" = the calendar's own). Times: Unix seconds or None."""

    id: str
    mailbox: str
    segment: str
    name: str
    days_back: int
    days_ahead: int
    expand: bool
    privacy: str
    created: float
    last_used: float | None = None
    revoked: float | None = None

    @property
    def calendar(self) -> str:
        """``<mailbox>/<segment>``."""
        return f"{self.mailbox}/{self.segment}"

    @property
    def settings(self) -> tuple:
        """What the feed's body depends on besides the calendar and the date."""
        return (self.mailbox, self.segment, self.name, self.days_back, self.days_ahead,
                self.expand, self.privacy)


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token (what is stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_settings(days_back: int, days_ahead: int, privacy: str) -> None:
    """``ValueError`` (one line naming the setting) for settings a feed cannot have."""
    for label, value in (("days back", days_back), ("days ahead", days_ahead)):
        if not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            raise ValueError(f"{label} must be a whole number of days from 0 to {MAX_DAYS}, "
                             f"got {value!r}")
    if privacy not in PRIVACY:
        raise ValueError(f"privacy must be one of {', '.join(PRIVACY)}, got {privacy!r}")


class FeedTokens:
    """The feeds in ``folder``/feeds.sqlite3 (created on first use).

    Thread-safe (one connection behind a lock); several processes may share the file (the
    CLI creates and revokes while the gateway serves). Errors: sqlite3's, ``OSError``."""

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, FILE_NAME)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, mailbox: str, segment: str, *, days_back: int = 1, days_ahead: int = 14,
               expand: bool = False, privacy: str = "full", name: str = "") -> tuple[Feed, str]:
        """A new feed of ``/<mailbox>/<segment>/``: returns (its settings, the token in clear,
        to show once). ``ValueError`` for invalid settings (:func:`check_settings`)."""
        check_settings(days_back, days_ahead, privacy)
        mailbox, segment = mailbox.strip().lower(), segment.strip().strip("/")
        if not mailbox or "/" in mailbox or not segment or "/" in segment:
            raise ValueError(f"the calendar must be <mailbox>/<segment>, got "
                             f"{mailbox}/{segment!r}")
        token = secrets.token_urlsafe(32)
        feed = Feed(id=secrets.token_hex(4), mailbox=mailbox, segment=segment,
                    name=name.strip()[:200], days_back=days_back, days_ahead=days_ahead,
                    expand=bool(expand), privacy=privacy, created=time.time())
        with self._lock:
            self._db.execute(
                "INSERT INTO feeds (id, token_hash, mailbox, segment, name, days_back, "
                "days_ahead, expand, privacy, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (feed.id, token_hash(token), feed.mailbox, feed.segment, feed.name,
                 feed.days_back, feed.days_ahead, int(feed.expand), feed.privacy,
                 feed.created))
        return feed, token

    def find(self, token: str) -> Feed | None:
        """The live (not revoked) feed of ``token``, or None."""
        if not TOKEN_PATTERN.match(token or ""):
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM feeds WHERE token_hash = ? AND revoked IS "
                                   "NULL", (token_hash(token),)).fetchone()
        return _feed(row) if row is not None else None

    def touch(self, feed: Feed) -> None:
        """Record a use of ``feed`` (at most once per :data:`LAST_USED_RESOLUTION`)."""
        now = time.time()
        if feed.last_used is not None and now - feed.last_used < LAST_USED_RESOLUTION:
            return
        with self._lock:
            self._db.execute("UPDATE feeds SET last_used = ? WHERE id = ? AND (last_used IS "
                             "NULL OR last_used < ?)", (now, feed.id, now - LAST_USED_RESOLUTION))

    def list(self) -> list[Feed]:
        """Every feed (revoked ones too), newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM feeds ORDER BY created DESC").fetchall()
        return [_feed(r) for r in rows]

    def revoke(self, feed_id: str) -> bool:
        """Revoke the feed ``feed_id``; returns whether a live one was revoked."""
        with self._lock:
            cur = self._db.execute("UPDATE feeds SET revoked = ? WHERE id = ? AND revoked IS "
                                   "NULL", (time.time(), feed_id.strip().lower()))
            return cur.rowcount > 0


def _feed(row: sqlite3.Row) -> Feed:
    values = {k: row[k] for k in row.keys() if k != "token_hash"}
    values["expand"] = bool(values["expand"])
    return Feed(**values)
