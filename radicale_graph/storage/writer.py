"""Writing one CalDAV resource to Graph: the series master, then its exceptions.

Graph has no call that creates a series with exceptions (notes: "No single call creates a
series with exceptions"): the master is POSTed or PATCHed, the affected instances are looked up
once with ``/instances``, cancelled occurrences are DELETEd (EXDATE) and overridden ones
PATCHed (RECURRENCE-ID). Only the differences from what Graph already holds are written, and
the result is assembled from Graph's answers without reading the series again, so a PUT of a
series with k exceptions costs at most 1 + k requests plus one instances lookup.

Everything Graph could refuse is checked before the first write: translation refuses what
Graph cannot hold (RFC 5545 constructs, occurrences crossing their neighbours), and the
instances an EXDATE or RECURRENCE-ID names are looked up before the master is touched. A
failure after the first write either rolls the create back or is reported as a
:class:`PartialWrite` naming what was and was not applied; the caller then reads the series
back so the next GET shows exactly what Graph holds.

Creates are idempotent: ``transactionId`` is derived from (calendar, href, text), so a POST
retried after a lost answer is refused with ``ErrorDuplicateTransactionId`` and the event it
made is found by its kept href and adopted. A used ``transactionId`` stays used after its event
was deleted (resources/event.md; notes: "a used transactionId stays used"), so a re-create of
the same text at the same href (an undo) that finds no event POSTs again with a fresh one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable

from ..graph import GraphError
from ..translation import fields
from ..translation.errors import UnsupportedObject
from ..translation.ical_to_graph import EventPlan
from ..translation.occurrences import cancelled_keys, instance_key, key_instant, oid
from ..translation.timezones import UTC
from .cache import CachedEvent
from .graph_events import CalendarEvents, is_duplicate_transaction

logger = logging.getLogger("radicale_graph.storage")

# What an attendee may change on their copy of someone else's meeting.
PERSONAL_FIELDS = ("isReminderOn", "reminderMinutesBeforeStart", "categories", "showAs",
                   "sensitivity")
# PARTSTAT of the mailbox owner -> (Graph action, responseStatus.response).
REPLIES = {"ACCEPTED": ("accept", "accepted"), "DECLINED": ("decline", "declined"),
           "TENTATIVE": ("tentativelyAccept", "tentativelyAccepted")}


class PartialWrite(Exception):
    """Graph accepted part of a resource's writes and refused the rest.

    ``cause`` is the Graph error (or the refusal met after the first write); ``event_id`` the
    Graph event that was written, or ``None`` when nothing of it remains (rolled back). The
    message is meant for the CalDAV client and the admin."""

    def __init__(self, what: str, cause: Exception, event_id: str | None = None) -> None:
        self.cause = cause
        self.event_id = event_id
        super().__init__(f"{what}; Graph refused the rest: {cause}")


def transaction_id(calendar_id: str, href: str, text: str) -> str:
    """Graph ``transactionId`` for creating ``href``: the same request retried gives the same
    id, so Graph returns the event it already created instead of a duplicate."""
    digest = hashlib.sha256(f"{calendar_id}\n{href}\n{text}".encode()).hexdigest()
    return f"radicale-graph-{digest[:40]}"


Adopt = Callable[[dict], "CachedEvent | None"]


def create(api: CalendarEvents, href: str, text: str, plan: EventPlan, adopt: Adopt):
    """POST the event and apply its exceptions. Returns ``(master, exceptions)`` as Graph
    holds them. ``adopt(event)`` turns an event found by its kept href (a POST of ours whose
    answer was lost) into a cache entry, which is then updated to ``plan``. On a failure after
    the POST the new event is deleted again and :class:`PartialWrite` is raised (saying
    whether the rollback worked)."""
    txn = transaction_id(api.calendar_id, href, text)
    try:
        master = api.create(plan.master, txn)
    except GraphError as exc:
        if not is_duplicate_transaction(exc):
            raise
        found = api.find_by_hrefs([href]).get(href) or []
        if found:
            # Our own POST went through but its answer was lost: the event is there.
            full = api.get_many([found[0]["id"]]).get(found[0]["id"]) or found[0]
            entry = adopt(full)
            if entry is not None:
                logger.info("%s: adopting event %s created by an earlier POST", href,
                            full["id"])
                return update(api, entry, plan, None)
        # The transactionId belonged to an event since deleted (an undo): a fresh one.
        master = api.create(plan.master, f"{txn}-{uuid.uuid4().hex[:12]}")
    if not plan.is_series or not (plan.cancelled or plan.overrides):
        return master, []
    try:
        return _apply_exceptions(api, master, plan, {}, frozenset())
    except (GraphError, UnsupportedObject) as exc:
        try:
            api.delete(master["id"], operation="roll back event")
        except GraphError:
            raise PartialWrite(f"the series {plan.uid!r} was created but its exceptions were "
                               f"not all applied, and removing it again failed", exc,
                               master["id"]) from exc
        raise PartialWrite(f"the series {plan.uid!r} was not stored (rolled back)",
                           exc) from exc


def update(api: CalendarEvents, entry: CachedEvent, plan: EventPlan, if_match: str | None):
    """PATCH the master and change exactly the exceptions that differ from ``entry``.
    ``if_match``: the ``@odata.etag`` to send as If-Match on the first write (``None``: an
    unconditional write, as the client asked). Returns ``(master, exceptions)``. Raises
    :class:`UnsupportedObject` before writing when the change needs what Graph cannot do
    (restoring a cancelled occurrence, an EXDATE or RECURRENCE-ID naming no occurrence),
    ``PreconditionFailed`` (nothing written) when Graph's If-Match fails, and
    :class:`PartialWrite` when Graph refuses a step after the master was changed."""
    if not entry.is_organizer:
        return _update_invitation(api, entry, plan, if_match)
    if plan.master is None:
        return _update_overrides(api, entry, plan)
    reshaped = plan.is_series and _reshaped(entry, plan)
    restored = set(entry.cancelled) - set(plan.cancelled)
    if plan.is_series and restored and not reshaped:
        raise _restoring(sorted(restored), plan)
    known = {e["id"]: e for e in entry.graph_exceptions}
    cancelled = entry.cancelled
    exception_ids = dict(entry.exceptions)
    ids = None
    if plan.is_series and not reshaped:
        # Every instance a later step needs, looked up before the first write.
        ids, cancelled = _lookup(api, entry.event_id, plan, exception_ids, cancelled)
    master = api.update(entry.event_id, dict(plan.master), if_match)
    if not plan.is_series:
        return master, []
    if (exception_ids or cancelled) and reshaped:
        # Exchange rebuilt the series: learn what survived before changing exceptions.
        fresh = api.get(master["id"])
        master, known = fresh, {e["id"]: e for e in fresh.get("exceptionOccurrences") or []}
        exception_ids = {_key(e, plan): e["id"] for e in known.values()}
        cancelled = frozenset()
    else:
        master["cancelledOccurrences"] = list((entry.graph_master or {}).get(
            "cancelledOccurrences") or [])
        master["cancelledOccurrences"] = sorted(
            set(master["cancelledOccurrences"])
            | {oid(master["id"], k, plan.zone) for k in cancelled - entry.cancelled})
    if not (plan.cancelled or plan.overrides or exception_ids):
        return master, []
    try:
        return _apply_exceptions(api, master, plan, exception_ids, cancelled, known, ids)
    except (GraphError, UnsupportedObject) as exc:
        raise PartialWrite(f"the series {plan.uid!r} was updated (its master: subject, times, "
                           f"pattern) but not all of its exceptions", exc,
                           entry.event_id) from exc


def _restoring(keys: list[str], plan: EventPlan) -> UnsupportedObject:
    """The refusal of a PUT that brings cancelled occurrences (occurrence keys ``keys``)
    back: as a RECURRENCE-ID override no longer STATUS:CANCELLED (RFC 5545 3.8.1.11), or by
    dropping their EXDATE (3.8.5.1). Graph deletes a cancelled occurrence and has no call
    that restores it (resources/event.md, cancelledOccurrences)."""
    again = [k for k in keys if k in plan.overrides]
    dropped = [k for k in keys if k not in plan.overrides]
    named = []
    if again:
        named.append("RECURRENCE-ID " + ", ".join(again) + " no longer STATUS:CANCELLED")
    if dropped:
        named.append("removal of EXDATE " + ", ".join(dropped))
    return UnsupportedObject("; ".join(named), "Graph cannot restore a cancelled occurrence "
                             "(it was deleted from the series)")


def _reshaped(entry: CachedEvent, plan: EventPlan) -> bool:
    """Whether the PATCH changes the series' pattern, start or end (Exchange then rebuilds the
    series and drops its exceptions); compared in translation's canonical form."""
    old = entry.graph_master or {}
    return any(fields.canonical(group, old) != fields.canonical(group, plan.master)
               for group in ("RRULE", "END"))


def _update_invitation(api: CalendarEvents, entry: CachedEvent, plan: EventPlan,
                       if_match: str | None):
    """The owner's copy of someone else's meeting: only personal fields change (PATCH), and
    a changed PARTSTAT of the owner becomes accept, decline or tentativelyAccept. The
    meeting's own content belongs to its organizer and is left as Exchange holds it."""
    master = dict(entry.graph_master or {"id": entry.event_id})
    source = plan.master or next(iter(plan.overrides.values()), {})
    body = {k: source[k] for k in PERSONAL_FIELDS if k in source and
            fields.same(k, source) != fields.same(k, master)}
    wanted = {p["id"]: p.get("value") for p in source.get("singleValueExtendedProperties") or []}
    have = {p.get("id"): p.get("value") for p in master.get("singleValueExtendedProperties")
            or []}
    if any(have.get(pid) != value for pid, value in wanted.items()):
        body["singleValueExtendedProperties"] = source["singleValueExtendedProperties"]
    if body:
        master.update(api.update(entry.event_id, body, if_match))
    reply = REPLIES.get((plan.owner_partstat or "").upper())
    current = (master.get("responseStatus") or {}).get("response")
    if reply and current != reply[1]:
        try:
            api.respond(entry.event_id, reply[0])
        except GraphError as exc:
            if not body:
                raise
            raise PartialWrite(f"your copy of {plan.uid!r} was updated but your reply "
                               f"({reply[0]}) was not sent", exc, entry.event_id) from exc
        master["responseStatus"] = {"response": reply[1], "time": dt.datetime.now(
            UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return master, list(entry.graph_exceptions)


def _update_overrides(api: CalendarEvents, entry: CachedEvent, plan: EventPlan):
    """A resource holding only overrides (Apple stores invitations so): PATCH exactly those
    occurrences of the existing series; other exceptions stay as they are."""
    master = dict(entry.graph_master or {"id": entry.event_id})
    known = {e["id"]: e for e in entry.graph_exceptions}
    touched = {k: i for k, i in entry.exceptions.items() if k in plan.overrides}
    ids, cancelled = _lookup(api, entry.event_id, plan, touched, entry.cancelled)
    try:
        master, exceptions = _apply_exceptions(api, master, plan, touched, cancelled,
                                               known, ids)
    except (GraphError, UnsupportedObject) as exc:
        raise PartialWrite(f"not all occurrences of {plan.uid!r} were updated", exc,
                           entry.event_id) from exc
    return master, exceptions


def _key(instance: dict, plan: EventPlan) -> str:
    return instance_key(instance, plan.zone, plan.all_day)


def _lookup(api: CalendarEvents, master_id: str, plan: EventPlan,
            exception_ids: dict[str, str], cancelled: frozenset[str],
            ) -> tuple[dict[str, str], frozenset[str]]:
    """Graph ids of the instances the plan's EXDATEs and RECURRENCE-IDs name (one
    ``/instances`` lookup; api/event-list-instances.md), before anything is written.
    Returns (occurrence key -> instance id, cancelled keys). An EXDATE whose occurrence is
    not listed but which Graph already cancelled (an Outlook change not yet seen) counts as
    cancelled. Raises :class:`UnsupportedObject` for keys naming no occurrence."""
    to_cancel = [k for k in plan.cancelled if k not in cancelled]
    needed = [k for k in to_cancel + list(plan.overrides) if k not in exception_ids]
    ids = dict(exception_ids)
    if not needed:
        return ids, cancelled
    instants = [key_instant(k) for k in needed]
    for instance in api.instances(master_id, min(instants) - dt.timedelta(days=2),
                                  max(instants) + dt.timedelta(days=2)):
        if instance.get("originalStart"):
            ids.setdefault(_key(instance, plan), instance["id"])
    missing = [k for k in needed if k not in ids]
    if missing and set(missing) <= set(plan.cancelled):
        fresh = api.get_many([master_id]).get(master_id) or {}
        cancelled = cancelled | frozenset(cancelled_keys(fresh, plan.zone, plan.all_day))
        missing = [k for k in missing if k not in cancelled]
    if missing:
        raise UnsupportedObject("RECURRENCE-ID or EXDATE " + ", ".join(missing),
                                "it names no occurrence of the series")
    return ids, cancelled


def _apply_exceptions(api: CalendarEvents, master: dict, plan: EventPlan,
                      exception_ids: dict[str, str], cancelled: frozenset[str],
                      known: dict[str, dict] | None = None,
                      ids: dict[str, str] | None = None):
    """Cancel, patch and revert occurrences; return ``(master, exceptions)`` assembled from
    Graph's answers (exceptions carry the master's new changeKey in Graph's instance shape).
    ``ids``: the result of :func:`_lookup` when it ran before the first write."""
    known = dict(known or {})
    if ids is None:
        ids, cancelled = _lookup(api, master["id"], plan, exception_ids, cancelled)
    to_cancel = [k for k in plan.cancelled if k not in cancelled]
    to_revert = [k for k in exception_ids if k not in plan.overrides and k not in plan.cancelled]
    oids = list(master.get("cancelledOccurrences") or [])
    last_change = None
    for key in to_cancel:
        api.delete(ids[key], operation="cancel occurrence")
        known.pop(ids[key], None)
        oids.append(oid(master["id"], key, plan.zone))
    for key, body in plan.overrides.items():
        if key in exception_ids and fields.holds(known.get(ids[key]), body):
            continue
        known[ids[key]] = api.update(ids[key], body)
        last_change = known[ids[key]]
    for key in to_revert:
        known[ids[key]] = api.update(ids[key], fields.revert_body(plan.master, key, plan.zone,
                                                                  plan.all_day))
        last_change = known[ids[key]]
    for event_id in [i for i, e in known.items() if e.get("type") == "occurrence"]:
        del known[event_id]  # a reverted exception is a plain occurrence again
    master = dict(master, cancelledOccurrences=sorted(set(oids)))
    if last_change is not None and last_change.get("changeKey"):
        master["changeKey"] = last_change["changeKey"]
        master["@odata.etag"] = last_change.get("@odata.etag", master.get("@odata.etag"))
    return master, list(known.values())
