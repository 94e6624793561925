"""The SQLite databases the gateway keeps in ``state_folder`` (sync state, calendar
properties): one way to open them."""

from __future__ import annotations

import os
import sqlite3


def open_state_db(path: str | None, schema: str) -> sqlite3.Connection:
    """A connection to the database at ``path`` (``None``: in memory, for tests and the demo)
    with ``schema`` applied (``CREATE ... IF NOT EXISTS`` statements). Autocommit
    (``isolation_level=None``), WAL journal on disk, usable from any thread: callers hold
    their own lock. Raises ``sqlite3.Error`` or ``OSError`` when the folder or file cannot
    be used."""
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
    db.executescript(schema)
    return db
