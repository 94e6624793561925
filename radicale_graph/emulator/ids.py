"""Identifiers in the shapes Exchange gives them through Graph.

- Item and folder ids: URL-safe base64 of an Exchange-like entry id, starting ``AAMkA`` as real
  immutable ids do (concepts/outlook-immutable-id.md).
- Occurrence ids are derived from the series master's id and the occurrence's original start
  (UTC), so the same occurrence always has the same id; :func:`parse_occurrence_id` inverts it.
- ``changeKey``: base64 of a 16-byte replica GUID and a 6-byte change number, like Exchange's.
- ``iCalUId``: Exchange's GlobalObjectId in hex; occurrences carry their date in bytes 16-19.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import os
import struct
import threading

_PREFIX = b"\x00\x03\x24\x00"  # base64 "AAMkA"
_ITEM = b"\x46\x00"
_FOLDER = b"\x2e\x00"
_OCCURRENCE = b"\x07\x01"
_ICAL_CLASS = "040000008200E00074C5B7101A82E008"
_counter = itertools.count(0x10000)
_lock = threading.Lock()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mailbox_key(mailbox_guid: str) -> bytes:
    """16 bytes standing for a mailbox inside its ids."""
    return hashlib.md5(mailbox_guid.encode()).digest()


def new_item_id(mailbox_guid: str) -> str:
    """A new event id for the mailbox: random, URL-safe base64, starting ``AAMkA``."""
    return _b64(_PREFIX + mailbox_key(mailbox_guid) + _ITEM + os.urandom(40))


def new_folder_id(mailbox_guid: str, seed: str | None = None) -> str:
    """A calendar (folder) id; deterministic when ``seed`` is given (default calendars)."""
    tail = hashlib.sha256(seed.encode()).digest()[:24] if seed else os.urandom(24)
    return _b64(_PREFIX + mailbox_key(mailbox_guid) + _FOLDER + tail)


def occurrence_id(master_id: str, original_start: dt.datetime) -> str:
    """The id of the occurrence of ``master_id`` whose original start is ``original_start``."""
    seconds = int(original_start.astimezone(dt.UTC).timestamp())
    return _b64(_PREFIX + _OCCURRENCE + _unb64(master_id) + struct.pack(">q", seconds))


def parse_occurrence_id(value: str) -> tuple[str, dt.datetime] | None:
    """(master id, original start UTC) for an occurrence id, or None for any other id."""
    try:
        raw = _unb64(value)
    except (ValueError, TypeError):
        return None
    head = _PREFIX + _OCCURRENCE
    if not raw.startswith(head) or len(raw) < len(head) + 9:
        return None
    master = raw[len(head) : -8]
    (seconds,) = struct.unpack(">q", raw[-8:])
    try:
        start = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return _b64(master), start


def new_change_key(mailbox_guid: str) -> str:
    """A fresh changeKey (never repeats within a process)."""
    with _lock:
        number = next(_counter)
    return base64.b64encode(mailbox_key(mailbox_guid) + number.to_bytes(6, "big")).decode()


def new_ical_uid() -> str:
    """A series-level iCalUId (Exchange GlobalObjectId, date bytes zero)."""
    stamp = os.urandom(8).hex().upper()
    return f"{_ICAL_CLASS}00000000{stamp}000000000000000010000000{os.urandom(16).hex().upper()}"


def occurrence_ical_uid(master_uid: str, original_local_date: dt.date) -> str:
    """The iCalUId of one occurrence: the master's with the instance date in bytes 16-19."""
    if not master_uid.startswith(_ICAL_CLASS) or len(master_uid) < 40:
        return master_uid
    date_hex = struct.pack(
        ">HBB", original_local_date.year, original_local_date.month, original_local_date.day
    ).hex().upper()
    return master_uid[:32] + date_hex + master_uid[40:]
