"""UID, DTSTAMP, LAST-MODIFIED, CREATED ⇄ the event's identity and revision times.

RFC 5545 3.8.4.7 (UID), 3.8.7.1-3 (CREATED, DTSTAMP, LAST-MODIFIED); Graph resources/event.md
(``iCalUId``, ``createdDateTime``, ``lastModifiedDateTime``: read only). The client's UID is
written as an extended property (:mod:`..extended`), not by this row; DTSTAMP and
LAST-MODIFIED are the store's own revision time; CREATED is the client's when it sent one
(kept), else Graph's ``createdDateTime``.
"""

from __future__ import annotations

import datetime as dt

from ..timezones import UTC, parse_graph_offset_datetime
from .base import Context, Field, Rendering

ID = "id"
CHANGE_KEY = "changeKey"
ICAL_UID = "iCalUId"
CREATED_DATE_TIME = "createdDateTime"
LAST_MODIFIED_DATE_TIME = "lastModifiedDateTime"


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """UID (``ctx.uid``), DTSTAMP and LAST-MODIFIED from ``lastModifiedDateTime`` (else
    ``createdDateTime``, else the epoch), CREATED from ``createdDateTime`` (all UTC)."""
    out.add("UID", ctx.uid)
    stamp = event.get(LAST_MODIFIED_DATE_TIME) or event.get(CREATED_DATE_TIME)
    out.add("DTSTAMP", parse_graph_offset_datetime(stamp) if stamp
            else dt.datetime(1970, 1, 1, tzinfo=UTC))
    if stamp:
        out.add("LAST-MODIFIED", parse_graph_offset_datetime(stamp))
    if event.get(CREATED_DATE_TIME):
        out.add("CREATED", parse_graph_offset_datetime(event[CREATED_DATE_TIME]))


def canonical(group: str, event: dict):
    """CREATED: the client's value (or its absence) always stands: no Graph value."""
    return None


IDENTITY = Field("identity", (ID, ICAL_UID, CHANGE_KEY, CREATED_DATE_TIME,
                              LAST_MODIFIED_DATE_TIME),
                 groups=("CREATED",), to_ical=to_ical, canonical=canonical)
