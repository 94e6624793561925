"""Sync tokens (RFC 6578) and ctags that survive a restart of the gateway.

Each calendar has an epoch (random, fixed when the calendar is first seen) and a revision
counter. Every refresh that changes the calendar's content bumps the revision once and stamps
the changed or deleted hrefs with it; a sync token names ``epoch`` and ``revision``, so the
changes since a token are the hrefs stamped later. The table is kept in SQLite (standard
library) in ``[storage] state_folder``; after a restart the first listing is compared with
the stored href -> etag table, so changes made in Exchange while the gateway was down are
reported to clients holding older tokens.

Tokens from another epoch, from the future, or older than the pruned history are refused
with ``ValueError``, which Radicale answers with the ``valid-sync-token`` precondition
(RFC 6578 section 3.2) and the client resyncs.
"""

from __future__ import annotations

import secrets
import threading

from .state_db import open_state_db

TOKEN_PREFIX = "http://radicale-graph.invalid/ns/sync/"

SCHEMA = """
CREATE TABLE IF NOT EXISTS calendars (
    key TEXT PRIMARY KEY, epoch TEXT NOT NULL, revision INTEGER NOT NULL,
    pruned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS items (
    key TEXT NOT NULL, href TEXT NOT NULL, etag TEXT, revision INTEGER NOT NULL,
    PRIMARY KEY (key, href));
"""


class SyncState:
    """Revision history of every calendar, in SQLite at ``path`` (``None``: in memory, for
    tests and the demo). Thread-safe."""

    def __init__(self, path: str | None) -> None:
        self._db = open_state_db(path, SCHEMA)
        self._lock = threading.Lock()

    def _calendar(self, key: str) -> tuple[str, int, int]:
        row = self._db.execute("SELECT epoch, revision, pruned FROM calendars WHERE key=?",
                               (key,)).fetchone()
        if row is None:
            row = (secrets.token_hex(6), 0, 0)
            self._db.execute("INSERT INTO calendars VALUES (?, ?, ?, ?)", (key, *row))
        return row

    def revision(self, key: str) -> tuple[str, int]:
        """(epoch, revision) of calendar ``key``."""
        with self._lock:
            epoch, revision, _ = self._calendar(key)
            return epoch, revision

    def token(self, key: str) -> str:
        """The current sync token of calendar ``key`` (a URI, RFC 6578 section 6.2)."""
        epoch, revision = self.revision(key)
        return f"{TOKEN_PREFIX}{epoch}-{revision}"

    def record(self, key: str, changed: dict[str, str], removed: set[str] | frozenset = (),
               complete: bool = False) -> int:
        """Stamp changes; returns the revision after them.

        ``changed``: href -> etag of items now present (unchanged etags are ignored);
        ``removed``: hrefs gone; ``complete``: ``changed`` is the whole calendar, so stored
        hrefs missing from it are gone too. One revision is added if anything changed.
        """
        with self._lock:
            epoch, revision, _ = self._calendar(key)
            stored = dict(self._db.execute(
                "SELECT href, etag FROM items WHERE key=?", (key,)).fetchall())
            updates = [(href, etag) for href, etag in changed.items()
                       if stored.get(href, "\0") != etag]
            gone = {h for h in removed if stored.get(h) is not None}
            if complete:
                gone |= {h for h, etag in stored.items() if etag is not None
                         and h not in changed}
            if not updates and not gone:
                return revision
            revision += 1
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?)",
                    [(key, href, etag, revision) for href, etag in updates]
                    + [(key, href, None, revision) for href in gone])
                self._db.execute("UPDATE calendars SET revision=? WHERE key=?", (revision, key))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return revision

    def changes_since(self, key: str, token: str) -> list[str]:
        """Hrefs changed or deleted after ``token``. Raises ``ValueError`` for a token this
        calendar did not issue (other epoch, unknown revision, pruned history)."""
        if not token.startswith(TOKEN_PREFIX):
            raise ValueError(f"sync token {token!r} was not issued by this gateway")
        epoch_text, _, revision_text = token[len(TOKEN_PREFIX):].rpartition("-")
        try:
            old = int(revision_text)
        except ValueError:
            raise ValueError(f"malformed sync token {token!r}") from None
        with self._lock:
            epoch, revision, pruned = self._calendar(key)
            if epoch_text != epoch or old > revision or old < pruned:
                raise ValueError(f"sync token {token!r} is unknown or expired")
            rows = self._db.execute(
                "SELECT href FROM items WHERE key=? AND revision>? ORDER BY href",
                (key, old)).fetchall()
        return [href for (href,) in rows]

    def close(self) -> None:
        self._db.close()
