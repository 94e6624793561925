"""Tenant state: users and rooms (mailboxes), their calendars and events.

Every write gives the item a new ``changeKey`` (``@odata.etag`` = ``W/"<changeKey>"``) and a new
``lastModifiedDateTime`` (resources/event.md). Series exceptions and cancellations live on the
master (see :mod:`series`). Public methods take a mailbox as a UPN or object id (any case) and
event bodies in Graph's JSON form; they are thread-safe.

Strict v1.0 rules kept here:
- ``transactionId`` is remembered per mailbox for good: any later POST with a used id, also
  after its event was deleted, fails with 400 ``ErrorDuplicateTransactionId`` (resources/event.md,
  ``transactionId``; the wording is what public Graph clients report, see
  ../shared/notes/graph-calendar-facts.md).
- A deleted event or series goes to Deleted Items: it stays readable by id for
  ``deleted_retention`` seconds (concepts/outlook-immutable-id.md: immutable ids stay valid when
  an item moves to Deleted Items) but is gone from every collection.
- :meth:`Store.housekeep` moves an event's ``changeKey`` and ``lastModifiedDateTime`` without
  changing its content, as Exchange does by itself (resources/event.md: "Every time the event is
  changed, ChangeKey changes").

The methods without a leading underscore that return dicts are for tests acting "as Outlook":
they bypass the HTTP layer, its schema checks and the access policy, and accept ``organizer``,
``isOrganizer``, ``responseStatus`` and ``iCalUId`` so invitations can be simulated.
"""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

from . import ids, normalize, render, schema, series, times
from .booking import Attendant
from .errors import GraphError, not_found
from .sharing import SharingStore

_OUTLOOK_ONLY = ("organizer", "isOrganizer", "responseStatus", "iCalUId")


@dataclass
class EventRecord:
    """A single instance or series master as stored; ``data`` holds its Graph properties."""

    id: str
    calendar_id: str
    data: dict
    ext: dict = field(default_factory=dict)  # lower-case property id -> (id, value)
    exceptions: dict = field(default_factory=dict)  # series.key(original start) -> ExceptionRecord
    cancelled: set = field(default_factory=set)  # series.key(original start)
    seq: int = 0
    deleted_at: float | None = None  # time.monotonic() of the DELETE (in Deleted Items)


DUPLICATE_TRANSACTION = (
    "Your request can't be completed. The TransactionId specified in the request has already "
    "been used to create a different event."
)


@dataclass
class Mailbox:
    """A user or room mailbox (directory object plus its calendar folders and events)."""

    guid: str
    upn: str
    display_name: str
    kind: str  # "user" | "room" | "group"
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    office: str | None = None
    calendars: dict = field(default_factory=dict)  # id -> calendar dict
    default_calendar_id: str = ""
    events: dict = field(default_factory=dict)  # id -> EventRecord
    transactions: dict = field(default_factory=dict)  # transactionId -> event id (for good)
    deleted: dict = field(default_factory=dict)  # id -> EventRecord in Deleted Items

    def user_json(self) -> dict:
        """The directory ``user`` resource (api/user-get.md default properties)."""
        return {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.upn,
            "mobilePhone": None,
            "officeLocation": self.office,
            "preferredLanguage": "en-US",
            "surname": self.surname,
            "userPrincipalName": self.upn,
            "id": self.guid,
        }


def _series_shape(data: dict) -> tuple:
    """What defines a series' occurrences: start and end instants, pattern, range, zone."""
    rec = copy.deepcopy(data.get("recurrence"))
    zone = None
    if rec:
        zone = str(times.zone(rec["range"].pop("recurrenceTimeZone", None) or
                              data["start"]["timeZone"]))
    return (times.from_dtz(data["start"]), times.from_dtz(data["end"]), rec, zone)


def _if_match(current: str, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    tags = [t.strip() for t in if_match.split(",")]
    values = {t[2:] if t.startswith("W/") else t for t in tags}
    if f'"{current}"' not in values and current not in values:
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed "
            "in the request does not match the current change key for the item.",
        )


class Store(SharingStore):
    """All mailboxes of the emulated tenant. ``places`` holds the rooms' ``room`` resources;
    calendar permissions, groups (their calendars in ``group_store``, a Store of their own, so
    that group mailboxes are no users) and room lists come from :class:`SharingStore`."""

    def __init__(self, tenant_domain: str = "contoso.com", deleted_retention: float = 3600.0,
                 _with_groups: bool = True):
        self.lock = threading.RLock()
        # Seconds a deleted event stays readable by id (Deleted Items); may change at any time.
        self.deleted_retention = deleted_retention
        self.tenant_domain = tenant_domain
        self.places: list[dict] = []
        self._mailboxes: dict[str, Mailbox] = {}
        self._seq = 0
        # Called as listener(record, previous seq) on every event write, under the lock
        # (change notifications, subscriptions.py).
        self.listeners: list = []
        # Rooms' Resource Booking Attendant (booking.py): policies, asynchronous decisions.
        self.booking = Attendant(self)
        self._init_sharing(Store(tenant_domain, deleted_retention, _with_groups=False)
                           if _with_groups else None)

    # -- mailboxes and calendars ---------------------------------------------------------

    def add_mailbox(self, upn: str, display_name: str, kind: str = "user", **extra) -> Mailbox:
        """Create a mailbox with its default calendar "Calendar"; returns it."""
        with self.lock:
            guid = str(uuid.uuid5(uuid.NAMESPACE_DNS, upn.lower()))
            box = Mailbox(guid, upn, display_name, kind, **extra)
            self._mailboxes[upn.lower()] = box
            self._mailboxes[guid] = box
            cid = ids.new_folder_id(guid, seed=f"calendar:{upn.lower()}")
            box.calendars[cid] = self._calendar_json(box, cid, "Calendar", default=True)
            box.default_calendar_id = cid
            return box

    def _calendar_json(self, box, cid, name, default=False, color="auto", hex_color=""):
        return {
            "id": cid,
            "name": name,
            "color": color,
            "hexColor": hex_color,
            "isDefaultCalendar": default,
            "changeKey": ids.new_change_key(box.guid),
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": True,
            "isRemovable": not default,
            "owner": {"name": box.display_name, "address": box.upn},
        }

    def mailbox(self, user: str) -> Mailbox | None:
        """The mailbox for a UPN (case-insensitive) or object id, or None."""
        with self.lock:
            return self._mailboxes.get(user.lower())

    def _box(self, user: str) -> Mailbox:
        box = self.mailbox(user)
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        return box

    def mailboxes(self) -> list[Mailbox]:
        """Every mailbox, in creation order."""
        with self.lock:
            seen, out = set(), []
            for box in self._mailboxes.values():
                if box.guid not in seen:
                    seen.add(box.guid)
                    out.append(box)
            return out

    def calendars(self, mailbox: str) -> list[dict]:
        """The mailbox's calendars (default first) as Graph ``calendar`` dicts (copies)."""
        with self.lock:
            return copy.deepcopy(list(self._box(mailbox).calendars.values()))

    def calendar(self, mailbox: str, calendar_id: str | None) -> dict:
        """One calendar (None = the default). Raises GraphError 404 ErrorItemNotFound."""
        with self.lock:
            box = self._box(mailbox)
            cal = box.calendars.get(calendar_id or box.default_calendar_id)
            if cal is None:
                raise not_found()
            return copy.deepcopy(cal)

    def create_calendar(self, mailbox: str, body: dict) -> dict:
        """A new secondary calendar from a ``calendar`` body (``name`` required)."""
        with self.lock:
            box = self._box(mailbox)
            name = body.get("name")
            if not name:
                raise GraphError(400, "ErrorInvalidRequest", "Calendar name is required.")
            if any(c["name"].lower() == name.lower() for c in box.calendars.values()):
                raise GraphError(
                    409, "ErrorFolderExists", "A folder with the specified name already exists."
                )
            cid = ids.new_folder_id(box.guid)
            cal = self._calendar_json(
                box, cid, name, color=body.get("color") or "auto",
                hex_color=body.get("hexColor") or "",
            )
            box.calendars[cid] = cal
            return copy.deepcopy(cal)

    def update_calendar(self, mailbox: str, calendar_id: str, patch: dict) -> dict:
        """Apply ``name``/``color``/``hexColor``/``isDefaultCalendar`` changes to a calendar."""
        with self.lock:
            box = self._box(mailbox)
            cal = box.calendars.get(calendar_id)
            if cal is None:
                raise not_found()
            for k in ("name", "color", "hexColor"):
                if k in patch and patch[k] is not None:
                    cal[k] = patch[k]
            cal["changeKey"] = ids.new_change_key(box.guid)
            return copy.deepcopy(cal)

    def delete_calendar(self, mailbox: str, calendar_id: str) -> None:
        """Delete a secondary calendar and its events (the default one cannot be deleted)."""
        with self.lock:
            box = self._box(mailbox)
            if calendar_id not in box.calendars:
                raise not_found()
            if calendar_id == box.default_calendar_id:
                raise GraphError(
                    400, "ErrorDeleteDistinguishedFolder",
                    "Distinguished folders cannot be deleted."
                )
            del box.calendars[calendar_id]
            for eid in [e for e, r in box.events.items() if r.calendar_id == calendar_id]:
                del box.events[eid]

    # -- events: lookups -----------------------------------------------------------------

    def records(self, mailbox: str, calendar_id: str | None) -> list[EventRecord]:
        """Single instances and series masters of one calendar (None = default), by creation."""
        with self.lock:
            box = self._box(mailbox)
            cid = calendar_id or box.default_calendar_id
            if cid not in box.calendars:
                raise not_found()
            return [r for r in box.events.values() if r.calendar_id == cid]

    def _retained(self, box: Mailbox, event_id: str) -> EventRecord | None:
        """A deleted record still in Deleted Items (concepts/outlook-immutable-id.md), or None;
        records older than ``deleted_retention`` seconds are purged."""
        now = time.monotonic()
        for eid in [e for e, r in box.deleted.items()
                    if now - r.deleted_at >= self.deleted_retention]:
            del box.deleted[eid]
        return box.deleted.get(event_id)

    def deleted_records(self, mailbox: str) -> list[EventRecord]:
        """Records deleted and not yet purged (for delta's ``@removed``)."""
        with self.lock:
            box = self._box(mailbox)
            self._retained(box, "")
            return list(box.deleted.values())

    def resolve(self, mailbox: str, event_id: str, calendar_id: str | None = None, *,
                include_deleted: bool = False):
        """(record, instance or None) for any event id, occurrence ids included.

        ``calendar_id`` (when the URL names a calendar) must hold the event. Raises 404.
        ``include_deleted``: a deleted event or series master within ``deleted_retention`` is
        found by its own id too (a GET by id answers 200 from Deleted Items).
        """
        with self.lock:
            box = self._box(mailbox)
            rec = box.events.get(event_id)
            if rec is None and include_deleted:
                rec = self._retained(box, event_id)
            inst = None
            if rec is None:
                parsed = ids.parse_occurrence_id(event_id)
                if parsed is None:
                    raise not_found()
                rec = box.events.get(parsed[0])
                if rec is None or rec.data.get("type") != "seriesMaster":
                    raise not_found()
                inst = series.find(rec, parsed[1])
                if inst is None:
                    raise not_found()
            if calendar_id is not None and rec.calendar_id != calendar_id:
                raise not_found()
            return rec, inst

    def shallow(self, rec: EventRecord, inst=None) -> tuple[dict, dict]:
        """:meth:`full` without copying the stored values: read-only, used while the
        caller holds :attr:`lock` (render.event copies what it returns)."""
        if inst is not None:
            ext = rec.ext
            if inst.exception is not None and inst.exception.ext:
                ext = {**rec.ext, **inst.exception.ext}
            return series.instance_data(rec, inst, copy_values=False), ext
        data = dict(rec.data)
        if data.get("type") == "seriesMaster":
            data["cancelledOccurrences"] = series.cancelled_strings(rec)
        return data, rec.ext

    def full(self, rec: EventRecord, inst=None) -> tuple[dict, dict]:
        """(full stored-form event dict, extended properties) of a record or one instance."""
        with self.lock:
            if inst is None:
                data = copy.deepcopy(rec.data)
                if data.get("type") == "seriesMaster":
                    data["cancelledOccurrences"] = series.cancelled_strings(rec)
                return data, dict(rec.ext)
            ext = dict(rec.ext)
            if inst.exception is not None:
                ext.update(inst.exception.ext)
            return series.instance_data(rec, inst), ext

    # -- events: writes ------------------------------------------------------------------

    def _touch(self, box: Mailbox, data: dict) -> None:
        self._seq += 1
        data["changeKey"] = ids.new_change_key(box.guid)
        data["lastModifiedDateTime"] = times.fmt_offset(times.now())

    def _bump(self, rec: EventRecord) -> None:
        for listener in self.listeners:
            listener(rec, rec.seq)
        self._seq += 1
        rec.seq = self._seq

    @property
    def seq(self) -> int:
        """The number of the latest write (delta tokens remember it)."""
        return self._seq

    @staticmethod
    def _ext_write(target: dict, props) -> None:
        for prop in props or []:
            pid = str((prop or {}).get("id") or "")
            if not pid:
                raise GraphError(400, "ErrorInvalidExtendedProperty", "The extended property "
                                 "attribute combination is invalid.")
            if prop.get("value") is None:
                target.pop(pid.lower(), None)
            else:
                target[pid.lower()] = (pid, str(prop["value"]))

    def create(self, mailbox: str, calendar_id: str | None, body: dict, *, from_graph: bool):
        """Create an event; returns (record, True). A ``transactionId`` used before in this
        mailbox (its event alive or deleted) raises 400 ``ErrorDuplicateTransactionId``."""
        with self.lock:
            box = self._box(mailbox)
            cid = calendar_id or box.default_calendar_id
            if cid not in box.calendars:
                raise not_found()
            txn = body.get("transactionId")
            if txn and txn in box.transactions:
                # resources/event.md (transactionId); a used id stays used, also after the
                # event was deleted (../shared/notes/graph-calendar-facts.md, Identity).
                raise GraphError(400, "ErrorDuplicateTransactionId", DUPLICATE_TRANSACTION)
            body = schema.canonical("event", body)
            written = normalize.writable(body)
            ext = written.pop("singleValueExtendedProperties", None)
            data = normalize.defaults(box.display_name, box.upn)
            eid = ids.new_item_id(box.guid)
            data["id"] = eid
            normalize.apply(data, written)
            if data.get("recurrence"):
                series.validate(data)
            stamp = times.fmt_offset(times.now())
            data["createdDateTime"] = stamp
            data["iCalUId"] = ids.new_ical_uid()
            if not from_graph:
                for k in _OUTLOOK_ONLY:
                    if k in body:
                        data[k] = copy.deepcopy(body[k])
                org = (data.get("organizer") or {}).get("emailAddress") or {}
                if "isOrganizer" not in body and (org.get("address") or "").lower() != box.upn:
                    data["isOrganizer"] = False
                    data["responseStatus"] = {"response": "notResponded",
                                              "time": normalize.ZERO_TIME}
            data["webLink"] = render.web_link(eid)
            self._touch(box, data)
            data["lastModifiedDateTime"] = stamp
            rec = EventRecord(eid, cid, data)
            self._ext_write(rec.ext, ext)
            self._bump(rec)
            box.events[eid] = rec
            if txn:
                box.transactions[txn] = eid
            self.booking.written(box, rec)  # invited rooms decide later (booking.py)
            return rec, True

    def update(self, mailbox: str, event_id: str, patch: dict, *, if_match: str | None = None,
               calendar_id: str | None = None):
        """PATCH semantics; returns (record, instance or None). An occurrence becomes an
        exception storing only the written properties. Raises 404/412/400 GraphErrors."""
        with self.lock:
            box = self._box(mailbox)
            rec, inst = self.resolve(mailbox, event_id, calendar_id)
            patch = normalize.writable(schema.canonical("event", patch))
            ext = patch.pop("singleValueExtendedProperties", None)
            if inst is None:
                _if_match(rec.data["changeKey"], if_match)
                before = _series_shape(rec.data)
                data = copy.deepcopy(rec.data)
                normalize.apply(data, patch)
                if data.get("recurrence"):
                    series.validate(data)
                if _series_shape(data) != before:
                    rec.exceptions.clear()  # Exchange drops exceptions when the series changes
                    rec.cancelled.clear()
                rec.data = data
                self._ext_write(rec.ext, ext)
                self._touch(box, rec.data)
            else:
                exc = inst.exception
                _if_match(rec.data["changeKey"], if_match)
                full, _ = self.full(rec, inst)
                trial = copy.deepcopy(full)
                patch.pop("recurrence", None)
                normalize.apply(trial, patch)
                if "start" in patch:
                    series.check_move(rec, inst.original_start, times.from_dtz(trial["start"]))
                stored = {k: trial[k] for k in trial if k in patch or (
                    k in ("originalStartTimeZone", "originalEndTimeZone", "bodyPreview",
                          "locations", "location", "onlineMeeting") and k in trial
                    and trial[k] != full.get(k))}
                stamp = times.fmt_offset(times.now())
                if exc is None:
                    exc = series.ExceptionRecord(inst.id, inst.original_start, {}, stamp, stamp)
                    rec.exceptions[series.key(inst.original_start)] = exc
                exc.overrides.update(stored)
                exc.modified = stamp
                self._ext_write(exc.ext, ext)
                inst.exception = exc
                self._touch(box, rec.data)  # exceptions live in the master item
            self._bump(rec)
            self.booking.written(box, rec)
            return rec, (series.find(rec, inst.original_start) if inst else None)

    def delete(self, mailbox: str, event_id: str, *, if_match: str | None = None,
               calendar_id: str | None = None) -> None:
        """Delete an event or series; an occurrence id cancels that occurrence instead."""
        with self.lock:
            box = self._box(mailbox)
            rec, inst = self.resolve(mailbox, event_id, calendar_id)
            if inst is None:
                _if_match(rec.data["changeKey"], if_match)
                del box.events[rec.id]
                self._bump(rec)
                rec.deleted_at = time.monotonic()
                box.deleted[rec.id] = rec  # Deleted Items (concepts/outlook-immutable-id.md)
                self.booking.deleted(box, rec)  # the rooms' copies go (booking.py)
                return
            _if_match(rec.data["changeKey"], if_match)
            k = series.key(inst.original_start)
            rec.exceptions.pop(k, None)
            rec.cancelled.add(k)
            self._touch(box, rec.data)
            self._bump(rec)
            self.booking.written(box, rec)

    def housekeep(self, mailbox: str | None = None, event_id: str | None = None,
                  count: int = 1, rng: random.Random | None = None) -> list[str]:
        """Move ``changeKey`` and ``lastModifiedDateTime`` of events without changing content,
        as Exchange does by itself (attendee replies, reminders; resources/event.md: "Every
        time the event is changed, ChangeKey changes"). Counts as a change for delta.

        ``event_id``: that single event or series (an occurrence id bumps its master), looked up
        in ``mailbox`` or, when None, in every mailbox. Otherwise ``count`` random events of
        ``mailbox`` (every mailbox when None). Returns the record ids bumped."""
        rng = rng or random
        with self.lock:
            boxes = [self._box(mailbox)] if mailbox else self.mailboxes()
            if event_id is not None:
                for box in boxes:
                    try:
                        rec, _ = self.resolve(box.upn, event_id)
                    except GraphError:
                        continue
                    self._touch(box, rec.data)
                    self._bump(rec)
                    return [rec.id]
                raise not_found()
            pool = [(box, rec) for box in boxes for rec in box.events.values()]
            picked = rng.sample(pool, min(max(count, 0), len(pool)))
            for box, rec in picked:
                self._touch(box, rec.data)
                self._bump(rec)
            return [rec.id for _, rec in picked]

    def respond(self, mailbox: str, event_id: str, response: str,
                calendar_id: str | None = None) -> None:
        """Record the mailbox owner's reply (``accepted``/``declined``/``tentativelyAccepted``)."""
        status = {"response": response, "time": times.fmt_offset(times.now())}
        with self.lock:
            rec, inst = self.resolve(mailbox, event_id, calendar_id)
            if inst is None:
                rec.data["responseStatus"] = status
                self._touch(self._box(mailbox), rec.data)
                self._bump(rec)
            else:
                self.update(mailbox, event_id, {}, calendar_id=calendar_id)
                rec, inst = self.resolve(mailbox, event_id, calendar_id)
                inst.exception.overrides["responseStatus"] = status

    # -- the "as Outlook" API used by tests ------------------------------------------------

    def create_event(self, mailbox: str, calendar_id: str | None, event: dict) -> dict:
        """Create an event as Outlook would; returns it as Graph shows it (UTC, all properties)."""
        rec, _ = self.create(mailbox, calendar_id, event, from_graph=False)
        return self._plain(rec, None)

    def update_event(self, mailbox: str, event_id: str, patch: dict) -> dict:
        """PATCH an event, occurrence or exception; returns the result as Graph shows it."""
        rec, inst = self.update(mailbox, event_id, patch)
        return self._plain(rec, inst)

    def delete_event(self, mailbox: str, event_id: str) -> None:
        """Delete an event or series, or cancel an occurrence."""
        self.delete(mailbox, event_id)

    def get_event(self, mailbox: str, event_id: str) -> dict:
        """An event, occurrence or exception as Graph shows it (UTC, all properties)."""
        with self.lock:
            rec, inst = self.resolve(mailbox, event_id)
            return self._plain(rec, inst)

    def _plain(self, rec, inst) -> dict:
        with self.lock:
            data, ext = self.full(rec, inst)
        return render.event(data, ext, render.View(select=["cancelledOccurrences", "*"]))
