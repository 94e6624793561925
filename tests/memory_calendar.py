"""An in-memory Graph v1.0 calendar behind the interface of ``storage.graph_events``.

:class:`MemoryCalendar` stands in for :class:`radicale_graph.storage.graph_events.CalendarEvents`
(one calendar of one mailbox), in the spirit of xandikos's ``store/memory.py``, so the cache,
loader, writer and sync state can be tested without HTTPS, Radicale or the emulator. It imports
nothing from ``radicale_graph.translation`` or ``.storage``; it answers as Graph v1.0 does at
its strictest where the gateway depends on it (docs/emulator.md):

* ``changeKey`` (and ``@odata.etag`` = ``W/"<changeKey>"``) moves on every write, and on
  :meth:`MemoryCalendar.housekeep` without any other change; instances carry their master's.
* ``cancelledOccurrences`` and ``exceptionOccurrences`` only in a read by id (``get``,
  ``get_many``) of a series master, never in lists, delta, POST or PATCH answers.
* a used ``transactionId`` is refused with 400 ``ErrorDuplicateTransactionId`` for good, also
  after its event was deleted.
* deleted events stay readable by id (until :meth:`MemoryCalendar.purge`) but are gone from
  lists, ``find_by_hrefs``, ``instances`` (404) and delta (``@removed``); writes to them 404.
* ``view_delta_pages``: single events, occurrences and exceptions (never masters) in the
  window; a later round returns what changed since and ``@removed`` for what was deleted,
  left the window, or was added or changed outside it (by the ids seen before, else by the
  event's id); the last page carries ``@odata.deltaLink``; :meth:`MemoryCalendar.expire` makes
  every link issued so far answer 410 ``syncStateNotFound``.
* If-Match on ``update``/``delete`` answers 412 when it is not the current ``@odata.etag``.
* ``present`` (folder-scoped lists filtered on ``iCalUId``) never shows a deleted event.

Series support daily and weekly patterns with ``numbered``, ``endDate`` and ``noEnd`` ranges
(expanded with python-dateutil). Occurrence ids are ``<master id>.OCC.<local date>``.

Every call is logged in :attr:`MemoryCalendar.calls` with the number of Graph requests the real
``CalendarEvents`` makes for it (pages of ``page_size``, ``$batch`` of 20), and
:meth:`MemoryCalendar.fail` makes a later call raise a Graph error (before or after its effect).
Changes "made in Outlook" go through the ``outlook_*`` controls, which the gateway did not
cause (so they never enter ``removed_ids``).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from radicale_graph.graph.errors import GraphError, error_from_response

UTC = dt.UTC
BATCH_SIZE = 20
LINK_BASE = "https://graph.invalid/v1.0/memory"
INSTANCE_FIELDS = ("id", "type", "originalStart", "start", "end", "seriesMasterId")
BY_ID_ONLY = ("cancelledOccurrences", "exceptionOccurrences")
# What a client cannot write (Graph computes these; resources/event.md).
READ_ONLY = {"id", "createdDateTime", "lastModifiedDateTime", "changeKey", "iCalUId", "type",
             "seriesMasterId", "originalStart", "cancelledOccurrences", "exceptionOccurrences",
             "isOrganizer", "organizer", "responseStatus", "transactionId",
             "singleValueExtendedProperties"}
WEEKDAYS = {"monday": rrule.MO, "tuesday": rrule.TU, "wednesday": rrule.WE,
            "thursday": rrule.TH, "friday": rrule.FR, "saturday": rrule.SA,
            "sunday": rrule.SU}
RESPONSES = {"accept": "accepted", "decline": "declined",
             "tentativelyAccept": "tentativelyAccepted"}


def graph_error(status: int, code: str, message: str, operation: str = "request",
                mailbox: str | None = None) -> GraphError:
    """The ``GraphError`` subclass the real Graph client raises for this answer."""
    return error_from_response(status, {}, {"error": {"code": code, "message": message}},
                               mailbox=mailbox, operation=operation)


def zone(name: str | None) -> dt.tzinfo:
    """The zone of a Graph ``timeZone`` (IANA or Windows name; UTC when unknown)."""
    if not name or name.upper() in ("UTC", "Z") or name.lower() == "tzone://microsoft/utc":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    olson = WINDOWS_TO_OLSON.get(name)
    return ZoneInfo(olson) if olson else UTC


def parse_dtz(value: dict) -> dt.datetime:
    """Aware datetime of a Graph ``dateTimeTimeZone``."""
    text = str(value["dateTime"]).rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone(value.get("timeZone")))


def fmt_local(value: dt.datetime) -> str:
    """Graph's wall-clock text, ``YYYY-MM-DDTHH:MM:SS.fffffff``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0"


def fmt_offset(value: dt.datetime) -> str:
    """Graph's ``DateTimeOffset`` text in UTC, ``2026-01-05T10:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occurrence_id(master_id: str, local_start: dt.datetime) -> str:
    """Id of the occurrence of ``master_id`` starting (originally) at ``local_start``."""
    return f"{master_id}.OCC.{local_start.date().isoformat()}"


@dataclass
class Call:
    """One call of the interface: method name, arguments, and the Graph requests the real
    ``CalendarEvents`` would make for it."""

    method: str
    args: tuple
    requests: int = 1


@dataclass
class _Fault:
    method: str
    error: GraphError
    count: int
    match: str | None
    after: bool


@dataclass
class _Record:
    """One single event or series master as the store holds it (times in their own zones)."""

    id: str
    data: dict
    ext: dict[str, tuple[str, str]]        # lower-case property id -> (id, value)
    seq: int = 0
    deleted: bool = False
    exceptions: dict[str, dict] = field(default_factory=dict)  # original start text -> data
    cancelled: set[str] = field(default_factory=set)             # original start texts

    @property
    def is_series(self) -> bool:
        return bool(self.data.get("recurrence"))


@dataclass
class _Instance:
    id: str
    original: dt.datetime  # aware, series zone
    start: dt.datetime
    end: dt.datetime
    exception: dict | None


@dataclass
class _Round:
    window: tuple[dt.datetime, dt.datetime]
    seq: int
    seen: dict[str, str]  # item id -> record id


class MemoryCalendar:
    """One Graph calendar in memory, used as ``CalendarEvents`` is (see the module docstring).

    ``page_size``: items per list or delta page (Graph: 1,000). Thread-safe (the loader runs a
    delta round in a thread while it lists)."""

    def __init__(self, mailbox: str = "alice@contoso.com", calendar_id: str = "cal-1",
                 page_size: int = 1000, owner_name: str = "Alice") -> None:
        self.mailbox = mailbox
        self.calendar_id = calendar_id
        self.page_size = page_size
        self.owner_name = owner_name
        self.removed_ids: set[str] = set()
        self.calls: list[Call] = []
        # The pages of every delta round served, in order (test inspection).
        self.delta_history: list[list[dict]] = []
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._transactions: set[str] = set()
        self._rounds: dict[str, _Round] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self._ids = itertools.count(1)
        self._keys = itertools.count(1)
        self._tokens = itertools.count(1)
        self._clock = dt.datetime.now(UTC).replace(microsecond=0)

    # -- bookkeeping -------------------------------------------------------------------
    def _log(self, method: str, args: tuple, requests: int = 1) -> None:
        with self._lock:
            self.calls.append(Call(method, args, requests))

    def methods(self) -> list[str]:
        """Names of the calls made so far, in order."""
        with self._lock:
            return [c.method for c in self.calls]

    @property
    def requests(self) -> int:
        """Graph requests the real ``CalendarEvents`` would have made for the calls so far."""
        with self._lock:
            return sum(c.requests for c in self.calls)

    def reset_calls(self) -> None:
        """Forget the call log."""
        with self._lock:
            self.calls.clear()

    def fail(self, method: str, status: int = 500, code: str = "InternalServerError",
             message: str = "injected failure", count: int = 1, match: str | None = None,
             after: bool = False) -> None:
        """Make the next ``count`` calls of ``method`` (whose first argument is ``match``,
        when given) raise the Graph error for ``status``/``code``; with ``after`` the call's
        effect happens first (a lost answer)."""
        error = graph_error(status, code, message, operation=method, mailbox=self.mailbox)
        with self._lock:
            self._faults.append(_Fault(method, error, count, match, after))

    def _fault(self, method: str, first: object, after: bool) -> None:
        with self._lock:
            for fault in self._faults:
                if (fault.method == method and fault.after == after and fault.count > 0
                        and (fault.match is None or fault.match == first)):
                    fault.count -= 1
                    raise fault.error

    def _bump(self, rec: _Record) -> None:
        """A write: new sequence number, changeKey and lastModifiedDateTime."""
        self._seq += 1
        self._clock += dt.timedelta(seconds=1)
        rec.seq = self._seq
        rec.data["changeKey"] = f"ck{next(self._keys):05d}"
        rec.data["lastModifiedDateTime"] = fmt_offset(self._clock)

    def _not_found(self, operation: str) -> GraphError:
        return graph_error(404, "ErrorItemNotFound",
                           "The specified object was not found in the store.", operation,
                           self.mailbox)

    # -- test controls -----------------------------------------------------------------
    def housekeep(self, event_id: str) -> None:
        """Move the changeKey and lastModifiedDateTime of an event (an occurrence id: its
        master) without changing anything else, as Exchange does by itself."""
        with self._lock:
            rec, _ = self._resolve(event_id, "housekeep")
            self._bump(rec)

    def expire(self) -> None:
        """Every delta link issued so far answers 410 ``syncStateNotFound``."""
        with self._lock:
            self._rounds.clear()

    def purge(self, event_id: str) -> None:
        """A deleted event leaves Deleted Items: reads by id answer 404 from now on."""
        with self._lock:
            rec = self._records.get(event_id)
            if rec is not None and rec.deleted:
                del self._records[event_id]

    def outlook_create(self, body: dict, organizer: str | None = None) -> str:
        """Create an event as Outlook would (no transactionId, nothing in ``removed_ids``);
        ``organizer``: someone else's address, making this an invitation. Returns its id."""
        with self._lock:
            rec = self._new(body)
            if organizer:
                rec.data["isOrganizer"] = False
                rec.data["organizer"] = {"emailAddress": {"name": organizer.split("@")[0],
                                                          "address": organizer}}
                rec.data["responseStatus"] = {"response": "notResponded",
                                              "time": "0001-01-01T00:00:00Z"}
            return rec.id

    def outlook_update(self, event_id: str, body: dict) -> None:
        """Change an event or occurrence as Outlook would."""
        with self._lock:
            self._write(event_id, body, None, "outlook update")

    def outlook_delete(self, event_id: str) -> None:
        """Delete an event (or cancel an occurrence) as Outlook would: the gateway did not
        cause it, so it is not in ``removed_ids``."""
        with self._lock:
            self._remove(event_id, None, "outlook delete")

    def live_ids(self) -> set[str]:
        """Ids of the single events and series masters in the calendar (deleted ones aside)."""
        with self._lock:
            return {i for i, r in self._records.items() if not r.deleted}

    def peek(self, event_id: str) -> dict | None:
        """The event as a read by id shows it (deleted ones too), without logging a call."""
        with self._lock:
            return self._by_id(event_id)

    def exception_data(self, master_id: str) -> dict[str, dict]:
        """Original start text -> stored exception of a series (test inspection)."""
        with self._lock:
            return copy.deepcopy(self._records[master_id].exceptions)

    def cancelled_starts(self, master_id: str) -> set[str]:
        """Original start texts of the cancelled occurrences of a series."""
        with self._lock:
            return set(self._records[master_id].cancelled)

    # -- the store ---------------------------------------------------------------------
    def _new(self, body: dict) -> _Record:
        event_id = f"evt{next(self._ids):04d}"
        data = {
            "id": event_id, "createdDateTime": fmt_offset(self._clock + dt.timedelta(
                seconds=1)), "categories": [], "originalStartTimeZone": "UTC",
            "originalEndTimeZone": "UTC", "iCalUId": f"ical-{event_id}",
            "reminderMinutesBeforeStart": 15, "isReminderOn": True, "subject": "",
            "importance": "normal", "sensitivity": "normal", "isAllDay": False,
            "isCancelled": False, "isOrganizer": True, "responseRequested": True,
            "seriesMasterId": None, "showAs": "busy", "type": "singleInstance",
            "isOnlineMeeting": False, "onlineMeetingProvider": "unknown", "onlineMeeting": None,
            "onlineMeetingUrl": None, "allowNewTimeProposals": True,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "text", "content": ""}, "location": {"displayName": ""},
            "locations": [], "recurrence": None, "attendees": [],
            "organizer": {"emailAddress": {"name": self.owner_name, "address": self.mailbox}},
        }
        rec = _Record(event_id, data, {})
        self._apply(rec, rec.data, body, master=True)
        self._records[event_id] = rec
        self._bump(rec)
        return rec

    def _apply(self, rec: _Record, data: dict, body: dict, master: bool) -> None:
        """Write the writable properties of ``body`` into ``data``."""
        for name, value in body.items():
            if name == "singleValueExtendedProperties":
                for prop in value or []:
                    rec.ext[str(prop["id"]).lower()] = (prop["id"], prop.get("value"))
                continue
            if name in READ_ONLY or name.startswith("@"):
                continue
            data[name] = copy.deepcopy(value)
            if name == "start":
                data["originalStartTimeZone"] = value.get("timeZone") or "UTC"
            elif name == "end":
                data["originalEndTimeZone"] = value.get("timeZone") or "UTC"
        if master:
            if data.get("recurrence"):
                data["recurrence"] = _fill_recurrence(data["recurrence"], data["start"])
                data["type"] = "seriesMaster"
            else:
                data["recurrence"] = None
                data["type"] = "singleInstance"
        start, end = parse_dtz(data["start"]), parse_dtz(data["end"])
        if end < start:
            raise graph_error(400, "ErrorCalendarEndDateIsEarlierThanStartDate",
                              "EndDate is earlier than StartDate", mailbox=self.mailbox)

    def _resolve(self, event_id: str, operation: str,
                 deleted_ok: bool = False) -> tuple[_Record, _Instance | None]:
        """(record, instance or None) of an event or occurrence id. Raises 404."""
        master_id, _, day = event_id.partition(".OCC.")
        rec = self._records.get(master_id)
        if rec is None or (rec.deleted and not deleted_ok):
            raise self._not_found(operation)
        if not day:
            return rec, None
        if not rec.is_series or rec.deleted:
            raise self._not_found(operation)
        wanted = dt.date.fromisoformat(day)
        tz = _series_zone(rec.data)
        lo = dt.datetime.combine(wanted, dt.time(), tzinfo=tz)
        for original in _starts(rec.data, lo - dt.timedelta(days=1), lo + dt.timedelta(days=2)):
            if original.date() == wanted and fmt_offset(original) not in rec.cancelled:
                return rec, self._instance(rec, original)
        raise self._not_found(operation)

    def _instance(self, rec: _Record, original: dt.datetime) -> _Instance:
        start, end = original, _shift_end(rec.data, original)
        exception = rec.exceptions.get(fmt_offset(original))
        if exception is not None:
            start = parse_dtz(exception["start"]) if "start" in exception else start
            end = parse_dtz(exception["end"]) if "end" in exception else end
        return _Instance(occurrence_id(rec.id, original), original, start, end, exception)

    def _instances(self, rec: _Record, lo: dt.datetime, hi: dt.datetime) -> list[_Instance]:
        """Occurrences and exceptions of a series overlapping [lo, hi), cancelled aside."""
        margin = _shift_end(rec.data, lo) - lo + dt.timedelta(days=2)
        originals = {fmt_offset(s): s for s in _starts(rec.data, lo - margin, hi + margin)}
        out = []
        for text, original in originals.items():
            if text in rec.cancelled:
                continue
            inst = self._instance(rec, original)
            if _overlaps(inst.start, inst.end, lo, hi):
                out.append(inst)
        return sorted(out, key=lambda i: (i.start, i.id))

    def _instance_data(self, rec: _Record, inst: _Instance) -> dict:
        data = copy.deepcopy(rec.data)
        data.update({
            "id": inst.id, "type": "occurrence", "seriesMasterId": rec.id, "recurrence": None,
            "originalStart": fmt_offset(inst.original),
            "start": {"dateTime": fmt_local(inst.original.replace(tzinfo=None)) if
                      rec.data.get("isAllDay") else fmt_local(inst.original.astimezone(
                          zone(rec.data["start"].get("timeZone")))),
                      "timeZone": rec.data["start"].get("timeZone") or "UTC"},
        })
        end = _shift_end(rec.data, inst.original)
        data["end"] = {"dateTime": fmt_local(end.replace(tzinfo=None)) if rec.data.get(
            "isAllDay") else fmt_local(end.astimezone(zone(rec.data["end"].get("timeZone")))),
            "timeZone": rec.data["end"].get("timeZone") or "UTC"}
        if inst.exception is not None:
            data.update(copy.deepcopy(inst.exception))
            data["type"] = "exception"
        return data

    def _render(self, data: dict, ext: dict | None, by_id: bool = False,
                exceptions: list[tuple[dict, dict]] | None = None,
                fields: tuple[str, ...] | None = None) -> dict:
        """JSON of an event as Graph shows it with ``Prefer: outlook.timezone="UTC"``."""
        out: dict = {"@odata.etag": f'W/"{data.get("changeKey", "")}"'}
        for name, value in data.items():
            if fields is not None and name not in fields and name != "id":
                continue
            if name in ("start", "end") and value:
                if data.get("isAllDay"):
                    value = {"dateTime": fmt_local(parse_dtz(value).replace(tzinfo=None)),
                             "timeZone": "UTC"}
                else:
                    value = {"dateTime": fmt_local(parse_dtz(value).astimezone(UTC)),
                             "timeZone": "UTC"}
            out[name] = copy.deepcopy(value)
        if ext is not None and ext:
            out["singleValueExtendedProperties"] = [{"id": i, "value": v}
                                                    for i, v in ext.values()]
        if by_id and exceptions is not None:
            out["exceptionOccurrences"] = [self._render(d, e) for d, e in exceptions]
        return out

    def _by_id(self, event_id: str) -> dict | None:
        """A read by id: masters with cancelledOccurrences and exceptionOccurrences."""
        try:
            rec, inst = self._resolve(event_id, "read event", deleted_ok=True)
        except GraphError:
            return None
        if inst is not None:
            return self._render(self._instance_data(rec, inst), rec.ext)
        if not rec.is_series:
            return self._render(rec.data, rec.ext, by_id=True)
        tz = _series_zone(rec.data)
        out = self._render(rec.data, rec.ext, by_id=True, exceptions=[
            (self._instance_data(rec, self._instance(rec, _parse_offset(t).astimezone(tz))),
             rec.ext) for t in sorted(rec.exceptions)])
        out["cancelledOccurrences"] = [
            f"OID.{rec.id}.{_parse_offset(t).astimezone(tz).date().isoformat()}"
            for t in sorted(rec.cancelled)]
        return out

    def _listed(self) -> list[_Record]:
        return [r for r in self._records.values() if not r.deleted]

    def _write(self, event_id: str, body: dict, odata_etag: str | None,
               operation: str) -> dict:
        rec, inst = self._resolve(event_id, operation)
        self._check_etag(rec, odata_etag, operation)
        if inst is None:
            before = (copy.deepcopy(rec.data.get("recurrence")), rec.data["start"],
                      rec.data["end"])
            shape = (before[0], parse_dtz(before[1]), parse_dtz(before[2]))
            self._apply(rec, rec.data, body, master=True)
            after = (rec.data.get("recurrence"), parse_dtz(rec.data["start"]),
                     parse_dtz(rec.data["end"]))
            if rec.is_series and after != shape:
                # Exchange rebuilds a series whose pattern or times change: its exceptions
                # and cancellations are gone.
                rec.exceptions.clear()
                rec.cancelled.clear()
            self._bump(rec)
            return self._render(rec.data, None)
        key = fmt_offset(inst.original)
        exception = copy.deepcopy(rec.exceptions.get(key) or {})
        scratch = {"start": exception.get("start") or self._instance_data(rec, inst)["start"],
                   "end": exception.get("end") or self._instance_data(rec, inst)["end"]}
        scratch.update(exception)
        self._apply(rec, scratch, {k: v for k, v in body.items()
                                   if k not in ("recurrence", "singleValueExtendedProperties")},
                    master=False)
        rec.exceptions[key] = scratch
        self._bump(rec)  # writing an exception writes its master
        return self._render(self._instance_data(rec, self._instance(rec, inst.original)),
                            None)

    def _remove(self, event_id: str, odata_etag: str | None, operation: str) -> None:
        rec, inst = self._resolve(event_id, operation)
        self._check_etag(rec, odata_etag, operation)
        if inst is None:
            rec.deleted = True
        else:
            key = fmt_offset(inst.original)
            rec.exceptions.pop(key, None)
            rec.cancelled.add(key)
        self._bump(rec)

    def _check_etag(self, rec: _Record, odata_etag: str | None, operation: str) -> None:
        if odata_etag is not None and odata_etag != f'W/"{rec.data["changeKey"]}"':
            raise graph_error(412, "ErrorIrresolvableConflict",
                              "The change key passed in the request does not match the "
                              "current change key of the item.", operation, self.mailbox)

    def _window_items(self, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dict, str]]:
        """(item JSON, record id) of every single event and instance in [lo, hi)."""
        found = []
        for rec in self._listed():
            if rec.is_series:
                for inst in self._instances(rec, lo, hi):
                    found.append((inst.start, self._render(self._instance_data(rec, inst), None),
                                  rec.id))
            else:
                start, end = parse_dtz(rec.data["start"]), parse_dtz(rec.data["end"])
                if _overlaps(start, end, lo, hi):
                    found.append((start, self._render(rec.data, None), rec.id))
        found.sort(key=lambda x: (x[0], x[1]["id"]))
        return [(item, rid) for _, item, rid in found]

    def _pages(self, items: list[dict]) -> list[list[dict]]:
        size = max(self.page_size, 1)
        return [items[i:i + size] for i in range(0, len(items), size)] or [[]]

    # -- the CalendarEvents interface ----------------------------------------------------
    def list_masters(self) -> Iterator[dict]:
        """Every single event and series master with extended properties (no
        cancellations or exceptions: those only by id)."""
        with self._lock:
            self._fault("list_masters", None, False)
            items = [self._render(r.data, r.ext) for r in self._listed()]
            self._log("list_masters", (), len(self._pages(items)))
        return iter(items)

    def list_keys(self) -> Iterator[dict]:
        """``{"id", "type", "changeKey"}`` of every single event and series master."""
        with self._lock:
            self._fault("list_keys", None, False)
            items = [self._render(r.data, None, fields=("id", "type", "changeKey"))
                     for r in self._listed()]
            self._log("list_keys", (), len(self._pages(items)))
        return iter(items)

    def view_delta_pages(self, start: dt.datetime | None, end: dt.datetime | None,
                         link: str | None = None) -> Iterator[dict]:
        """Pages of a ``calendarView/delta`` round (lazy, as the real one: errors are raised
        when the first page is asked for)."""
        with self._lock:
            pages = self._delta(start, end, link)
        yield from pages

    def _delta(self, start, end, link) -> list[dict]:
        self._fault("view_delta_pages", link, False)
        previous = None
        if link is not None:
            token = parse_qs(urlsplit(link).query).get("$deltatoken", [""])[0]
            previous = self._rounds.get(token)
            if previous is None:
                self._log("view_delta_pages", (link,), 1)
                raise graph_error(410, "syncStateNotFound",
                                  "The sync state generation is not found. The delta token "
                                  "is expired and data must be synchronized again.",
                                  "track changes", self.mailbox)
            window = previous.window
        else:
            if start is None or end is None:
                raise graph_error(400, "ErrorInvalidParameter",
                                  "This request requires a time window specified by the "
                                  "query string parameters StartDateTime and EndDateTime.",
                                  "track changes", self.mailbox)
            window = (start, end)
        items = self._window_items(*window)
        seen = {item["id"]: rid for item, rid in items}
        out = [{"@odata.type": "#microsoft.graph.event", **item} for item, rid in items
               if previous is None or self._records[rid].seq > previous.seq
               or item["id"] not in previous.seen]
        if previous is not None:
            shown, before = set(seen.values()), set(previous.seen.values())
            gone = sorted(i for i in previous.seen if i not in seen)
            outside = sorted(r.id for r in self._records.values()
                             if r.seq > previous.seq and r.id not in shown
                             and r.id not in before)
            out += [{"@odata.type": "#microsoft.graph.event", "id": i,
                     "@removed": {"reason": "deleted"}} for i in gone + outside]
        pages = self._pages(out)
        token = f"t{next(self._tokens)}"
        self._rounds[token] = _Round(window, self._seq, seen)
        bodies = []
        for number, page in enumerate(pages):
            body: dict = {"value": page}
            if number == len(pages) - 1:
                body["@odata.deltaLink"] = (f"{LINK_BASE}/{self.calendar_id}/calendarView/"
                                            f"delta?$deltatoken={token}")
            else:
                body["@odata.nextLink"] = (f"{LINK_BASE}/{self.calendar_id}/calendarView/"
                                           f"delta?$skiptoken={token}-{number + 1}")
            bodies.append(body)
        self._log("view_delta_pages", (link,), len(bodies))
        self.delta_history.append(copy.deepcopy(bodies))
        return bodies

    def get_many(self, event_ids: list[str]) -> dict[str, dict | None]:
        """Events by id (masters with ``cancelledOccurrences`` and ``exceptionOccurrences``),
        deleted ones included; ``None`` for ids Graph does not know (404)."""
        with self._lock:
            self._log("get_many", tuple(event_ids), math.ceil(len(event_ids) / BATCH_SIZE))
            self._fault("get_many", None, False)
            return {i: self._by_id(i) for i in event_ids}

    def find_by_hrefs(self, hrefs: list[str]) -> dict[str, list[dict]]:
        """Events of the calendar (deleted ones aside) whose kept href is one of ``hrefs``,
        in list form (no cancellations or exceptions)."""
        with self._lock:
            self._log("find_by_hrefs", tuple(hrefs), math.ceil(len(hrefs) / BATCH_SIZE))
            self._fault("find_by_hrefs", None, False)
            found: dict[str, list[dict]] = {h: [] for h in hrefs}
            for rec in self._listed():
                for prop_id, value in rec.ext.values():
                    if prop_id.lower().endswith("name radicalegraph.href") and value in found:
                        found[value].append(self._render(rec.data, rec.ext))
            return found

    def present(self, ical_uids: dict[str, str]) -> set[str]:
        """Which of these events (id -> ``iCalUId``) the calendar itself still holds: a
        folder-scoped list filtered on ``iCalUId`` per event (deleted ones are not listed)."""
        with self._lock:
            self._log("present", tuple(ical_uids), math.ceil(len(ical_uids) / BATCH_SIZE))
            self._fault("present", None, False)
            return {i for i, uid in ical_uids.items()
                    if any(r.id == i and r.data.get("iCalUId") == uid for r in self._listed())}

    def get(self, event_id: str) -> dict:
        """One event by id (deleted ones too); 404 ``NotFound`` when unknown."""
        with self._lock:
            self._log("get", (event_id,))
            self._fault("get", event_id, False)
            found = self._by_id(event_id)
            if found is None:
                raise self._not_found("read event")
            return found

    def create(self, body: dict, transaction_id: str) -> dict:
        """POST an event. A used ``transaction_id`` (its event alive or deleted) answers 400
        ``ErrorDuplicateTransactionId``. The answer has no extended properties."""
        with self._lock:
            self._log("create", (transaction_id,))
            self._fault("create", transaction_id, False)
            if transaction_id in self._transactions:
                raise graph_error(400, "ErrorDuplicateTransactionId",
                                  "Your request can't be completed. The TransactionId "
                                  "specified in the request has already been used to create "
                                  "a different event.", "create event", self.mailbox)
            rec = self._new(body)
            rec.data["transactionId"] = transaction_id
            self._transactions.add(transaction_id)
            answer = self._render(rec.data, None)
            self._fault("create", transaction_id, True)
            return answer

    def update(self, event_id: str, body: dict, odata_etag: str | None = None) -> dict:
        """PATCH an event or an occurrence (making it an exception); 412 when ``odata_etag``
        is not the current ``@odata.etag`` (of the master, for an occurrence)."""
        with self._lock:
            self._log("update", (event_id,))
            self._fault("update", event_id, False)
            answer = self._write(event_id, body, odata_etag, "update event")
            self._fault("update", event_id, True)
            return answer

    def delete(self, event_id: str, odata_etag: str | None = None,
               operation: str = "delete event") -> None:
        """DELETE an event (it stays readable by id) or an occurrence (cancels it)."""
        with self._lock:
            self._log("delete", (event_id,))
            self._fault("delete", event_id, False)
            self._remove(event_id, odata_etag, operation)
            self.removed_ids.add(event_id)
            self._fault("delete", event_id, True)

    def respond(self, event_id: str, action: str) -> None:
        """accept, decline or tentativelyAccept a meeting someone else organizes."""
        with self._lock:
            self._log("respond", (event_id, action))
            self._fault("respond", event_id, False)
            rec, _ = self._resolve(event_id, f"{action} meeting")
            if rec.data.get("isOrganizer", True):
                raise graph_error(400, "ErrorInvalidRequest",
                                  "Your request can't be completed. You can't respond to "
                                  "a meeting you organized.", f"{action} meeting",
                                  self.mailbox)
            rec.data["responseStatus"] = {"response": RESPONSES[action],
                                          "time": fmt_offset(self._clock)}
            self._bump(rec)

    def instances(self, event_id: str, start: dt.datetime, end: dt.datetime) -> list[dict]:
        """Occurrences and exceptions of a live series overlapping [start, end) (cancelled
        ones are not listed); 404 for anything else."""
        with self._lock:
            self._log("instances", (event_id, start, end))
            self._fault("instances", event_id, False)
            rec, inst = self._resolve(event_id, "list instances")
            if inst is not None or not rec.is_series:
                raise graph_error(400, "ErrorInvalidRequest",
                                  "The instances of a non-recurring event cannot be listed.",
                                  "list instances", self.mailbox)
            return [self._render(self._instance_data(rec, i), None, fields=INSTANCE_FIELDS)
                    for i in self._instances(rec, start, end)]


# -- recurrence --------------------------------------------------------------------------


def _fill_recurrence(value: dict, start: dict) -> dict:
    """A ``patternedRecurrence`` with Graph's defaults filled in."""
    pattern = dict(value.get("pattern") or {})
    rng = dict(value.get("range") or {})
    pattern.setdefault("interval", 1)
    pattern["daysOfWeek"] = [d.lower() for d in pattern.get("daysOfWeek") or []]
    pattern["firstDayOfWeek"] = (pattern.get("firstDayOfWeek") or "sunday").lower()
    pattern.setdefault("index", "first")
    pattern.setdefault("month", 0)
    pattern.setdefault("dayOfMonth", 0)
    rng["type"] = rng.get("type") or "noEnd"
    rng["startDate"] = rng.get("startDate") or str(start["dateTime"])[:10]
    rng["endDate"] = rng.get("endDate") or "0001-01-01"
    rng["recurrenceTimeZone"] = rng.get("recurrenceTimeZone") or start.get("timeZone") or "UTC"
    rng["numberOfOccurrences"] = rng.get("numberOfOccurrences") or 0
    if pattern.get("type") not in ("daily", "weekly"):
        raise NotImplementedError(f"MemoryCalendar expands daily and weekly series only, "
                                  f"not {pattern.get('type')!r}")
    return {"pattern": pattern, "range": rng}


def _series_zone(data: dict) -> dt.tzinfo:
    rng = (data.get("recurrence") or {}).get("range") or {}
    return zone(rng.get("recurrenceTimeZone") or data["start"].get("timeZone"))


def _starts(data: dict, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """Original starts (aware, series zone) of a series in [lo, hi)."""
    tz = _series_zone(data)
    pattern, rng = data["recurrence"]["pattern"], data["recurrence"]["range"]
    first = parse_dtz(data["start"]).astimezone(tz)
    if data.get("isAllDay"):
        first = parse_dtz(data["start"]).replace(tzinfo=tz)
    dtstart = dt.datetime.combine(dt.date.fromisoformat(rng["startDate"]),
                                  first.time().replace(tzinfo=None))
    kwargs: dict = {"dtstart": dtstart, "interval": int(pattern.get("interval") or 1)}
    if pattern["type"] == "weekly":
        kwargs["byweekday"] = [WEEKDAYS[d] for d in pattern["daysOfWeek"]] or None
        kwargs["wkst"] = WEEKDAYS[pattern["firstDayOfWeek"]]
    if rng["type"] == "numbered":
        kwargs["count"] = int(rng["numberOfOccurrences"])
    elif rng["type"] == "endDate":
        kwargs["until"] = dt.datetime.combine(dt.date.fromisoformat(rng["endDate"]),
                                              dt.time(23, 59, 59))
    rule = rrule.rrule(rrule.DAILY if pattern["type"] == "daily" else rrule.WEEKLY, **kwargs)
    low = lo.astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=1)
    high = hi.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=1)
    found = [s.replace(tzinfo=tz) for s in rule.between(low, high, inc=True)]
    return [s for s in found if lo <= s < hi]


def _shift_end(data: dict, original: dt.datetime) -> dt.datetime:
    """End of the occurrence starting at ``original``: the master's wall-clock length."""
    start, end = parse_dtz(data["start"]), parse_dtz(data["end"])
    wall = end.replace(tzinfo=None) - start.replace(tzinfo=None)
    return (original.replace(tzinfo=None) + wall).replace(tzinfo=original.tzinfo)


def _overlaps(start: dt.datetime, end: dt.datetime, lo: dt.datetime, hi: dt.datetime) -> bool:
    return start < hi and (end > lo or (end == start == lo))


def _parse_offset(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
