"""What the gateway keeps about calendars that Graph cannot hold, in SQLite (``state_folder``).

* **Path segments** a client chose with MKCALENDAR (RFC 4791 section 5.3.1: the calendar is
  created at the Request-URI): segment -> Graph calendar id, so ``/<mailbox>/<segment>/``
  keeps naming the calendar Graph made (Graph names it by an id the client never chose).
* **The colour as the client wrote it**: Graph's ``color`` is an enumeration of Outlook's
  palette (resources/calendar.md, ``calendarColor``; ``hexColor`` is read-only), so the
  gateway writes the nearest value and keeps the client's string with the value written. The
  client's string is shown while Graph still holds that value (:func:`colors.shown`).
* **Dead properties** (RFC 4918 section 4: properties a client sets that the server only
  stores), e.g. Apple's ``calendar-order`` or ``C:calendar-description``, which Graph has no
  property for.

Keys are the mailbox (lower-case) and the calendar's immutable id, so a rename in Outlook
changes nothing here.
"""

from __future__ import annotations

import json
import threading

from .state_db import open_state_db

# Collection properties Graph itself holds (name, colour) or that are fixed (tag, components):
# everything else a client sets is kept by the gateway (dead properties, RFC 4918 section 4).
KEPT_BY_GRAPH = frozenset({"tag", "D:displayname", "ICAL:calendar-color",
                           "C:supported-calendar-component-set"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    mailbox TEXT NOT NULL, segment TEXT NOT NULL, calendar_id TEXT NOT NULL,
    PRIMARY KEY (mailbox, segment));
CREATE TABLE IF NOT EXISTS properties (
    mailbox TEXT NOT NULL, calendar_id TEXT NOT NULL, props TEXT NOT NULL,
    color TEXT NOT NULL DEFAULT '', color_value TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mailbox, calendar_id));
"""


class CalendarProps:
    """Segments, client colours and dead properties of calendars, in SQLite at ``path``
    (``None``: in memory). Thread-safe."""

    def __init__(self, path: str | None) -> None:
        self._db = open_state_db(path, SCHEMA)
        self._lock = threading.Lock()

    # -- path segments ------------------------------------------------------------------
    def segments(self, mailbox: str) -> dict[str, str]:
        """Segment -> calendar id of the calendars ``mailbox``'s clients created."""
        with self._lock:
            rows = self._db.execute("SELECT segment, calendar_id FROM segments WHERE mailbox=?",
                                    (mailbox,)).fetchall()
        return dict(rows)

    def set_segment(self, mailbox: str, segment: str, calendar_id: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO segments VALUES (?, ?, ?)",
                             (mailbox, segment, calendar_id))

    # -- properties ---------------------------------------------------------------------
    def get(self, mailbox: str, calendar_id: str) -> tuple[dict[str, str], str, str]:
        """(dead properties, the client's colour, the ``calendarColor`` written for it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT props, color, color_value FROM properties WHERE mailbox=? AND "
                "calendar_id=?", (mailbox, calendar_id)).fetchone()
        if row is None:
            return {}, "", ""
        return json.loads(row[0]), row[1], row[2]

    def put(self, mailbox: str, calendar_id: str, props: dict[str, str], color: str,
            color_value: str) -> None:
        """Replace what is kept for one calendar."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO properties VALUES (?, ?, ?, ?, ?)",
                             (mailbox, calendar_id, json.dumps(props, sort_keys=True), color,
                              color_value))

    def forget(self, mailbox: str, calendar_id: str) -> None:
        """Drop everything kept for a deleted calendar."""
        with self._lock:
            self._db.execute("DELETE FROM segments WHERE mailbox=? AND calendar_id=?",
                             (mailbox, calendar_id))
            self._db.execute("DELETE FROM properties WHERE mailbox=? AND calendar_id=?",
                             (mailbox, calendar_id))

    def close(self) -> None:
        self._db.close()
