"""Writing one CalDAV resource to Graph: the series master, then its exceptions.

Graph has no call that creates a series with exceptions (notes: "No single call creates a
series with exceptions"): the master is POSTed or PATCHed, the affected instances are looked up
once with ``/instances``, cancelled occurrences are DELETEd (EXDATE) and overridden ones
PATCHed (RECURRENCE-ID). Only the differences from what Graph already holds are written, and
the result is assembled from Graph's answers without reading the series again, so a PUT of a
series with k exceptions costs at most 1 + k requests plus one instances lookup.

A failure after the first write either rolls the create back or is reported as a
:class:`PartialWrite` naming what was and was not applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from ..graph import GraphError
from ..translation import kept
from ..translation.errors import UnsupportedObject
from ..translation.ical_to_graph import EventPlan, occurrence_key
from ..translation.timezones import (
    UTC,
    graph_datetime,
    parse_graph_datetime,
    parse_graph_offset_datetime,
    zone,
)
from .cache import CachedEvent
from .graph_events import CalendarEvents

logger = logging.getLogger("radicale_graph.storage")

# Properties of a master that describe one occurrence (used to revert an exception).
OCCURRENCE_FIELDS = ("subject", "body", "location", "attendees", "sensitivity", "showAs",
                     "categories", "isReminderOn", "reminderMinutesBeforeStart")
# What an attendee may change on their copy of someone else's meeting.
PERSONAL_FIELDS = ("isReminderOn", "reminderMinutesBeforeStart", "categories", "showAs",
                   "sensitivity")
# PARTSTAT of the mailbox owner -> (Graph action, responseStatus.response).
REPLIES = {"ACCEPTED": ("accept", "accepted"), "DECLINED": ("decline", "declined"),
           "TENTATIVE": ("tentativelyAccept", "tentativelyAccepted")}


class PartialWrite(Exception):
    """Graph accepted part of a resource's writes and refused the rest.

    ``cause`` is the Graph error. The message is meant for the CalDAV client and the admin."""

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
    :class:`PartialWrite` is raised (saying whether the rollback worked)."""
    master = api.create(plan.master, transaction_id(api.calendar_id, href, text))
    if not plan.is_series or not (plan.cancelled or plan.overrides):
        return master, []
    try:
        return _apply_exceptions(api, master, plan, {}, frozenset())
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
    if not entry.is_organizer:
        return _update_invitation(api, entry, plan)
    if plan.master is None:
        return _update_overrides(api, entry, plan)
    restored = set(entry.cancelled) - set(plan.cancelled)
    if plan.is_series and restored and not _reshaped(entry, plan):
        raise UnsupportedObject("removal of EXDATE " + ", ".join(sorted(restored)),
                                "Graph cannot restore a cancelled occurrence")
    master = api.update(entry.event_id, dict(plan.master), entry.odata_etag)
    if not plan.is_series:
        return master, []
    known = {e["id"]: e for e in entry.graph_exceptions}
    cancelled = entry.cancelled
    exception_ids = dict(entry.exceptions)
    if (exception_ids or cancelled) and _reshaped(entry, plan):
        # Exchange rebuilt the series: learn what survived before changing exceptions.
        fresh = api.get(master["id"])
        master, known = fresh, {e["id"]: e for e in fresh.get("exceptionOccurrences") or []}
        exception_ids = {_key(e, plan): e["id"] for e in known.values()}
        cancelled = frozenset()
    else:
        master["cancelledOccurrences"] = list((entry.graph_master or {}).get(
            "cancelledOccurrences") or [])
    if not (plan.cancelled or plan.overrides or exception_ids):
        return master, []
    try:
        return _apply_exceptions(api, master, plan, exception_ids, cancelled, known)
    except GraphError as exc:
        raise PartialWrite(f"the series {plan.uid!r} was updated but not all of its "
                           f"exceptions", exc) from exc


def _reshaped(entry: CachedEvent, plan: EventPlan) -> bool:
    """Whether the PATCH changes the series' pattern, start or end (Exchange then rebuilds the
    series and drops its exceptions); compared in translation's canonical form."""
    old = entry.graph_master or {}
    return any(kept.canonical(group, old) != kept.canonical(group, plan.master)
               for group in ("RRULE", "END"))


def _update_invitation(api: CalendarEvents, entry: CachedEvent, plan: EventPlan):
    """The owner's copy of someone else's meeting: only personal fields change (PATCH), and
    a changed PARTSTAT of the owner becomes accept, decline or tentativelyAccept. The
    meeting's own content belongs to its organizer and is left as Exchange holds it."""
    master = dict(entry.graph_master or {"id": entry.event_id})
    source = plan.master or next(iter(plan.overrides.values()), {})
    body = {k: source[k] for k in PERSONAL_FIELDS if k in source and
            kept.canonical_field(k, source) != kept.canonical_field(k, master)}
    wanted = {p["id"]: p.get("value") for p in source.get("singleValueExtendedProperties") or []}
    have = {p.get("id"): p.get("value") for p in master.get("singleValueExtendedProperties")
            or []}
    if any(have.get(pid) != value for pid, value in wanted.items()):
        body["singleValueExtendedProperties"] = source["singleValueExtendedProperties"]
    if body:
        master.update(api.update(entry.event_id, body, entry.odata_etag))
    reply = REPLIES.get((plan.owner_partstat or "").upper())
    current = (master.get("responseStatus") or {}).get("response")
    if reply and current != reply[1]:
        try:
            api.respond(entry.event_id, reply[0])
        except GraphError as exc:
            if not body:
                raise
            raise PartialWrite(f"your copy of {plan.uid!r} was updated but your reply "
                               f"({reply[0]}) was not sent", exc) from exc
        master["responseStatus"] = {"response": reply[1], "time": dt.datetime.now(
            UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return master, list(entry.graph_exceptions)


def _update_overrides(api: CalendarEvents, entry: CachedEvent, plan: EventPlan):
    """A resource holding only overrides (Apple stores invitations so): PATCH exactly those
    occurrences of the existing series; other exceptions stay as they are."""
    master = dict(entry.graph_master or {"id": entry.event_id})
    known = {e["id"]: e for e in entry.graph_exceptions}
    touched = {k: i for k, i in entry.exceptions.items() if k in plan.overrides}
    try:
        master, exceptions = _apply_exceptions(api, master, plan, touched, entry.cancelled,
                                               known)
    except GraphError as exc:
        raise PartialWrite(f"not all occurrences of {plan.uid!r} were updated", exc) from exc
    return master, exceptions


def _key(instance: dict, plan: EventPlan) -> str:
    return occurrence_key(parse_graph_offset_datetime(instance["originalStart"]), plan.zone,
                          plan.all_day)


def _key_instant(key: str) -> dt.datetime:
    if "T" in key:
        return dt.datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return dt.datetime.combine(dt.date.fromisoformat(key), dt.time(), tzinfo=UTC)


def _oid(master_id: str, key: str, plan: EventPlan) -> str:
    """Graph's ``cancelledOccurrences`` entry: ``OID.<master id>.<local date>``."""
    day = key if "T" not in key else _key_instant(key).astimezone(zone(plan.zone)).date()
    return f"OID.{master_id}.{day}"


def _apply_exceptions(api: CalendarEvents, master: dict, plan: EventPlan,
                      exception_ids: dict[str, str], cancelled: frozenset[str],
                      known: dict[str, dict] | None = None):
    """Cancel, patch and revert occurrences; return ``(master, exceptions)`` assembled from
    Graph's answers (exceptions carry the master's new changeKey in Graph's instance shape)."""
    known = dict(known or {})
    to_cancel = [k for k in plan.cancelled if k not in cancelled]
    to_revert = [k for k in exception_ids if k not in plan.overrides and k not in plan.cancelled]
    needed = [k for k in to_cancel + list(plan.overrides) if k not in exception_ids]
    ids = dict(exception_ids)
    if needed:
        instants = [_key_instant(k) for k in needed]
        for instance in api.instances(master["id"], min(instants) - dt.timedelta(days=2),
                                      max(instants) + dt.timedelta(days=2)):
            if instance.get("originalStart"):
                ids.setdefault(_key(instance, plan), instance["id"])
        missing = [k for k in needed if k not in ids]
        if missing:
            raise UnsupportedObject("RECURRENCE-ID or EXDATE " + ", ".join(missing),
                                    "it names no occurrence of the series")
    oids = list(master.get("cancelledOccurrences") or [])
    last_change = None
    for key in to_cancel:
        api.delete(ids[key], operation="cancel occurrence")
        known.pop(ids[key], None)
        oids.append(_oid(master["id"], key, plan))
    for key, body in plan.overrides.items():
        if key in exception_ids and _unchanged(known.get(ids[key]), body):
            continue
        known[ids[key]] = api.update(ids[key], body)
        last_change = known[ids[key]]
    for key in to_revert:
        known[ids[key]] = api.update(ids[key], _revert_body(plan, key))
        last_change = known[ids[key]]
    for event_id in [i for i, e in known.items() if e.get("type") == "occurrence"]:
        del known[event_id]  # a reverted exception is a plain occurrence again
    master = dict(master, cancelledOccurrences=sorted(set(oids)))
    if last_change is not None and last_change.get("changeKey"):
        master["changeKey"] = last_change["changeKey"]
        master["@odata.etag"] = last_change.get("@odata.etag", master.get("@odata.etag"))
    return master, list(known.values())


def _unchanged(current: dict | None, body: dict) -> bool:
    """Whether an exception already holds every value of ``body`` (so no PATCH is needed)."""
    if current is None:
        return False
    for name, value in body.items():
        have = current.get(name)
        if name in ("start", "end"):
            if have is None or parse_graph_datetime(have) != parse_graph_datetime(value):
                return False
        elif name == "body":
            if (have or {}).get("content", "").strip() != value.get("content", "").strip():
                return False
        elif name == "attendees":
            def people(items):
                return sorted((a["emailAddress"]["address"].lower(), a.get("type"))
                              for a in items or [])
            if people(have) != people(value):
                return False
        elif name == "location":
            if (have or {}).get("displayName", "") != value.get("displayName", ""):
                return False
        elif have != value and not (have in (None, [], "") and value in (None, [], "")):
            return False
    return True


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
