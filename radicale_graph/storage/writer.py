"""Writing one CalDAV resource to Graph: the series master, then its exceptions.

Graph has no call that creates a series with exceptions (notes: "No single call creates a
series with exceptions"): the master is POSTed or PATCHed, the affected instances are looked up
once with ``/instances``, cancelled occurrences are DELETEd (EXDATE) and overridden ones
PATCHed (RECURRENCE-ID). Only the differences from what Graph already holds are written.
A failure after the first write either rolls the create back or is reported as a
:class:`PartialWrite` naming what was and was not applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from ..graph import GraphError
from ..translation.errors import UnsupportedObject
from ..translation.ical_to_graph import EventPlan, occurrence_key
from ..translation.timezones import UTC, graph_datetime, parse_graph_datetime, zone
from .cache import CachedEvent
from .graph_events import CalendarEvents

logger = logging.getLogger("radicale_graph.storage")

# Properties of a master that describe one occurrence (used to revert an exception).
OCCURRENCE_FIELDS = ("subject", "body", "location", "attendees", "sensitivity", "showAs",
                     "categories", "isReminderOn", "reminderMinutesBeforeStart")


class PartialWrite(Exception):
    """Graph accepted part of a resource's writes and refused the rest.

    ``done`` and ``failed`` describe the steps; ``cause`` is the Graph error. The message is
    meant for the CalDAV client and the admin."""

    def __init__(self, what: str, cause: GraphError) -> None:
        self.cause = cause
        super().__init__(f"{what}; Graph refused the rest: {cause}")


def transaction_id(calendar_id: str, href: str, text: str) -> str:
    """Graph ``transactionId`` for creating ``href``: the same request retried gives the same
    id, so Graph returns the event it already created instead of a duplicate."""
    digest = hashlib.sha256(f"{calendar_id}\n{href}\n{text}".encode()).hexdigest()
    return f"radicale-graph-{digest[:40]}"


def create(api: CalendarEvents, href: str, text: str, plan: EventPlan):
    """POST the event and apply its exceptions. Returns ``(master, exceptions)`` as Graph
    holds them. On a failure after the POST the new event is deleted again and
    :class:`PartialWrite` (or the Graph error, if the rollback also failed) is raised."""
    master = api.create(plan.master, transaction_id(api.calendar_id, href, text))
    if not plan.is_series or not (plan.cancelled or plan.overrides):
        return master, []
    try:
        _apply_exceptions(api, master, plan, exceptions={}, cancelled=frozenset())
        return _reread(api, master["id"])
    except GraphError as exc:
        try:
            api.delete(master["id"], operation="roll back event")
        except GraphError:
            raise PartialWrite(f"the series {plan.uid!r} was created but its exceptions were "
                               f"not all applied, and removing it again failed", exc) from exc
        raise PartialWrite(f"the series {plan.uid!r} was not stored (rolled back)", exc) from exc


def update(api: CalendarEvents, entry: CachedEvent, plan: EventPlan):
    """PATCH the master and change exactly the exceptions that differ from ``entry``.
    Returns ``(master, exceptions)``. Raises :class:`UnsupportedObject` before writing when the
    change needs what Graph cannot do (restoring a cancelled occurrence), and
    :class:`PartialWrite` when Graph refuses a step after the master was changed."""
    restored = set(entry.cancelled) - set(plan.cancelled)
    if plan.is_series and restored:
        raise UnsupportedObject("removal of EXDATE " + ", ".join(sorted(restored)),
                                "Graph cannot restore a cancelled occurrence")
    body = dict(plan.master)
    master = api.update(entry.event_id, body, entry.odata_etag)
    if not plan.is_series:
        return master, []
    if not (plan.cancelled or plan.overrides or entry.exceptions):
        return master, []
    try:
        _apply_exceptions(api, master, plan, exceptions=entry.exceptions,
                          cancelled=entry.cancelled)
    except GraphError as exc:
        raise PartialWrite(f"the series {plan.uid!r} was updated but not all of its "
                           f"exceptions", exc) from exc
    return _reread(api, master["id"])


def _reread(api: CalendarEvents, event_id: str):
    master = api.get(event_id)
    return master, list(master.get("exceptionOccurrences") or [])


def _key_instant(key: str) -> dt.datetime:
    if "T" in key:
        return dt.datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return dt.datetime.combine(dt.date.fromisoformat(key), dt.time(), tzinfo=UTC)


def _apply_exceptions(api: CalendarEvents, master: dict, plan: EventPlan,
                      exceptions: dict[str, str], cancelled: frozenset[str]) -> None:
    to_cancel = [k for k in plan.cancelled if k not in cancelled]
    to_patch = dict(plan.overrides)
    to_revert = [k for k in exceptions if k not in plan.overrides and k not in plan.cancelled]
    needed = [k for k in to_cancel + list(to_patch) if k not in exceptions]
    ids = dict(exceptions)
    if needed:
        instants = [_key_instant(k) for k in needed]
        found = api.instances(master["id"], min(instants) - dt.timedelta(days=2),
                              max(instants) + dt.timedelta(days=2))
        for instance in found:
            original = instance.get("originalStart")
            if original:
                from ..translation.timezones import parse_graph_offset_datetime

                key = occurrence_key(parse_graph_offset_datetime(original), plan.zone,
                                     plan.all_day)
                ids.setdefault(key, instance["id"])
        missing = [k for k in needed if k not in ids]
        if missing:
            raise UnsupportedObject(
                "RECURRENCE-ID or EXDATE " + ", ".join(missing),
                "it names no occurrence of the series")
    for key in to_cancel:
        api.delete(ids[key], operation="cancel occurrence")
    for key, body in to_patch.items():
        api.update(ids[key], body)
    for key in to_revert:
        api.update(ids[key], _revert_body(plan, key))


def _revert_body(plan: EventPlan, key: str) -> dict:
    """PATCH body that makes an exception look like a regular occurrence again."""
    body = {k: plan.master[k] for k in OCCURRENCE_FIELDS if k in plan.master}
    start = parse_graph_datetime(plan.master["start"])
    end = parse_graph_datetime(plan.master["end"])
    if plan.all_day:
        day = dt.date.fromisoformat(key)
        body["start"] = {"dateTime": f"{day.isoformat()}T00:00:00", "timeZone": "UTC"}
        length = (end.date() - start.date()).days or 1
        body["end"] = {"dateTime": f"{(day + dt.timedelta(days=length)).isoformat()}T00:00:00",
                       "timeZone": "UTC"}
    else:
        original = _key_instant(key).astimezone(zone(plan.zone))
        body["start"] = graph_datetime(original, plan.zone)
        body["end"] = graph_datetime(original + (end - start), plan.zone)
    return body
