"""The Graph requests the storage plugin makes for the events of one calendar.

Paths and query forms follow Graph v1.0 only (never beta): ``/users/{id}/calendars/{id}/events``
(list, create), ``/users/{id}/events/{id}`` (get, update, delete),
``/users/{id}/events/{id}/instances`` (api/event-list-instances.md) and
``/users/{id}/calendars/{id}/calendarView/delta`` (api/event-delta.md). Every read asks for UTC
times and text bodies (``Prefer: outlook.timezone="UTC", outlook.body-content-type="text"``);
the Graph client adds ``Prefer: IdType="ImmutableId"``.

``cancelledOccurrences`` and ``exceptionOccurrences`` are "returned only on $select/$expand in a
Get operation which specifies the ID of a series master event" (resources/event.md): lists ask
for neither, and series masters are read by id (:meth:`CalendarEvents.get_many`) to learn them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import quote

from ..graph import GraphClient, GraphError, error_from_response
from ..translation import extended
from ..translation.graph_to_ical import GRAPH_FIELDS

PREFER_READ = 'outlook.timezone="UTC", outlook.body-content-type="text"'
# Outlook collections page at most 1,000 items per response however large $top is; ask for
# that many so a calendar costs as few round trips as Graph allows.
PAGE_SIZE = 1000
INSTANCE_FIELDS = "id,type,originalStart,start,end,seriesMasterId"
# What the light listing of a reconciliation asks for (api/event-list.md, $select).
KEY_FIELDS = "id,type,changeKey"
# Returned only in a GET of a series master by id (resources/event.md).
BY_ID_ONLY = ("cancelledOccurrences",)


def _select() -> str:
    """``$select`` of a GET by id: every field translation reads."""
    return ",".join(GRAPH_FIELDS)


def _list_select() -> str:
    """``$select`` of a list: the same without the fields Graph returns only by id."""
    return ",".join(f for f in GRAPH_FIELDS if f not in BY_ID_ONLY)


def _expand() -> str:
    """``$expand`` of a GET by id: the kept extended properties and the exceptions."""
    return f"{extended.expand_filter()},exceptionOccurrences"


def _equals(name: str, value: str) -> str:
    """The URL-quoted ``$filter`` ``name eq 'value'`` (OData string literal: ' doubled)."""
    literal = value.replace("'", "''")
    return quote(f"{name} eq '{literal}'")


def is_duplicate_transaction(exc: GraphError) -> bool:
    """Whether a create was refused because its ``transactionId`` was used before."""
    return exc.status in (400, 409) and exc.code == "ErrorDuplicateTransactionId"


class CalendarEvents:
    """Graph access to the events of calendar ``calendar_id`` in ``mailbox``.

    ``user_path`` replaces ``/users/{mailbox}`` in every path: ``/me`` when ``client`` sends the
    mailbox owner's delegated token (every route above exists under ``/me`` too).
    ``calendar_path`` (default ``{user_path}/calendars/{calendar_id}``) is where the calendar's
    events are listed and created, and ``events_path`` (default ``{user_path}/events``) where
    they are read, changed and deleted by id: for a calendar shared with the signed-in person,
    its copy ``/me/calendars/{id}`` and ``/me/calendars/{id}/events``
    (concepts/outlook-get-shared-events-calendars.md) or the owner's ``/users/{owner}/calendar``
    and ``/users/{owner}/calendar/events``; for a group ``/groups/{id}/calendar`` and
    ``/groups/{id}/events`` (api/group-list-events.md, api/group-get-event.md).
    Every method raises the Graph client's ``GraphError`` subclasses (and ``AuthError``)."""

    def __init__(self, client: GraphClient, mailbox: str, calendar_id: str,
                 user_path: str | None = None, calendar_path: str = "",
                 events_path: str = "", owner: str = "") -> None:
        self.client = client
        self.mailbox = mailbox
        # The calendar owner's address (its own reply is its PARTSTAT); default ``mailbox``.
        self.owner = owner or mailbox
        self.calendar_id = calendar_id
        user = user_path or f"/users/{quote(mailbox, safe='@')}"
        self._calendar = calendar_path or f"{user}/calendars/{quote(calendar_id)}"
        self._by_id = events_path or f"{user}/events"
        # Ids this gateway DELETEd (events, and occurrences it cancelled): their @removed in a
        # delta round is expected, and they are never read back by id (deleted items stay
        # readable by id in Deleted Items).
        self.removed_ids: set[str] = set()

    def _headers(self, **extra: str) -> dict:
        return {"Prefer": PREFER_READ, **extra}

    def list_masters(self) -> Iterator[dict]:
        """Every single event and series master of the calendar with the gateway's extended
        properties (Graph lists no occurrences here, and no exceptions or cancellations:
        read series masters by id for those)."""
        path = f"{self._calendar}/events"
        params = {"$select": _list_select(), "$expand": extended.expand_filter(),
                  "$top": str(PAGE_SIZE)}
        return self.client.iter_pages(path, mailbox=self.mailbox, operation="list events",
                                      params=params, headers=self._headers())

    def list_keys(self) -> Iterator[dict]:
        """``{"id", "type", "changeKey"}`` of every single event and series master of the
        calendar: the light listing that tells what exists and what changed (a folder's
        listing, unlike a GET by id, never shows an event moved to Deleted Items)."""
        path = f"{self._calendar}/events"
        params = {"$select": KEY_FIELDS, "$top": str(PAGE_SIZE)}
        return self.client.iter_pages(path, mailbox=self.mailbox, operation="list events",
                                      params=params, headers=self._headers())

    def view_delta_pages(self, start: dt.datetime, end: dt.datetime,
                         link: str | None = None) -> Iterator[dict]:
        """Pages of a ``calendarView/delta`` round over [start, end) (UTC; api/event-delta.md,
        concepts/delta-query-events.md): occurrences, exceptions and single events in the
        window (never series masters; no ``$select``), ``@removed`` for those deleted, gone
        out of the window or changed outside it. From ``link`` (a deltaLink, which holds the
        window) when given. Raises ``GraphError``; 410 ``syncStateNotFound`` means the token
        expired and the calendar must be listed again."""
        if link is None:
            path = f"{self._calendar}/calendarView/delta"
            params = {"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
        else:
            path, params = link, None
        headers = {"Prefer": f"{PREFER_READ}, odata.maxpagesize={PAGE_SIZE}"}
        return self.client.iter_page_bodies(path, mailbox=self.mailbox,
                                            operation="track changes", params=params,
                                            headers=headers)

    def _batch_gets(self, urls: list[str], operation: str, missing_ok: bool = False):
        """GET each of ``urls`` through ``$batch`` (20 per request, json-batching.md) with the
        read preferences; yields each answer's body in order (``None`` for a 404 when
        ``missing_ok``). Raises ``GraphError`` for any other failed answer."""
        requests = [{"id": str(n), "method": "GET", "url": url,
                     "headers": {"Prefer": PREFER_READ}} for n, url in enumerate(urls)]
        for answer in self.client.batch(requests, mailbox=self.mailbox, operation=operation):
            if answer["status"] == 404 and missing_ok:
                yield None
            elif answer["status"] >= 400:
                raise error_from_response(answer["status"], answer.get("headers"),
                                          answer.get("body"), mailbox=self.mailbox,
                                          operation=operation)
            else:
                yield answer.get("body") or {}

    def get_many(self, event_ids: list[str]) -> dict[str, dict | None]:
        """Several events by id through ``$batch`` (20 per request, json-batching.md), series
        masters with ``cancelledOccurrences`` and ``exceptionOccurrences``: id -> event, or
        ``None`` when Graph answers 404. A 200 does not prove the event is still in this
        calendar (deleted items stay readable by id). Raises ``GraphError`` for other
        failures."""
        query = f"$select={_select()}&$expand={_expand()}"
        urls = [f"{self._by_id}/{quote(event_id)}?{query}" for event_id in event_ids]
        return dict(zip(event_ids, self._batch_gets(urls, "read events", missing_ok=True),
                        strict=True))

    def find_by_hrefs(self, hrefs: list[str]) -> dict[str, list[dict]]:
        """Events of this calendar whose kept href is one of ``hrefs``, through ``$batch``
        (folder-scoped lists, so deleted events are not found): href -> events, without
        exceptions or cancellations (read series masters by id for those)."""
        path = f"{self._calendar}/events"
        urls = [f"{path}?$filter={quote(extended.href_filter(href))}&$select={_list_select()}"
                f"&$expand={quote(extended.expand_filter())}" for href in hrefs]
        return {href: list(body.get("value") or [])
                for href, body in zip(hrefs, self._batch_gets(urls, "find events"), strict=True)}

    def present(self, ical_uids: dict[str, str]) -> set[str]:
        """Which of these events (id -> ``iCalUId``) the calendar itself still holds: one
        folder-scoped list per event filtered on ``iCalUId`` (api/user-list-events.md,
        $filter), 20 per ``$batch``. An event moved to Deleted Items is not listed, unlike a
        GET by id. Raises ``GraphError``."""
        path = f"{self._calendar}/events"
        ids = list(ical_uids)
        urls = [f"{path}?$filter={_equals('iCalUId', ical_uids[i])}&$select=id" for i in ids]
        return {event_id for event_id, body in zip(ids, self._batch_gets(urls, "check events"),
                                                    strict=True)
                if event_id in {e.get("id") for e in body.get("value") or []}}

    def get(self, event_id: str) -> dict:
        """One event with exceptions and extended properties."""
        return self.client.get_json(
            f"{self._by_id}/{quote(event_id)}", mailbox=self.mailbox,
            operation="read event", params={"$select": _select(), "$expand": _expand()},
            headers=self._headers())

    def create(self, body: dict, transaction_id: str) -> dict:
        """POST a new event; ``transaction_id`` makes a retried POST idempotent
        (resources/event.md, transactionId). Graph refuses a used ``transactionId`` for good,
        also after its event was deleted: 400 (some tenants 409) ``ErrorDuplicateTransactionId``
        (see :func:`is_duplicate_transaction`)."""
        body = {**body, "transactionId": transaction_id}
        response = self.client.request(
            "POST", f"{self._calendar}/events",
            mailbox=self.mailbox, operation="create event", json=body,
            headers=self._headers())
        return response.body or {}

    def update(self, event_id: str, body: dict, odata_etag: str | None = None) -> dict:
        """PATCH an event (or instance); with ``odata_etag``, If-Match so a change made
        meanwhile in Outlook is not overwritten (Graph answers 412 ``ErrorIrresolvableConflict``;
        api/event-update.md)."""
        headers = self._headers(**({"If-Match": odata_etag} if odata_etag else {}))
        response = self.client.request(
            "PATCH", f"{self._by_id}/{quote(event_id)}", mailbox=self.mailbox,
            operation="update event", json=body, headers=headers)
        return response.body or {}

    def delete(self, event_id: str, odata_etag: str | None = None,
               operation: str = "delete event") -> None:
        """DELETE an event, or an occurrence (which cancels it)."""
        headers = {"If-Match": odata_etag} if odata_etag else {}
        self.client.request("DELETE", f"{self._by_id}/{quote(event_id)}",
                            mailbox=self.mailbox, operation=operation, headers=headers)
        self.removed_ids.add(event_id)

    def respond(self, event_id: str, action: str) -> None:
        """The mailbox owner's reply to a meeting: ``action`` is ``accept``, ``decline`` or
        ``tentativelyAccept`` (api/event-accept.md etc.; 202). The organizer is told
        (``sendResponse``), as a CalDAV client changing its PARTSTAT expects (RFC 6638)."""
        self.client.request("POST", f"{self._by_id}/{quote(event_id)}/{action}",
                            mailbox=self.mailbox, operation=f"{action} meeting",
                            json={"comment": "", "sendResponse": True})

    def instances(self, event_id: str, start: dt.datetime, end: dt.datetime) -> list[dict]:
        """Occurrences and exceptions of a series between two UTC instants
        (api/event-list-instances.md; cancelled occurrences are not listed)."""
        params = {"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "$select": INSTANCE_FIELDS, "$top": str(PAGE_SIZE)}
        return list(self.client.iter_pages(
            f"{self._by_id}/{quote(event_id)}/instances", mailbox=self.mailbox,
            operation="list instances", params=params, headers=self._headers()))
