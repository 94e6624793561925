"""The Graph requests the storage plugin makes for the events of one calendar.

Paths and query forms follow Graph v1.0: ``/users/{id}/calendars/{id}/events`` (list,
create), ``/users/{id}/events/{id}`` (get, update, delete), ``/users/{id}/events/{id}/instances``
(api/event-list-instances.md). Every read asks for UTC times and text bodies
(``Prefer: outlook.timezone="UTC", outlook.body-content-type="text"``); the Graph client adds
``Prefer: IdType="ImmutableId"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import quote

from ..graph import GraphClient
from ..translation import extended
from ..translation.graph_to_ical import GRAPH_FIELDS

PREFER_READ = 'outlook.timezone="UTC", outlook.body-content-type="text"'
# Outlook collections page at most 1,000 items per response however large $top is; ask for
# that many so a calendar costs as few round trips as Graph allows.
PAGE_SIZE = 1000
INSTANCE_FIELDS = "id,type,originalStart,start,end,seriesMasterId"


def _select() -> str:
    return ",".join(GRAPH_FIELDS)


def _expand() -> str:
    return f"{extended.expand_filter()},exceptionOccurrences"


class CalendarEvents:
    """Graph access to the events of calendar ``calendar_id`` in ``mailbox``.

    Every method raises the Graph client's ``GraphError`` subclasses."""

    def __init__(self, client: GraphClient, mailbox: str, calendar_id: str) -> None:
        self.client = client
        self.mailbox = mailbox
        self.calendar_id = calendar_id
        self._user = f"/users/{quote(mailbox, safe='@')}"

    def _headers(self, **extra: str) -> dict:
        return {"Prefer": PREFER_READ, **extra}

    def list_masters(self) -> Iterator[dict]:
        """Every single event and series master of the calendar, with exceptions expanded
        and the gateway's extended properties (Graph lists no occurrences here)."""
        path = f"{self._user}/calendars/{quote(self.calendar_id)}/events"
        params = {"$select": _select(), "$expand": _expand(), "$top": str(PAGE_SIZE)}
        return self.client.iter_pages(path, mailbox=self.mailbox, operation="list events",
                                      params=params, headers=self._headers())

    def delta_pages(self, link: str | None = None) -> Iterator[dict]:
        """Pages of a delta round over this calendar (``/calendars/{id}/events/delta``;
        api/event-delta.md): from ``link`` (a deltaLink) or, without it, a new round listing
        every event. The last page carries ``@odata.deltaLink``. Raises ``GraphError``; a
        410 means the token expired and a full listing is needed."""
        path = link or f"{self._user}/calendars/{quote(self.calendar_id)}/events/delta"
        headers = {"Prefer": f"{PREFER_READ}, odata.maxpagesize={PAGE_SIZE}"}
        return self.client.iter_page_bodies(path, mailbox=self.mailbox,
                                            operation="track changes", headers=headers)

    def view_delta_pages(self, start: dt.datetime, end: dt.datetime,
                         link: str | None = None) -> Iterator[dict]:
        """Pages of a ``calendarView/delta`` round over [start, end) (UTC; api/event-delta.md):
        occurrences, exceptions and single events in the window, ``@removed`` for those gone
        or moved out. From ``link`` (a deltaLink) when given."""
        if link is None:
            path = f"{self._user}/calendars/{quote(self.calendar_id)}/calendarView/delta"
            params = {"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
        else:
            path, params = link, None
        headers = {"Prefer": f"{PREFER_READ}, odata.maxpagesize={PAGE_SIZE}"}
        return self.client.iter_page_bodies(path, mailbox=self.mailbox,
                                            operation="track changes", params=params,
                                            headers=headers)

    def get_many(self, event_ids: list[str]) -> dict[str, dict | None]:
        """Several events by id through ``$batch`` (20 per request, json-batching.md):
        id -> event, or ``None`` when Graph answers 404. Raises ``GraphError`` for other
        failures."""
        from ..graph import error_from_response

        query = f"$select={_select()}&$expand={_expand()}"
        requests = [{"id": str(n), "method": "GET",
                     "url": f"{self._user}/events/{quote(event_id)}?{query}",
                     "headers": {"Prefer": PREFER_READ}}
                    for n, event_id in enumerate(event_ids)]
        result: dict[str, dict | None] = {}
        for event_id, answer in zip(event_ids, self.client.batch(
                requests, mailbox=self.mailbox, operation="read events"), strict=True):
            if answer["status"] == 404:
                result[event_id] = None
            elif answer["status"] >= 400:
                raise error_from_response(answer["status"], answer.get("headers"),
                                          answer.get("body"), mailbox=self.mailbox,
                                          operation="read events")
            else:
                result[event_id] = answer["body"]
        return result

    def find_by_hrefs(self, hrefs: list[str]) -> dict[str, list[dict]]:
        """Events whose kept href is one of ``hrefs``, through ``$batch``: href -> events."""
        from ..graph import error_from_response

        path = f"{self._user}/calendars/{quote(self.calendar_id)}/events"
        requests = []
        for n, href in enumerate(hrefs):
            query = (f"$filter={quote(extended.href_filter(href))}&$select={_select()}"
                     f"&$expand={_expand()}")
            requests.append({"id": str(n), "method": "GET", "url": f"{path}?{query}",
                             "headers": {"Prefer": PREFER_READ}})
        found: dict[str, list[dict]] = {}
        for href, answer in zip(hrefs, self.client.batch(
                requests, mailbox=self.mailbox, operation="find events"), strict=True):
            if answer["status"] >= 400:
                raise error_from_response(answer["status"], answer.get("headers"),
                                          answer.get("body"), mailbox=self.mailbox,
                                          operation="find events")
            found[href] = list((answer.get("body") or {}).get("value") or [])
        return found

    def get(self, event_id: str) -> dict:
        """One event with exceptions and extended properties."""
        return self.client.get_json(
            f"{self._user}/events/{quote(event_id)}", mailbox=self.mailbox,
            operation="read event", params={"$select": _select(), "$expand": _expand()},
            headers=self._headers())

    def create(self, body: dict, transaction_id: str) -> dict:
        """POST a new event; ``transaction_id`` makes a retried POST idempotent
        (api/user-post-events.md, transactionId)."""
        body = {**body, "transactionId": transaction_id}
        response = self.client.request(
            "POST", f"{self._user}/calendars/{quote(self.calendar_id)}/events",
            mailbox=self.mailbox, operation="create event", json=body,
            headers=self._headers())
        return response.body or {}

    def update(self, event_id: str, body: dict, odata_etag: str | None = None) -> dict:
        """PATCH an event (or instance); If-Match with the known ``@odata.etag`` so a change
        made meanwhile in Outlook is not overwritten (Graph answers 412)."""
        headers = self._headers(**({"If-Match": odata_etag} if odata_etag else {}))
        response = self.client.request(
            "PATCH", f"{self._user}/events/{quote(event_id)}", mailbox=self.mailbox,
            operation="update event", json=body, headers=headers)
        return response.body or {}

    def delete(self, event_id: str, odata_etag: str | None = None,
               operation: str = "delete event") -> None:
        """DELETE an event, or an occurrence (which cancels it)."""
        headers = {"If-Match": odata_etag} if odata_etag else {}
        self.client.request("DELETE", f"{self._user}/events/{quote(event_id)}",
                            mailbox=self.mailbox, operation=operation, headers=headers)

    def respond(self, event_id: str, action: str) -> None:
        """The mailbox owner's reply to a meeting: ``action`` is ``accept``, ``decline`` or
        ``tentativelyAccept`` (api/event-accept.md etc.; 202). The organizer is told
        (``sendResponse``), as a CalDAV client changing its PARTSTAT expects (RFC 6638)."""
        self.client.request("POST", f"{self._user}/events/{quote(event_id)}/{action}",
                            mailbox=self.mailbox, operation=f"{action} meeting",
                            json={"comment": "", "sendResponse": True})

    def instances(self, event_id: str, start: dt.datetime, end: dt.datetime) -> list[dict]:
        """Occurrences and exceptions of a series between two UTC instants
        (api/event-list-instances.md; cancelled occurrences are not listed)."""
        params = {"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "$select": INSTANCE_FIELDS, "$top": str(PAGE_SIZE)}
        return list(self.client.iter_pages(
            f"{self._user}/events/{quote(event_id)}/instances", mailbox=self.mailbox,
            operation="list instances", params=params, headers=self._headers()))
