"""Free/busy only: a calendar shared as Exchange role ``freeBusyRead`` answers a CalDAV
free-busy-query REPORT (RFC 4791 section 7.10) from Graph's ``getSchedule`` and nothing else.

Sources: RFC 4791 section 7.10 (free-busy-query, answered with one VFREEBUSY), Graph
api/calendar-getschedule.md (``POST {user}/calendar/getSchedule`` with ``schedules``,
``startTime``/``endTime`` as dateTimeTimeZone, ``availabilityViewInterval`` 5-1440 minutes, a
period under 62 days else 400 ``ErrorTimeIntervalTooBig``; ``value[].scheduleItems[]`` with
``status`` free/tentative/busy/oof/workingElsewhere/unknown and ``start``/``end``; times in
UTC with ``Prefer: outlook.timezone="UTC"``), resources/calendarpermission.md (the role
``freeBusyRead``: free/busy only, no event data).

Radicale (3.9, ``radicale/app/report.py``) answers the REPORT by calling
``collection.get_filtered`` with a VCALENDAR/VEVENT time-range filter and turning the
returned events into FREEBUSY periods (``_fbtype_for_component``: STATUS TENTATIVE gives
BUSY-TENTATIVE, any other opaque event BUSY). :func:`busy_blocks` therefore hands it one
opaque event per busy period of the schedule; no other request ever returns event data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate

import icalendar
from radicale import item as radicale_item
from radicale import storage as radicale_storage
from radicale.item import filter as radicale_filter

from ..graph import AccessDenied, GraphError, NotFound
from ..translation.timezones import parse_graph_datetime

UTC = dt.UTC
# getSchedule takes a period under 62 days (ErrorTimeIntervalTooBig): 61 days per request.
MAX_REQUEST_SPAN = dt.timedelta(days=61)
# availabilityViewInterval (5-1440 minutes): unused by us, the largest keeps the view short.
VIEW_INTERVAL = 1440
PREFER_UTC = 'outlook.timezone="UTC"'
PRODID = "-//radicale-graph//free-busy//EN"

# Graph status -> (iCalendar STATUS, X-MICROSOFT-CDO-BUSYSTATUS). Radicale's FBTYPE comes
# from STATUS only: TENTATIVE -> BUSY-TENTATIVE, CONFIRMED -> BUSY. It has no way to a
# BUSY-UNAVAILABLE period, so oof is BUSY there; X-MICROSOFT-CDO-BUSYSTATUS ([MS-OXCICAL]
# 2.1.3.1.1.20.8) keeps the exact value for readers of the event.
_STATUS = {
    "tentative": ("TENTATIVE", "TENTATIVE"),
    "busy": ("CONFIRMED", "BUSY"),
    "oof": ("CONFIRMED", "OOF"),
    "workingelsewhere": ("CONFIRMED", "WORKINGELSEWHERE"),
    "unknown": ("CONFIRMED", "UNKNOWN"),
}


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _graph_time(value: dt.datetime) -> dict:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _schedule_error(address: str, error: dict, mailbox: str, operation: str) -> GraphError:
    """The GraphError subclass closest to a ``freeBusyError`` (``message``,
    ``responseCode``) of one schedule entry; Graph answered 200 for the whole call."""
    code = str(error.get("responseCode") or "FreeBusyError")
    message = f"free/busy of {address} unavailable: {error.get('message') or '(no message)'}"
    low = code.lower()
    if "notfound" in low:
        return NotFound(404, code, message, mailbox, operation)
    if "accessdenied" in low or "nofreebusyaccess" in low or "denied" in low:
        return AccessDenied(403, code, message, mailbox, operation)
    return GraphError(502, code, message, mailbox, operation)


def fetch_schedule(client, user_path: str, mailbox: str, address: str,
                   start: dt.datetime, end: dt.datetime) -> list[dict]:
    """The ``scheduleItems`` of ``address`` over [``start``, ``end``) (aware datetimes,
    converted to UTC), from ``POST {user_path}/calendar/getSchedule``
    (api/calendar-getschedule.md) in consecutive requests of at most 61 days each (Graph
    refuses a period of 62 days or more with 400 ``ErrorTimeIntervalTooBig``).

    ``client`` is a :class:`radicale_graph.graph.GraphClient` (anything with its
    ``request``), ``user_path`` the caller's path (``/users/alice@contoso.com`` or ``/me``),
    ``mailbox`` the mailbox named in errors and used for throttling. Requests carry
    ``Prefer: outlook.timezone="UTC"``, so the items' ``start``/``end`` are UTC
    dateTimeTimeZone values. Returns the items in Graph's shape (``status``, ``start``,
    ``end``, and whatever else Graph shows the caller) plus ``scheduleId`` = ``address``,
    in time order; an item met in two requests (it spans their border) is returned once.
    An empty list when ``end <= start``.

    Raises ValueError for naive datetimes; the client's GraphError subclasses; for a
    schedule entry carrying ``error`` (``freeBusyError``): NotFound (``...NotFound``
    codes such as ErrorMailRecipientNotFound), AccessDenied (access denied codes) or
    GraphError, whose message names ``address`` and Graph's error message; GraphError
    ``InvalidResponse`` when the body has no entry for ``address``.
    """
    answer = fetch_schedules(client, user_path, mailbox, [address], start, end)[
        address.lower()]
    if isinstance(answer, GraphError):
        raise answer
    return answer


# getSchedule takes up to 20 schedules per call (api/calendar-getschedule.md).
MAX_SCHEDULES = 20


def fetch_schedules(client, user_path: str, mailbox: str, addresses: Iterable[str],
                    start: dt.datetime, end: dt.datetime) -> dict[str, list[dict] | GraphError]:
    """The ``scheduleItems`` of several people, rooms or equipment over [``start``, ``end``)
    (aware datetimes, converted to UTC), with as few ``POST {user_path}/calendar/getSchedule``
    requests as Graph allows (api/calendar-getschedule.md): ``schedules`` holds up to
    :data:`MAX_SCHEDULES` (20) addresses per request and each request covers at most 61 days
    (62 days or more is 400 ``ErrorTimeIntervalTooBig``), so n addresses over d days cost
    ceil(n / 20) * ceil(d / 61) requests, in chunk order then time order.

    ``client``, ``user_path`` and ``mailbox`` are as for :func:`fetch_schedule` (the path is
    the requester's: ``/users/{id}`` with the app-only token, ``/me`` with a person's own).
    Addresses are compared case-insensitively; duplicates are asked for once. Returns a dict
    keyed by lower-case address: the items (Graph's shape plus ``scheduleId`` = the address
    as given, in time order, an item met in two requests once) or, for an entry Graph
    answered with ``error`` (``freeBusyError``) or left out, the GraphError that
    :func:`fetch_schedule` would raise (NotFound, AccessDenied, GraphError) -- returned, not
    raised, so one unknown address does not hide the others. Empty lists when
    ``end <= start``.

    Raises ValueError for naive datetimes and the client's GraphError subclasses for a
    failed request (throttling, network, auth)."""
    start, end = _utc(start, "start"), _utc(end, "end")
    operation = "read free/busy"
    path = f"{user_path.rstrip('/')}/calendar/getSchedule"
    wanted: dict[str, str] = {}
    for address in addresses:
        wanted.setdefault(address.lower(), address)
    found: dict[str, dict[tuple, dict]] = {key: {} for key in wanted}
    failed: dict[str, GraphError] = {}
    keys = list(wanted)
    for first in range(0, len(keys), MAX_SCHEDULES):
        chunk = keys[first:first + MAX_SCHEDULES]
        low = start
        while low < end:
            high = min(low + MAX_REQUEST_SPAN, end)
            asked = [wanted[key] for key in chunk if key not in failed]
            if not asked:
                break
            body = {"schedules": asked, "startTime": _graph_time(low),
                    "endTime": _graph_time(high), "availabilityViewInterval": VIEW_INTERVAL}
            resp = client.request("POST", path, mailbox=mailbox, operation=operation,
                                  json=body, headers={"Prefer": PREFER_UTC})
            entries = [e for e in (resp.body or {}).get("value") or [] if isinstance(e, dict)]
            by_id = {str(e.get("scheduleId", "")).lower(): e for e in entries}
            for index, address in enumerate(asked):
                entry = by_id.get(address.lower())
                if entry is None and len(entries) == len(asked) and (
                        len(asked) == 1 or not entries[index].get("scheduleId")):
                    entry = entries[index]  # Graph answers in the order asked
                key = address.lower()
                if entry is None:
                    failed[key] = GraphError(
                        resp.status, "InvalidResponse",
                        f"getSchedule answered no schedule for {address}", mailbox, operation,
                        (resp.headers or {}).get("request-id"))
                    continue
                if entry.get("error"):
                    error = entry["error"] if isinstance(entry["error"], dict) else {
                        "message": str(entry["error"])}
                    failed[key] = _schedule_error(address, error, mailbox, operation)
                    continue
                for item in entry.get("scheduleItems") or []:
                    item_key = (str(item.get("status", "")).lower(),
                                schedule_instant(item.get("start")),
                                schedule_instant(item.get("end")))
                    found[key].setdefault(item_key, {**item, "scheduleId": address})
            low = high
    result: dict[str, list[dict] | GraphError] = {}
    for key in keys:
        if key in failed:
            result[key] = failed[key]
        else:
            items = found[key]
            result[key] = [items[k] for k in sorted(items, key=lambda k: (k[1], k[2], k[0]))]
    return result


def schedule_instant(value) -> dt.datetime:
    """A dateTimeTimeZone of a schedule item as an aware UTC datetime (UTC when no zone is
    named). Raises ValueError when it is missing or malformed."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise ValueError(f"schedule item time missing or malformed: {value!r}")
    return parse_graph_datetime(value, "UTC").astimezone(UTC)


def _blocks(items: Iterable[dict]) -> Iterator[tuple[str, str, dt.datetime, dt.datetime]]:
    for item in items:
        status = str(item.get("status") or "busy")
        if status.lower() == "free":
            continue
        ical_status, busystatus = _STATUS.get(status.lower(), ("CONFIRMED", "BUSY"))
        start, end = schedule_instant(item.get("start")), schedule_instant(item.get("end"))
        address = str(item.get("scheduleId") or "")
        key = f"{address.lower()}|{start.isoformat()}|{end.isoformat()}|{status.lower()}"
        uid = hashlib.sha256(key.encode()).hexdigest()[:40]
        cal = icalendar.Calendar()
        cal.add("prodid", PRODID)
        cal.add("version", "2.0")
        event = icalendar.Event()
        event.add("uid", f"{uid}@free-busy.radicale-graph")
        event.add("dtstamp", start)
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("summary", "Busy")
        event.add("transp", "OPAQUE")
        event.add("status", ical_status)
        event.add("class", "PRIVATE")
        event.add("x-microsoft-cdo-busystatus", busystatus)
        cal.add_component(event)
        yield f"{uid}.ics", cal.to_ical().decode(), start, end


def busy_blocks(items: list[dict]) -> list[tuple[str, str]]:
    """(href, iCalendar text) for each schedule item whose ``status`` is not ``free``: one
    VCALENDAR holding one VEVENT with DTSTART/DTEND in UTC (from the item's ``start`` and
    ``end``, dateTimeTimeZone), SUMMARY "Busy", TRANSP OPAQUE, CLASS PRIVATE, DTSTAMP = the
    start (deterministic), STATUS TENTATIVE for ``tentative`` else CONFIRMED (Radicale: FBTYPE
    BUSY-TENTATIVE resp. BUSY; ``oof`` cannot become BUSY-UNAVAILABLE there) and
    X-MICROSOFT-CDO-BUSYSTATUS TENTATIVE/BUSY/OOF/WORKINGELSEWHERE/UNKNOWN. A missing or
    unknown status counts as busy.

    The UID (and the href, ``{uid}.ics``) is a sha256 of the item's ``scheduleId`` (the
    address, set by :func:`fetch_schedule`), start, end and status: the same for the same
    period on every call. Pure; raises ValueError for an item without usable times."""
    return [(href, text) for href, text, _, _ in _blocks(items)]


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


class FreeBusyCollection(radicale_storage.BaseCollection):
    """A calendar its reader may see as free/busy only (Exchange role ``freeBusyRead``,
    resources/calendarpermission.md): answers a free-busy-query REPORT (RFC 4791 section
    7.10, Radicale rights letter "f") from ``fetch`` and serves no event data.

    ``path`` is the collection's path (``owner@contoso.com/calendar``), ``display_name`` its
    D:displayname, ``denial`` the message of the PermissionError (reported through
    ``report``, which records it for the HTTP response and returns what to raise) for every
    write, and for sync-collection. ``fetch(start, end)`` returns schedule items
    (:func:`fetch_schedule`'s shape) for aware UTC datetimes [start, end); errors it raises
    are passed through ``report`` and raised. ``max_days`` bounds an open-ended query:
    a missing start becomes now - max_days, a missing end now + max_days (days).
    """

    def __init__(self, path: str, display_name: str, denial: str,
                 fetch: Callable[[dt.datetime, dt.datetime], list[dict]],
                 report: Callable[[BaseException], BaseException],
                 max_days: float = 366) -> None:
        self._path = path.strip("/")
        self._display_name = display_name
        self._denial = denial
        self._fetch = fetch
        self._report = report
        self._max_days = max_days

    @property
    def path(self) -> str:
        return self._path

    def get_meta(self, key=None):
        meta = {"tag": "VCALENDAR", "D:displayname": self._display_name,
                "C:supported-calendar-component-set": "VEVENT"}
        return meta.get(key) if key is not None else meta

    def _range(self, filters) -> tuple[dt.datetime, dt.datetime] | None:
        tag, start, end, _simple = radicale_filter.simplify_prefilters(filters, "VCALENDAR")
        if tag is not None and tag != "VEVENT":
            return None
        now = dt.datetime.now(UTC).replace(microsecond=0)
        span = dt.timedelta(days=self._max_days)
        # Open ends, and ends beyond now ± max_days, stop there: a query over years would
        # cost one getSchedule request per 61 days.
        low, high = now - span, now + span
        if start > low.timestamp():
            low = dt.datetime.fromtimestamp(start, UTC)
        if end < high.timestamp():
            high = dt.datetime.fromtimestamp(end, UTC)
        return (low, high) if low < high else None

    def get_filtered(self, filters):
        """One opaque event per busy period of the schedule over the filter's time range
        (RFC 4791 section 7.10; Radicale re-checks each against the filter, hence
        ``False``). Only Radicale's free-busy-query reaches this for a reader with "f"."""
        window = self._range(filters)
        if window is None:
            return
        try:
            items = self._fetch(*window)
            blocks = list(_blocks(items))
        except Exception as exc:
            raise self._report(exc) from None
        for href, text, start, end in blocks:
            uid = href.removesuffix(".ics") + "@free-busy.radicale-graph"
            etag = f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'
            yield radicale_item.Item(
                collection_path=self.path, collection=self, href=href,
                last_modified=formatdate(_epoch(start), usegmt=True), text=text, etag=etag,
                uid=uid, name="VCALENDAR", component_name="VEVENT",
                time_range=(_epoch(start), _epoch(end))), False

    def get_all(self):
        return iter(())

    def get_multi(self, hrefs):
        return ((href, None) for href in hrefs)

    def has_uid(self, uid: str) -> bool:
        return False

    def _refuse(self) -> BaseException:
        return self._report(PermissionError(self._denial))

    def upload(self, href, item):
        raise self._refuse()

    def delete(self, href=None):
        raise self._refuse()

    def set_meta(self, props):
        raise self._refuse()

    def sync(self, old_token: str = ""):
        """A constant sync-token and no hrefs (RFC 6578): PROPFIND may show the property,
        the sync-collection REPORT itself needs read access, which free/busy does not give
        (Radicale refuses it)."""
        digest = hashlib.sha256(f"free-busy:{self._path}".encode()).hexdigest()[:16]
        return f"http://radicale-graph.invalid/ns/sync/fb-{digest}", []

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"free-busy:{self._path}".encode()).hexdigest()[:16]
        return f'"fb-{digest}"'

    @property
    def last_modified(self) -> str:
        return formatdate(0, usegmt=True)
