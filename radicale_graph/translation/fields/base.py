"""The shape of one row of the mapping table (:data:`.FIELDS`), and what rows are given.

A row maps one group of iCalendar properties to the Graph ``event`` properties that carry
them (resources/event.md), in both directions, in the spirit of evolution-ews's M365 mapping
table:

* ``to_graph(parts, body)``: adds the row's Graph properties to a request body from
  ``parts``, the client's VEVENT as read by ``events.EventParts`` (its ``vevent``, times,
  people);
* ``to_ical(event, ctx, master, out)``: adds the row's iCalendar items to ``out`` from a Graph
  ``event`` (with ``master`` when the event is an exception of that series);
* ``canonical(group, event)``: the Graph value behind one of the row's kept groups (see
  ``lines.group_of``), equal for a body the gateway wrote and for what Graph returns for it:
  the kept fingerprint (``kept.fingerprint``) is a digest of it;
* ``occurrence``: the Graph properties of the row one occurrence of a series holds (an
  exception can change them, api/event-update.md), and ``same(name, event)`` the comparable
  form of one of them; ``holds(name, current, wanted)`` whether an event already holds the
  value of a request body (default: equal ``same`` forms, empty values alike).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import lines


@dataclass(frozen=True)
class Context:
    """How one resource is rendered: its UID, the IANA zone of its times, room mailboxes
    (lower-case addresses) and the mailbox owner's address (lower case, or None)."""

    uid: str
    zone: str
    rooms: frozenset[str] = frozenset()
    owner: str | None = None


class Rendering(list):
    """The ``(group, text)`` items rendered for one Graph event (see :mod:`..lines`), and its
    times as the times row found them: ``start_value`` (DTSTART: a date, or aware in the
    context's zone) and ``start_at``/``end_at`` (aware, UTC)."""

    start_value: dt.datetime | dt.date | None = None
    start_at: dt.datetime | None = None
    end_at: dt.datetime | None = None

    def add(self, name: str, value, params: dict | None = None,
            group: str | None = None) -> None:
        """Append one property line (``group`` defaults to the property's own group)."""
        self.append((group or lines.group_of(name), lines.line(name, value, params)))


def plain(name: str, event: dict):
    """The comparable form of a scalar Graph property (enum strings case-folded)."""
    value = event.get(name)
    return value.lower() if isinstance(value, str) else value


@dataclass(frozen=True)
class Field:
    """One row of the mapping table. ``name``: the row as docs/mapping.md names it.
    ``graph``: the Graph ``event`` properties it reads (the storage ``$select``s them).
    ``groups``: its kept groups (``lines.GROUPS`` values; ``ATTENDEE:`` stands for every
    ``ATTENDEE:<address>``). See the module docstring for the callables."""

    name: str
    graph: tuple[str, ...]
    groups: tuple[str, ...] = ()
    to_graph: Callable[[Any, dict], None] | None = None
    to_ical: Callable[[dict, Context, dict | None, Rendering], None] | None = None
    canonical: Callable[[str, dict], Any] | None = None
    occurrence: tuple[str, ...] = ()
    same: Callable[[str, dict], Any] = plain
    holds: Callable[[str, dict, dict], bool] | None = None
