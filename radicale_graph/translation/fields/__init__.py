"""The mapping table: one row (:class:`.base.Field`) per group of iCalendar properties and
the Graph ``event`` properties that carry them, each row in both directions, in the order
the properties are rendered (docs/mapping.md lists the same rows with their modules).

Everything that walks the properties of an event loops over :data:`FIELDS`:

* :func:`to_graph` (iCalendar → Graph: the body of one VEVENT),
* :func:`derive` (Graph → iCalendar: the items of one event),
* :func:`canonical` (the Graph value behind a kept group, fingerprinted by ``kept``),
* :func:`revert_body`, :func:`holds` and :func:`redundant` (an exception against its
  occurrence: the storage's PATCH that makes it a plain occurrence again, whether an
  exception already holds a body, and whether it differs from its occurrence at all),
* :data:`GRAPH_FIELDS` (the ``$select`` of every read).

Sources: RFC 5545 section 3.8 (properties); Graph resources/event.md, api/event-update.md.
"""

from __future__ import annotations

from ..occurrences import key_instant, original_start
from .base import Context, Field, Rendering
from .categories import CATEGORIES_ROW
from .identity import IDENTITY
from .location import LOCATION_ROW
from .occurrences import EXDATE, RECURRENCE_ID
from .online import ONLINE
from .people import PEOPLE
from .recurrence import RRULE
from .reminders import VALARM
from .status import CLASS, COUNTER, PRIORITY, SHOWAS, STATUS
from .text import TEXT
from .times import IS_ALL_DAY, TIMES, at_occurrence, occurrence_times

__all__ = ["FIELDS", "GRAPH_FIELDS", "OCCURRENCE_FIELDS", "Context", "Field", "Rendering",
           "canonical", "derive", "holds", "redundant", "revert_body", "to_graph"]

FIELDS: tuple[Field, ...] = (
    IDENTITY,
    TIMES,
    RECURRENCE_ID,
    TEXT,
    LOCATION_ROW,
    PEOPLE,
    CLASS,
    SHOWAS,
    PRIORITY,
    CATEGORIES_ROW,
    STATUS,
    COUNTER,
    ONLINE,
    RRULE,
    EXDATE,
    VALARM,
)

# The event properties the translation reads (the storage plugin $selects exactly these).
GRAPH_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(n for row in FIELDS for n in row.graph))
# Graph properties one occurrence of a series holds, which an exception can change.
OCCURRENCE_FIELDS: tuple[str, ...] = tuple(n for row in FIELDS for n in row.occurrence)

_BY_GROUP = {group: row for row in FIELDS for group in row.groups}
_BY_GRAPH = {name: row for row in FIELDS for name in row.graph}


def to_graph(parts) -> dict:
    """The Graph ``event`` body of one VEVENT read as ``events.EventParts`` (no recurrence,
    no extended properties). Every mapped field is written, so a PATCH also clears what the
    client removed. Raises ``UnsupportedObject`` from the rows (PRIORITY, ATTENDEE, ...)."""
    body: dict = {}
    for row in FIELDS:
        if row.to_graph is not None:
            row.to_graph(parts, body)
    return body


def derive(event: dict, ctx: Context, master: dict | None = None):
    """The VEVENT items Graph's values give for ``event`` (a single event, series master or,
    with ``master``, an exception of that series), and its (start, end) instants (aware,
    UTC)."""
    out = Rendering()
    for row in FIELDS:
        if row.to_ical is not None:
            row.to_ical(event, ctx, master, out)
    return out, out.start_at, out.end_at


def canonical(group: str, event: dict):
    """The Graph value behind an item group (``lines.group_of``), in a form equal for a
    body the gateway wrote and the event Graph returns for it; None for groups no row maps."""
    row = _BY_GROUP.get("ATTENDEE:" if group.startswith("ATTENDEE:") else group)
    if row is None or row.canonical is None:
        return None
    return row.canonical(group, event)


def same(name: str, event: dict):
    """A Graph property of an event in comparable form (by its row)."""
    row = _BY_GRAPH.get(name)
    if row is None:
        value = event.get(name)
        return value.lower() if isinstance(value, str) else value
    return row.same(name, event)


def _empty(value) -> bool:
    return value in (None, [], "", {})


def holds(current: dict | None, body: dict) -> bool:
    """Whether a Graph event (``current``, as Graph returned it) already holds every value
    of the request ``body``, so that no PATCH is needed. Each property is compared by its
    row (``start``/``end`` by instant, ``body`` by content, attendees by address, type and
    response); an empty value matches an absent one."""
    if current is None:
        return False
    for name, value in body.items():
        row = _BY_GRAPH.get(name)
        if row is not None and row.holds is not None:
            if not row.holds(name, current, body):
                return False
        elif row is not None:
            have, want = same(name, current), same(name, body)
            if have != want and not (_empty(current.get(name)) and _empty(value)):
                return False
        else:
            have = current.get(name)
            if have != value and not (_empty(have) and _empty(value)):
                return False
    return True


def revert_body(master: dict, key: str, zone_name: str, all_day: bool) -> dict:
    """The PATCH body that makes the exception at occurrence ``key`` a plain occurrence of
    the series whose master body is ``master`` again: every occurrence property of the
    master (:data:`OCCURRENCE_FIELDS`) and the occurrence's own ``start``/``end`` in
    ``zone_name`` (IANA)."""
    body = {k: master[k] for k in OCCURRENCE_FIELDS if k in master}
    body.update(occurrence_times(master, key, zone_name, all_day, key_instant(key)))
    return body


def redundant(exception: dict, master: dict) -> bool:
    """True when a Graph exception holds exactly what its occurrence would (Graph keeps an
    occurrence an exception once it was changed, even when changed back): RFC 5545 needs no
    override for it."""
    if not at_occurrence(exception, master, original_start(exception)):
        return False
    for name in OCCURRENCE_FIELDS:
        if name in exception and name in master and same(name, exception) != same(name,
                                                                                 master):
            return False
    return True


__all__ += ["IS_ALL_DAY", "same"]
