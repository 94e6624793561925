"""CalDAV paths: ``/<mailbox address>/<calendar>/<resource>.ics``.

A mailbox's default calendar is ``calendar``. Other calendars are named from their Graph id,
which does not change when the calendar is renamed in Outlook (ids are immutable with
``Prefer: IdType="ImmutableId"``), so a client's URL keeps working after a rename.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DEFAULT_CALENDAR = "calendar"


@dataclass(frozen=True)
class Target:
    """A parsed, sanitized Radicale path (no leading or trailing slash).

    ``mailbox`` is lower-case or ``None`` for the root; ``calendar`` and ``href`` are ``None``
    when the path stops above them."""

    mailbox: str | None
    calendar: str | None
    href: str | None


def parse(path: str) -> Target | None:
    """Split a sanitized path; ``None`` if it is deeper than a resource."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) > 3:
        return None
    parts += [None] * (3 - len(parts))
    mailbox, calendar, href = parts
    return Target(mailbox.lower() if mailbox else None, calendar, href)


def calendar_name(calendar: dict) -> str:
    """Collection name for a Graph calendar: ``calendar`` for the default one, else a name
    derived from its immutable id (``c-`` and 16 hex digits of its SHA-256)."""
    if calendar.get("isDefaultCalendar"):
        return DEFAULT_CALENDAR
    return "c-" + hashlib.sha256(calendar["id"].encode()).hexdigest()[:16]


def default_href(uid: str, event_id: str) -> str:
    """Resource name for an event created outside the gateway (no kept href): a name safe in
    URLs, derived from the event's UID, stable as long as the event exists."""
    safe = "".join(c if c.isalnum() or c in "-_." else "" for c in uid)
    if not safe or len(safe) > 120:
        safe = hashlib.sha256((uid or event_id).encode()).hexdigest()[:40]
    return f"{safe}.ics"
