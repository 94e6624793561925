"""Room booking: Exchange's Resource Booking Attendant for room mailboxes (kind ``room``).

Rules kept (sources in docs/emulator.md, "Room booking"):

- A room is booked by inviting it: an attendee (any ``type``; Graph asks for ``resource``) whose
  address is a room mailbox. A room only named in ``location``/``locations`` (even with its
  ``locationEmailAddress``) is not invited and not booked (api/user-post-events.md, "Setting the
  location in an event": set the location, *additionally* invite the resource as an attendee).
- Only the organizer's item (``isOrganizer`` true) sends requests; attendees' copies never do.
- Processing is asynchronous, as the Resource Booking Attendant (an asynchronous agent working
  off the room's inbox) is: a write queues the event and the decision lands ``delay`` seconds
  later (default 0.5), from a worker thread. :meth:`Attendant.run_pending` decides everything
  queued at once (tests).
- Each room has a calendar processing policy (Set-CalendarProcessing): ``AutomateProcessing``
  ``AutoAccept`` (default for rooms in Exchange Online), ``AllowConflicts`` false,
  ``BookingWindowInDays`` 180, ``EnforceSchedulingHorizon`` true, ``AllowRecurringMeetings``
  true, ``MaximumDurationInMinutes`` 1440, ``MaximumConflictInstances`` 0,
  ``ConflictPercentageAllowed`` 0, ``AddOrganizerToSubject``/``DeleteSubject``/
  ``DeleteComments``/``RemovePrivateProperty`` true.
- AutoAccept: free = accept, busy = decline. Accepted: a copy in the room's default calendar
  (same ``iCalUId``, ``organizer`` = the organizer, ``isOrganizer`` false, ``responseStatus``
  accepted). Declined: no copy (a declined request is not kept in the room's calendar). Either
  way the room's attendee entry in the organizer's event gets ``status`` {response, time} and the
  event a new ``changeKey``/``lastModifiedDateTime`` (so delta reports it).
  AutoUpdate: the copy is added tentatively, the organizer gets no decision. None: nothing.
- The organizer's event moving in time (start, end, recurrence) is a new request: decided
  again. Other updates refresh the copy. Removing the room from the attendees, or deleting or
  cancelling the event, removes the copy; cancelling an occurrence cancels it in the copy.
- The room keeps its response: an update of the organizer's event that rewrites the room's
  attendee ``status`` (a client sending back what it had) does not change it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import logging
import threading
import time

from . import ids, normalize, series, times

logger = logging.getLogger("radicale_graph.emulator")

FAR = dt.timedelta(days=12000)


@dataclasses.dataclass
class CalendarProcessing:
    """A room's Set-CalendarProcessing settings that the emulator models (documented defaults)."""

    AutomateProcessing: str = "AutoAccept"  # "AutoAccept" | "AutoUpdate" | "None"
    AllowConflicts: bool = False
    BookingWindowInDays: int = 180
    EnforceSchedulingHorizon: bool = True
    AllowRecurringMeetings: bool = True
    MaximumDurationInMinutes: int = 1440  # 0 = unlimited
    MaximumConflictInstances: int = 0
    ConflictPercentageAllowed: int = 0
    AddOrganizerToSubject: bool = True
    DeleteSubject: bool = True
    DeleteComments: bool = True
    RemovePrivateProperty: bool = True


@dataclasses.dataclass
class _Memo:
    """What the room decided for one organizer event (the organizer's response tracking)."""

    shape: str
    response: str
    time: str
    uid: str
    declined: frozenset = frozenset()  # series.key()s of occurrences the room declined


def _shape(data: dict) -> str:
    """What a booking depends on: the start and end instants and the recurrence."""
    return json.dumps([times.fmt_offset(times.from_dtz(data["start"])),
                       times.fmt_offset(times.from_dtz(data["end"])),
                       data.get("recurrence")], sort_keys=True, default=str)


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Attendant:
    """The Resource Booking Attendant of every room mailbox of one :class:`Store`."""

    def __init__(self, store, delay: float = 0.5):
        self.store = store
        #: Seconds between a write and the room's decision; may change at any time.
        self.delay = delay
        self._policies: dict[str, CalendarProcessing] = {}
        self._memos: dict[tuple, _Memo] = {}  # (organizer guid, event id, room guid)
        self._queue: dict[tuple, float] = {}  # (organizer guid, event id) -> due (monotonic)
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    # -- policy (the test control) --------------------------------------------------------

    def policy(self, room: str) -> CalendarProcessing:
        """The room's calendar processing settings (a copy)."""
        return dataclasses.replace(self._policy(self.store._box(room)))

    def set_policy(self, room: str, **settings) -> CalendarProcessing:
        """Set-CalendarProcessing: change some settings of a room, e.g. ``AllowConflicts=True``.
        Unknown names raise TypeError. Applies to requests decided from now on."""
        box = self.store._box(room)
        with self.store.lock:
            self._policies[box.guid] = dataclasses.replace(self._policy(box), **settings)
            return dataclasses.replace(self._policies[box.guid])

    def _policy(self, box) -> CalendarProcessing:
        return self._policies.get(box.guid) or CalendarProcessing()

    # -- hooks called by the store (under its lock) -----------------------------------------

    def written(self, box, rec) -> None:
        """An event or series of ``box`` was created, updated or had an occurrence cancelled."""
        if box.kind == "room":
            return
        data = rec.data
        if data.get("isOrganizer") is False:
            return
        for room in self._rooms(data):
            memo = self._memos.get((box.guid, rec.id, room.guid))
            if memo is not None and memo.shape == _shape(data):
                self._set_status(data, room, memo.response, memo.time)  # the room keeps it
        self._enqueue(box, rec)

    def deleted(self, box, rec) -> None:
        """An event or series of ``box`` was deleted (cancelled by its organizer)."""
        if box.kind != "room":
            self._enqueue(box, rec)

    def _enqueue(self, box, rec) -> None:
        with self._cond:
            self._queue[(box.guid, rec.id)] = time.monotonic() + max(self.delay, 0.0)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, daemon=True,
                                                name="graph-emulator-booking")
                self._worker.start()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None
                    return
                now = time.monotonic()
                due = [k for k, t in self._queue.items() if t <= now]
                if not due:
                    self._cond.wait(min(self._queue.values()) - now)
                    continue
                for k in due:
                    del self._queue[k]
            for key in due:
                try:
                    self._process(*key)
                except Exception:  # noqa: BLE001 - the attendant never takes the server down
                    logger.exception("emulator: a room's booking request could not be decided")

    def run_pending(self) -> int:
        """Decide every queued request now (whatever its delay); returns how many."""
        with self._cond:
            keys = list(self._queue)
            self._queue.clear()
        for key in keys:
            self._process(*key)
        return len(keys)

    # -- deciding -------------------------------------------------------------------------

    def _rooms(self, data: dict) -> list:
        out, seen = [], set()
        for att in data.get("attendees") or []:
            addr = ((att.get("emailAddress") or {}).get("address") or "").lower()
            box = self.store.mailbox(addr) if addr else None
            if box is not None and box.kind == "room" and box.guid not in seen:
                seen.add(box.guid)
                out.append(box)
        return out

    def _process(self, org_guid: str, event_id: str) -> None:
        store = self.store
        with store.lock:
            org = store.mailbox(org_guid)
            if org is None:
                return
            rec = org.events.get(event_id)
            rooms = self._rooms(rec.data) if rec is not None else []
            wanted = {r.guid for r in rooms}
            for key in [k for k in self._memos if k[:2] == (org_guid, event_id)
                        and k[2] not in wanted]:
                room = store.mailbox(key[2])
                memo = self._memos.pop(key)
                if room is not None:
                    self._remove_copy(room, memo.uid)  # a cancellation reaches the room
            if rec is None:
                return
            changed = False
            for room in rooms:
                changed |= self._book(org, rec, room)
            if changed:
                store._touch(org, rec.data)
                store._bump(rec)

    def _book(self, org, rec, room) -> bool:
        """Decide (or refresh) one room's booking; True when the organizer's event changed."""
        data = rec.data
        key = (org.guid, rec.id, room.guid)
        memo = self._memos.get(key)
        shape = _shape(data)
        policy = self._policy(room)
        if memo is not None and memo.shape == shape:
            if memo.response != "declined":
                self._refresh_copy(org, rec, room, policy, tentative=memo.response == "none")
            return self._set_status(data, room, memo.response, memo.time)
        if policy.AutomateProcessing == "None":
            return False
        stamp = times.fmt_offset(times.now())
        if policy.AutomateProcessing == "AutoUpdate":
            self._memos[key] = _Memo(shape, "none", stamp, data["iCalUId"])
            self._refresh_copy(org, rec, room, policy, tentative=True)
            return False
        declined: set = set()
        response = "accepted" if self._acceptable(rec, room, policy, declined) else "declined"
        self._memos[key] = _Memo(shape, response, stamp, data["iCalUId"], frozenset(declined))
        if response == "accepted":
            self._refresh_copy(org, rec, room, policy)
        else:
            self._remove_copy(room, data["iCalUId"])
        self._set_status(data, room, response, stamp)
        return True

    def _acceptable(self, rec, room, policy: CalendarProcessing, declined: set) -> bool:
        """Free = accept, busy = decline. ``declined`` receives the series.key()s of the
        conflicting occurrences of a series accepted within its conflict allowance."""
        data = rec.data
        now = times.now()
        horizon = now + dt.timedelta(days=policy.BookingWindowInDays)
        start, end = times.from_dtz(data["start"]), times.from_dtz(data["end"])
        if policy.MaximumDurationInMinutes and \
                end - start > dt.timedelta(minutes=policy.MaximumDurationInMinutes):
            return False
        if data.get("type") == "seriesMaster":
            if not policy.AllowRecurringMeetings:
                return False
            if policy.EnforceSchedulingHorizon and (
                    data["recurrence"]["range"].get("type") == "noEnd"
                    or series.instances(rec, horizon, horizon + FAR)):
                return False
            wanted = [(i.start, i.end, series.key(i.original_start))
                      for i in series.instances(rec, now, horizon)]
        else:
            if end > horizon:
                return False  # "can only be scheduled up to N days in advance"
            wanted = [(start, end)]
        if policy.AllowConflicts or not wanted:
            return True
        busy = self._busy(room, data["iCalUId"], min(w[0] for w in wanted),
                          max(w[1] for w in wanted))
        clashes = [w for w in wanted if any(_overlaps(w, b) for b in busy)]
        if not clashes:
            return True
        if data.get("type") != "seriesMaster" or len(clashes) > policy.MaximumConflictInstances \
                or len(clashes) * 100 > policy.ConflictPercentageAllowed * len(wanted):
            return False
        declined.update(w[2] for w in clashes)  # the series is accepted, these are declined
        return True

    def _busy(self, room, uid: str, ws: dt.datetime, we: dt.datetime) -> list:
        out = []
        for other in self.store.records(room.upn, None):
            d = other.data
            if d.get("iCalUId") == uid or d.get("isCancelled") or d.get("showAs") == "free":
                continue
            if d.get("type") == "seriesMaster":
                out.extend((i.start, i.end) for i in series.instances(other, ws, we))
            else:
                out.append((times.from_dtz(d["start"]), times.from_dtz(d["end"])))
        return out

    # -- the room's copy and the organizer's tracking -------------------------------------

    @staticmethod
    def _set_status(data: dict, room, response: str, stamp: str) -> bool:
        changed = False
        for att in data.get("attendees") or []:
            addr = ((att.get("emailAddress") or {}).get("address") or "").lower()
            if addr == room.upn.lower():
                status = {"response": response, "time": stamp}
                if att.get("status") != status:
                    att["status"] = status
                    changed = True
        return changed

    def _find_copy(self, room, uid: str):
        for other in self.store.records(room.upn, None):
            if other.data.get("iCalUId") == uid:
                return other
        return None

    def _remove_copy(self, room, uid: str) -> None:
        found = self._find_copy(room, uid)
        if found is not None:
            self.store.delete(room.upn, found.id)

    def _refresh_copy(self, org, rec, room, policy, tentative: bool = False) -> None:
        data = rec.data
        body = {k: copy.deepcopy(data[k]) for k in (
            "subject", "body", "start", "end", "location", "locations", "attendees",
            "sensitivity", "showAs", "isAllDay", "importance", "categories", "recurrence",
            "isOnlineMeeting", "onlineMeetingProvider") if k in data}
        organizer = data.get("organizer") or {
            "emailAddress": {"name": org.display_name, "address": org.upn}}
        if policy.DeleteSubject:
            body["subject"] = ""
        if policy.AddOrganizerToSubject:
            body["subject"] = (organizer.get("emailAddress") or {}).get("name") or org.upn
        if policy.DeleteComments:
            body["body"] = {"contentType": "text", "content": ""}
        if policy.RemovePrivateProperty:
            body["sensitivity"] = "normal"
        if tentative:
            body["showAs"] = "tentative"
        status = {"response": "notResponded" if tentative else "accepted",
                  "time": times.fmt_offset(times.now())}
        found = self._find_copy(room, data["iCalUId"])
        if found is None:
            body.update({"organizer": copy.deepcopy(organizer), "isOrganizer": False,
                         "iCalUId": data["iCalUId"], "responseStatus": status})
            found, _ = self.store.create(room.upn, None, body, from_graph=False)
        else:
            current = {k: found.data.get(k) for k in body}
            wanted = copy.deepcopy(found.data)
            normalize.apply(wanted, body)
            if {k: wanted.get(k) for k in body} != current:
                self.store.update(room.upn, found.id, body)  # in place: found stays current
            if found.data.get("responseStatus", {}).get("response") != status["response"]:
                found.data["responseStatus"] = status
                self.store._touch(room, found.data)
                self.store._bump(found)
        memo = self._memos.get((org.guid, rec.id, room.guid))
        self._sync_occurrences(rec, found, room, memo.declined if memo else frozenset())

    def _sync_occurrences(self, rec, found, room, declined) -> None:
        """Cancelled and moved occurrences of the organizer's series, mirrored in the copy."""
        if rec.data.get("type") != "seriesMaster" or found.data.get("type") != "seriesMaster":
            return
        exceptions = {}
        for k, exc in rec.exceptions.items():
            mirrored = copy.deepcopy(exc)
            mirrored.id = ids.occurrence_id(found.id, exc.original_start)
            for prop in ("subject", "body", "bodyPreview", "sensitivity"):
                mirrored.overrides.pop(prop, None)  # the room's own rules apply (see above)
            exceptions[k] = mirrored

        def times_of(excs):
            return {k: (e.overrides.get("start"), e.overrides.get("end"))
                    for k, e in excs.items()}

        cancelled = set(rec.cancelled) | set(declined)
        for k in declined:
            exceptions.pop(k, None)
        if set(found.cancelled) != cancelled or \
                times_of(found.exceptions) != times_of(exceptions):
            found.cancelled = cancelled
            found.exceptions = exceptions
            self.store._touch(room, found.data)
            self.store._bump(found)
