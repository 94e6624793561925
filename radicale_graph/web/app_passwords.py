"""App passwords: what CalDAV clients send instead of a Microsoft password.

A password is ``<id>-<secret>``: ``id`` is 8 hex characters that name the row (not secret),
``secret`` 32 characters of ``secrets.token_urlsafe``. Only an Argon2id hash of the whole
password (argon2-cffi's ``PasswordHasher``, salted per password) is stored, in SQLite
(``app-passwords.sqlite3`` in ``state_folder``), with the person's UPN, a name, and the
creation, last use and revocation times (Unix seconds, UTC). The password is shown once.
"""

from __future__ import annotations

import functools
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

FILE_NAME = "app-passwords.sqlite3"
LAST_USED_RESOLUTION = 60.0  # seconds: last use is written at most once a minute per password

_SCHEMA = """
CREATE TABLE IF NOT EXISTS app_passwords (
    id TEXT PRIMARY KEY,
    upn TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    created REAL NOT NULL,
    last_used REAL,
    revoked REAL
);
CREATE INDEX IF NOT EXISTS app_passwords_upn ON app_passwords (upn);
"""


@dataclass(frozen=True)
class AppPassword:
    """One app password's metadata (never the password): times are Unix seconds or None."""

    id: str
    upn: str
    name: str
    created: float
    last_used: float | None
    revoked: float | None


class AppPasswords:
    """The app passwords in ``folder``/app-passwords.sqlite3 (created on first use).

    Thread-safe; several processes may share the file (SQLite locking). Errors: sqlite3's."""

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, FILE_NAME)
        self._hasher = PasswordHasher()
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def create(self, upn: str, name: str) -> tuple[AppPassword, str]:
        """A new app password for ``upn``: returns (metadata, the password in clear, to show
        once)."""
        upn = upn.lower()
        key_id = secrets.token_hex(4)
        password = f"{key_id}-{secrets.token_urlsafe(24)}"
        now = time.time()
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO app_passwords (id, upn, name, hash, created) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (key_id, upn, name.strip()[:100] or "app password",
                        self._hasher.hash(password), now))
        return AppPassword(key_id, upn, name, now, None, None), password

    def verify(self, upn: str, password: str) -> bool:
        """Whether ``password`` is a live (not revoked) app password of ``upn``; records the
        last use. Constant work per attempt: one Argon2 verification."""
        key_id = password.split("-", 1)[0] if "-" in password else ""
        with self._connect() as db:
            row = db.execute("SELECT upn, hash, last_used, revoked FROM app_passwords "
                             "WHERE id = ?", (key_id,)).fetchone()
        digest = row["hash"] if row else _dummy_hash()
        try:
            ok = self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or row["revoked"] is not None \
                or row["upn"] != upn.lower():
            return False
        now = time.time()
        if row["last_used"] is None or now - row["last_used"] > LAST_USED_RESOLUTION:
            with self._lock, self._connect() as db:
                db.execute("UPDATE app_passwords SET last_used = ? WHERE id = ?", (now, key_id))
        return True

    def list(self, upn: str) -> list[AppPassword]:
        """The app passwords of ``upn`` (revoked ones too), newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT id, upn, name, created, last_used, revoked FROM "
                              "app_passwords WHERE upn = ? ORDER BY created DESC",
                              (upn.lower(),)).fetchall()
        return [AppPassword(**dict(r)) for r in rows]

    def revoke(self, upn: str, key_id: str) -> bool:
        """Revoke one app password of ``upn``; effective for the next request. Returns
        whether one was revoked."""
        with self._lock, self._connect() as db:
            cur = db.execute("UPDATE app_passwords SET revoked = ? WHERE id = ? AND upn = ? "
                             "AND revoked IS NULL", (time.time(), key_id, upn.lower()))
            return cur.rowcount > 0

    def revoke_all(self, upn: str) -> int:
        """Revoke every app password of ``upn``; returns how many."""
        with self._lock, self._connect() as db:
            cur = db.execute("UPDATE app_passwords SET revoked = ? WHERE upn = ? AND "
                             "revoked IS NULL", (time.time(), upn.lower()))
            return cur.rowcount


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the id is unknown, so a wrong id costs as much as a wrong
    secret. Made on first use, not at import: an Argon2 hash takes 64 MiB for a moment
    (argon2-cffi's default memory cost), which a gateway without app passwords never needs."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))
