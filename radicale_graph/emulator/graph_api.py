"""Graph v1.0 calendar resources: routing of one authenticated request to the tenant state.

Paths (relative to ``/v1.0``; ``{user}`` is a UPN, any case, or an object id):
``/users/{user}``, ``/users/{user}/calendar``, ``/users/{user}/calendars[/{id}]``, the event
collections ``/users/{user}/events``, ``.../calendar/events``, ``.../calendars/{id}/events``
(list, create, ``/{id}`` get/update/delete, ``/{id}/instances``, ``/{id}/accept|decline|
tentativelyAccept``, ``/delta``), the views ``.../calendarView`` and ``.../calendarView/delta``,
and ``/places/microsoft.graph.room``. Pages: api/user-list-events.md, api/user-post-events.md,
api/event-get.md, api/event-update.md, api/event-delete.md, api/event-list-instances.md,
api/calendar-list-calendarview.md, api/event-accept.md, api/event-delta.md, api/place-list.md.

Strict v1.0 behaviour (docs/emulator.md has one section for each):
- ``/events/delta`` (any container) answers 400: delta on events without a time range "is
  currently available only in the beta version" (concepts/delta-query-events.md). ``beta=True``
  on the Emulator (``GraphApi.events_delta``) serves it as beta does.
- ``calendarView/delta`` follows api/event-delta.md and concepts/delta-query-events.md (see
  :meth:`GraphApi._delta`).
- ``cancelledOccurrences`` and ``exceptionOccurrences`` are "returned only on $select [$expand]
  in a Get operation which specifies the ID of a series master event" (resources/event.md):
  collections silently leave them out.
- A deleted event is readable by id while in Deleted Items (concepts/outlook-immutable-id.md)
  and absent from every collection.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from . import delta, odata, render, schema, series, times
from .delegated import CALENDAR_READ, CALENDAR_WRITE, OTHER_USERS_READ, PLACE_READ, USER_READ
from .errors import GraphError, bad_request, not_found

DEFAULT_PAGE = 10
ACTIONS = {"accept": "accepted", "decline": "declined", "tentativelyaccept": "tentativelyAccepted"}
CALENDAR_PROPERTIES = {p.lower(): p for p in (
    "id", "name", "color", "hexColor", "isDefaultCalendar", "changeKey", "canShare",
    "canViewPrivateItems", "canEdit", "allowedOnlineMeetingProviders",
    "defaultOnlineMeetingProvider", "isTallyingResponses", "isRemovable", "owner")}


@dataclass
class Request:
    """One Graph request: ``path`` is below ``/v1.0`` and already split into decoded segments."""

    method: str
    segments: list
    query: dict  # option name -> value, names as sent
    headers: dict  # lower-case name -> value
    body: bytes
    claims: dict
    base: str  # e.g. https://127.0.0.1:8443/v1.0

    @property
    def params(self) -> dict:
        """Query options with lower-case names (``$Select`` == ``$select``)."""
        return {k.lower(): v for k, v in self.query.items()}


@dataclass
class Response:
    """Status, JSON body (None for an empty body) and extra headers."""

    status: int
    body: dict | None = None
    headers: dict = field(default_factory=dict)


def parse_prefer(value: str | None) -> dict[str, str]:
    """``Prefer`` preferences (names lower-case, quotes removed); RFC 7240 section 2."""
    prefs: dict[str, str] = {}
    for part in re.findall(r'(?:[^,"]|"[^"]*")+', value or ""):
        name, _, val = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = val.strip().strip('"')
    return prefs


def read_json(body: bytes):
    """The decoded JSON body. Raises GraphError 400 as Graph does for unreadable payloads."""
    try:
        return json.loads(body.decode("utf-8") if body else "")
    except (ValueError, UnicodeDecodeError):
        raise bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and "
            "payload is of valid JSON format."
        ) from None


class GraphApi:
    """Serves authenticated Graph requests against ``store`` for the apps of ``identity``."""

    def __init__(self, store, identity, events_delta: bool = False):
        self.store = store
        self.identity = identity
        self.deltas = delta.DeltaStates()
        # Serve /events/delta as beta does. False (default) answers 400 as v1.0 does: delta on
        # events without a time range is beta only (concepts/delta-query-events.md, note).
        self.events_delta = events_delta

    # -- entry ------------------------------------------------------------------------------

    def mailbox_of(self, segments: list, claims: dict | None = None) -> str | None:
        """The mailbox (lower-case UPN) a request addresses, or None; ``/me`` is the signed-in
        user of a delegated token (``claims``)."""
        if segments and segments[0].lower() == "me" and claims and claims.get("scp") \
                and claims.get("upn"):
            return claims["upn"].lower()
        if len(segments) >= 2 and segments[0].lower() == "users":
            box = self.store.mailbox(segments[1])
            return box.upn.lower() if box else segments[1].lower()
        return None

    def handle(self, req: Request) -> Response:
        """Answer one request. Raises GraphError for refusals.

        Delegated tokens (a ``scp`` claim): ``/me[/...]`` is ``/users/{the token's user}[/...]``
        (the ``@odata.context`` names the user's id, links keep ``/me``, as in the Graph docs'
        examples); another user's mailbox answers 403 ErrorAccessDenied (no sharing yet), and so
        does a path whose permission is not in ``scp`` (calendars: ``Calendars.Read[Write]
        [.Shared]``, writes need ``ReadWrite``; ``/me``: ``User.Read``; places:
        ``Place.Read.All``). The ApplicationAccessPolicy applies to app-only tokens only.
        """
        seg = req.segments
        head = seg[0].lower() if seg else ""
        scp = req.claims.get("scp")
        delegated = scp is not None
        granted = {s.lower() for s in (scp or "").split()}
        if head == "me":
            if not delegated or not req.claims.get("upn"):
                raise bad_request("/me request is only valid with delegated authentication flow.")
            seg = ["users", req.claims["upn"], *seg[1:]]
            head = "users"
        if head == "places":
            if delegated and not granted & PLACE_READ:
                raise _denied()
            return self._places(req)
        if head != "users" or len(seg) < 2:
            raise bad_request(f"Resource not found for the segment '{seg[0] if seg else ''}'.")
        user = seg[1]
        box = self.store.mailbox(user)
        if req.segments[0].lower() == "me":
            user = req.claims.get("oid") or user  # Graph's contexts for /me name the user id
        if delegated:
            own = box is not None and box.upn.lower() == req.claims.get("upn", "").lower()
            if len(seg) == 2:
                if not (granted & (USER_READ if own else OTHER_USERS_READ)):
                    raise _denied()
            elif not own:
                raise _denied()  # sharing and delegation come later
            elif not granted & CALENDAR_READ or (
                    req.method not in ("GET", "HEAD") and not granted & CALENDAR_WRITE):
                raise _denied()
        if len(seg) == 2:
            self._method(req, "GET")
            if box is None:
                raise GraphError(404, "Request_ResourceNotFound", f"Resource '{user}' does not "
                                 "exist or one of its queried reference-property objects are "
                                 "not present.")
            body = {"@odata.context": f"{req.base}/$metadata#users/$entity", **box.user_json()}
            return Response(200, body)
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        app = self.identity.app(req.claims.get("appid", ""))
        if not delegated and app is not None and not app.may_access(box.upn):
            raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled.")
        return self._mailbox(req, box, user, seg[2:])

    @staticmethod
    def _method(req: Request, *allowed: str) -> None:
        if req.method not in allowed:
            raise GraphError(405, "Request_BadRequest",
                             "Specified HTTP method is not allowed for the request target.")

    # -- routing below /users/{user} ----------------------------------------------------------

    def _mailbox(self, req, box, user, rest) -> Response:
        low = [s.lower() for s in rest]
        ctx = f"{req.base}/$metadata#users('{user}')"
        if low == ["calendar"]:
            self._method(req, "GET")
            return self._calendar_get(req, box, None, f"{ctx}/calendar/$entity")
        if low == ["calendars"]:
            self._method(req, "GET", "POST")
            if req.method == "POST":
                body = read_json(req.body)
                schema.validate("calendar", body)
                cal = self.store.create_calendar(box.upn, schema.canonical("calendar", body))
                return Response(201, {"@odata.context": f"{ctx}/calendars/$entity", **cal})
            return self._calendar_list(req, box, f"{ctx}/calendars")
        if len(low) == 2 and low[0] == "calendars":
            self._method(req, "GET", "PATCH", "DELETE")
            cid = rest[1]
            if req.method == "DELETE":
                self.store.delete_calendar(box.upn, cid)
                return Response(204)
            if req.method == "PATCH":
                body = read_json(req.body)
                schema.validate("calendar", body)
                cal = self.store.update_calendar(box.upn, cid, schema.canonical("calendar", body))
                return Response(200, {"@odata.context": f"{ctx}/calendars/$entity", **cal})
            return self._calendar_get(req, box, cid, f"{ctx}/calendars/$entity")
        # event containers
        if low[:1] == ["events"]:
            cal, where, tail, ctx_coll = None, "mailbox", rest[1:], f"{ctx}/events"
        elif low[:2] == ["calendar", "events"]:
            cal, where, tail = box.default_calendar_id, "calendar", rest[2:]
            ctx_coll = f"{ctx}/calendar/events"
        elif len(low) >= 3 and low[0] == "calendars" and low[2] == "events":
            cal, where, tail = rest[1], "calendar", rest[3:]
            ctx_coll = f"{ctx}/calendars('{rest[1]}')/events"
        elif low[:1] == ["calendarview"]:
            return self._view_route(req, box, box.default_calendar_id, rest[1:], ctx)
        elif low[:2] == ["calendar", "calendarview"]:
            return self._view_route(req, box, box.default_calendar_id, rest[2:], ctx)
        elif len(low) >= 3 and low[0] == "calendars" and low[2] == "calendarview":
            self.store.calendar(box.upn, rest[1])
            return self._view_route(req, box, rest[1], rest[3:], ctx)
        else:
            raise bad_request(f"Resource not found for the segment '{rest[0] if rest else ''}'.")
        if cal is not None:
            self.store.calendar(box.upn, cal)
        return self._events_route(req, box, user, cal, where, tail, ctx, ctx_coll)

    def _events_route(self, req, box, user, cal, where, tail, ctx, ctx_coll) -> Response:
        low = [s.lower() for s in tail]
        list_cal = cal if where == "calendar" else box.default_calendar_id
        item_cal = cal if where == "calendar" else None
        if not tail:
            self._method(req, "GET", "POST")
            if req.method == "POST":
                return self._create(req, box, list_cal, ctx)
            # Records, copied only when they are filtered, sorted or on the page served.
            return self._list(req, self.store.records(box.upn, list_cal), ctx_coll,
                              copy=self.store.full)
        if low == ["delta"]:
            self._method(req, "GET")
            if not self.events_delta:
                # v1.0 documents delta only on calendarView; beta also on events
                # (concepts/delta-query-events.md). Graph's wording: msgraph-metadata issue 608.
                raise bad_request("Unsupported request: Change tracking is not supported "
                                  "against 'microsoft.graph.event'.")
            return self._delta(req, box, list_cal, "events")
        eid = tail[0]
        if len(tail) == 1:
            self._method(req, "GET", "PATCH", "DELETE")
            if req.method == "DELETE":
                self.store.delete(box.upn, eid, if_match=req.headers.get("if-match"),
                                  calendar_id=item_cal)
                return Response(204)
            if req.method == "PATCH":
                body = read_json(req.body)
                schema.validate("event", body)
                rec, inst = self.store.update(box.upn, eid, body,
                                              if_match=req.headers.get("if-match"),
                                              calendar_id=item_cal)
            else:
                # A deleted item stays readable by id from Deleted Items
                # (concepts/outlook-immutable-id.md); PATCH/DELETE of it answer 404.
                rec, inst = self.store.resolve(box.upn, eid, item_cal, include_deleted=True)
            return self._one(req, rec, inst, f"{ctx}/events", by_id_get=req.method == "GET")
        if len(tail) == 2 and low[1] == "instances":
            self._method(req, "GET")
            rec, inst = self.store.resolve(box.upn, eid, item_cal)
            ws = times.parse_query_instant(req.params.get("startdatetime"), "startDateTime")
            we = times.parse_query_instant(req.params.get("enddatetime"), "endDateTime")
            items = []
            if inst is None and rec.data.get("type") == "seriesMaster":
                with self.store.lock:
                    items = [(*self.store.full(rec, i), rec) for i in series.instances(rec, ws, we)]
            return self._list(req, items, f"{ctx}/events('{eid}')/instances")
        if len(tail) == 2 and low[1] in ACTIONS:
            self._method(req, "POST")
            body = read_json(req.body) if req.body.strip() else {}
            if not isinstance(body, dict):
                schema.validate("event", body)
            self.store.respond(box.upn, eid, ACTIONS[low[1]], calendar_id=item_cal)
            return Response(202)
        raise bad_request(f"Resource not found for the segment '{tail[1]}'.")

    # -- calendars --------------------------------------------------------------------------

    def _calendar_get(self, req, box, cid, context) -> Response:
        q = odata.parse(req.params, CALENDAR_PROPERTIES, "calendar")
        cal = self.store.calendar(box.upn, cid)
        return Response(200, {"@odata.context": context, **render.calendar(cal, q.select)})

    def _calendar_list(self, req, box, context) -> Response:
        q = odata.parse(req.params, CALENDAR_PROPERTIES, "calendar")
        cals = self.store.calendars(box.upn)
        if q.filter:
            cals = [c for c in cals if q.filter(c)]
        cals = odata.sort(cals, q.orderby)
        offset, size = self._window(req, q)
        page = cals[offset : offset + size]
        body = {"@odata.context": context, "value": [render.calendar(c, q.select) for c in page]}
        if offset + size < len(cals):
            body["@odata.nextLink"] = self._next_link(req, offset + size, size)
        return Response(200, body)

    # -- events: reading ----------------------------------------------------------------------

    def _view(self, req, q) -> tuple[render.View, dict]:
        prefs = parse_prefer(req.headers.get("prefer"))
        applied = {}
        tz = prefs.get("outlook.timezone") or "UTC"
        times.zone(tz)
        if "outlook.timezone" in prefs:
            applied["outlook.timezone"] = f'outlook.timezone="{tz}"'
        body_type = (prefs.get("outlook.body-content-type") or "").lower() or None
        if body_type not in (None, "text", "html"):
            body_type = None
        if body_type:
            applied["outlook.body-content-type"] = f'outlook.body-content-type="{body_type}"'
        if prefs.get("idtype", "").lower() == "immutableid":
            applied["idtype"] = 'IdType="ImmutableId"'
        view = render.View(tz=tz, body_type=body_type, select=q.select if q else None,
                           ext_ids=q.ext_ids if q else None)
        headers = {"Preference-Applied": ", ".join(applied.values())} if applied else {}
        return view, headers

    def _render(self, rec, data, ext, view, q, by_id_get: bool = False) -> dict:
        """One event. ``by_id_get``: the request is a GET naming this item's id, the only
        request that returns ``cancelledOccurrences`` ($select) and ``exceptionOccurrences``
        ($expand) of a series master (resources/event.md); anywhere else they are left out
        silently."""
        exceptions = None
        if not by_id_get:
            view = _without_select_only(view)
        elif q is not None and q.expand_exceptions and data.get("type") == "seriesMaster":
            exceptions = []
            with self.store.lock:
                for exc in sorted(rec.exceptions.values(), key=lambda e: e.original_start):
                    inst = series.find(rec, exc.original_start)
                    if inst is not None:
                        exceptions.append(self.store.full(rec, inst))
        return render.event(data, ext, view, exceptions)

    def _one(self, req, rec, inst, ctx_events, status=200, by_id_get=False) -> Response:
        q = odata.parse(req.params, render.EVENT_PROPERTIES, "event")
        view, headers = self._view(req, q)
        data, ext = self.store.full(rec, inst)
        sel = f"({','.join(q.select)})" if q.select else ""
        body = {"@odata.context": f"{ctx_events}{sel}/$entity",
                **self._render(rec, data, ext, view, q, by_id_get)}
        return Response(status, body, headers)

    def _window(self, req, q) -> tuple[int, int]:
        prefs = parse_prefer(req.headers.get("prefer"))
        size = q.top or DEFAULT_PAGE
        if q.top is None and prefs.get("odata.maxpagesize", "").isdigit():
            size = max(1, int(prefs["odata.maxpagesize"]))
        offset = q.skip
        token = req.params.get("$skiptoken")
        if token:
            offset, size = odata.read_skiptoken(token)
        return offset, max(size, 1)

    def _next_link(self, req, offset: int, size: int) -> str:
        params = {k: v for k, v in req.query.items() if k.lower() not in ("$skip", "$skiptoken")}
        params["$skiptoken"] = odata.skiptoken(offset, size)
        path = "/".join(quote(s, safe="@.'()=") for s in req.segments)
        return f"{req.base}/{path}?" + urlencode(params, quote_via=quote, safe="$,()':/=")

    def _list(self, req, items, context, copy=None) -> Response:
        """``items``: (data, ext, record) triples; applies $filter/$orderby/paging/$select.
        With ``copy`` (record -> (data, ext)), ``items`` are records, copied only where a
        ``$filter``/``$orderby`` needs every one, else just those of the page served (the
        emulator's own cost, not Graph's)."""
        q = odata.parse(req.params, render.EVENT_PROPERTIES, "event")
        view, headers = self._view(req, q)
        if copy is not None and (q.filter or q.orderby):
            items, copy = [(*copy(r), r) for r in items], None
        if q.filter or q.orderby:
            keyed = [(render.filter_view(d, e), d, e, r) for d, e, r in items]
            if q.filter:
                keyed = [k for k in keyed if q.filter(k[0])]
            keyed = odata.sort(keyed, q.orderby, get=lambda k: k[0])
            items = [(d, e, r) for _, d, e, r in keyed]
        offset, size = self._window(req, q)
        page = items[offset : offset + size]
        if copy is not None:
            page = [(*copy(r), r) for r in page]
        sel = f"({','.join(q.select)})" if q.select else ""
        body = {
            "@odata.context": context + sel,
            "value": [self._render(r, d, e, view, q) for d, e, r in page],
        }
        if offset + size < len(items):
            body["@odata.nextLink"] = self._next_link(req, offset + size, size)
        if "odata.maxpagesize" in parse_prefer(req.headers.get("prefer")):
            applied = headers.get("Preference-Applied")
            extra = f"odata.maxpagesize={size}"
            headers["Preference-Applied"] = f"{applied}, {extra}" if applied else extra
        return Response(200, body, headers)

    def _calendar_view_items(self, box, cid, ws, we) -> list:
        out = []
        with self.store.lock:
            for rec in self.store.records(box.upn, cid):
                if rec.data.get("type") == "seriesMaster":
                    for inst in series.instances(rec, ws, we):
                        out.append((inst.start, *self.store.full(rec, inst), rec))
                    continue
                start = times.from_dtz(rec.data["start"])
                end = times.from_dtz(rec.data["end"])
                if start < we and (end > ws or (end == start and start >= ws)):
                    out.append((start, *self.store.full(rec), rec))
        out.sort(key=lambda x: (x[0], x[1]["id"]))
        return [x[1:] for x in out]

    def _view_route(self, req, box, cid, tail, ctx) -> Response:
        low = [s.lower() for s in tail]
        self._method(req, "GET")
        if low == ["delta"]:
            return self._delta(req, box, cid, "calendarView")
        if tail:
            raise bad_request(f"Resource not found for the segment '{tail[0]}'.")
        ws = times.parse_query_instant(req.params.get("startdatetime"), "startDateTime")
        we = times.parse_query_instant(req.params.get("enddatetime"), "endDateTime")
        items = self._calendar_view_items(box, cid, ws, we)
        return self._list(req, items, f"{ctx}/calendarView")

    # -- events: writing ----------------------------------------------------------------------

    def _create(self, req, box, cid, ctx) -> Response:
        body = read_json(req.body)
        schema.validate("event", body)
        # A used transactionId (its event alive or deleted) answers 400
        # ErrorDuplicateTransactionId (resources/event.md, transactionId; see Store.create).
        rec, _created = self.store.create(box.upn, cid, body, from_graph=True)
        return self._one(req, rec, None, f"{ctx}/events", status=201)

    # -- delta --------------------------------------------------------------------------------

    def _delta(self, req, box, cid, kind) -> Response:
        """One delta request. ``calendarView`` (v1.0; api/event-delta.md,
        concepts/delta-query-events.md): ``startDateTime``/``endDateTime`` are required on the
        first request and kept in the token; items are single instances, occurrences and
        exceptions, never series masters; ``$select``, ``$expand``, ``$filter``, ``$orderby``
        and ``$search`` answer 400; ``Prefer: odata.maxpagesize`` sets the page size. A later
        round returns items changed since, and ``@removed`` (reason ``deleted``) for items
        deleted, items gone from the window, and events added or changed outside the window
        since (by the ids of their occurrences seen before, or the event's own id).
        ``events`` (beta only, served when ``events_delta`` is set): every item of the
        calendar, series masters included."""
        params = req.params
        unsupported = ("$select", "$filter", "$expand", "$orderby", "$search")
        for name in unsupported if kind == "calendarView" else unsupported[1:]:
            if name in params:
                raise bad_request(f"The query parameter '{name}' is not supported with delta.")
        view, headers = self._view(req, None)
        prefs = parse_prefer(req.headers.get("prefer"))
        size = int(prefs["odata.maxpagesize"]) if prefs.get(
            "odata.maxpagesize", "").isdigit() else DEFAULT_PAGE
        scope = (box.guid, kind, cid)
        if params.get("$skiptoken"):
            state = self.deltas.get(params["$skiptoken"], scope)
            page, token_kind, token = self.deltas.next(state)
        else:
            previous = None
            if params.get("$deltatoken"):
                previous = self.deltas.get(params["$deltatoken"], scope)
                window = previous.scope[3:]
            elif kind == "calendarView":
                window = (
                    times.parse_query_instant(params.get("startdatetime"), "startDateTime"),
                    times.parse_query_instant(params.get("enddatetime"), "endDateTime"),
                )
            else:
                window = (None, None)
            with self.store.lock:
                seq = self.store.seq
                if kind == "calendarView":
                    items = self._calendar_view_items(box, cid, *window)
                else:
                    items = [(*self.store.full(r), r) for r in self.store.records(box.upn, cid)]
                seen = {d["id"]: r.id for d, _, r in items}  # item id -> record id
                out = []
                for data, ext, rec in items:
                    if previous is None or rec.seq > previous.seq or data["id"] not in previous.ids:
                        out.append({"@odata.type": "#microsoft.graph.event",
                                    **render.event(data, ext, _without_select_only(view))})
                if previous is not None:
                    gone = [i for i in previous.ids if i not in seen]
                    # Added or changed (deleted included) outside the window since the last
                    # round: @removed by the ids seen before, else by the event's own id
                    # (concepts/delta-query-events.md).
                    shown = set(seen.values())
                    before = set(previous.ids.values())
                    outside = [r for r in self.store.records(box.upn, cid)
                               + [d for d in self.store.deleted_records(box.upn)
                                  if d.calendar_id == (cid or box.default_calendar_id)]
                               if r.seq > previous.seq and r.id not in shown
                               and r.id not in before]
                    removed = sorted(gone) + sorted(r.id for r in outside)
                    for rid in removed:
                        out.append({"@odata.type": "#microsoft.graph.event", "id": rid,
                                    "@removed": {"reason": "deleted"}})
            page, token_kind, token = self.deltas.page(out, max(size, 1), (*scope, *window),
                                                       seq, seen)
        body = {"@odata.context": f"{req.base}/$metadata#Collection(event)"}
        path = "/".join(quote(s, safe="@.=") for s in req.segments)
        link = f"{req.base}/{path}?${token_kind}={token}"
        body["@odata.nextLink" if token_kind == "skiptoken" else "@odata.deltaLink"] = link
        body["value"] = page
        if "odata.maxpagesize" in prefs:
            applied = headers.get("Preference-Applied")
            extra = f"odata.maxpagesize={max(size, 1)}"
            headers["Preference-Applied"] = f"{applied}, {extra}" if applied else extra
        return Response(200, body, headers)

    # -- places -------------------------------------------------------------------------------

    def _places(self, req) -> Response:
        low = [s.lower() for s in req.segments]
        self._method(req, "GET")
        if low == ["places", "microsoft.graph.room"]:
            return Response(200, {
                "@odata.context": f"{req.base}/$metadata#places/microsoft.graph.room",
                "value": list(self.store.places),
            })
        raise not_found()


def _denied() -> GraphError:
    """403 ErrorAccessDenied, Exchange's answer to a delegated token without the right."""
    return GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try "
                                                "again.")


def _without_select_only(view: render.View) -> render.View:
    """``view`` without properties returned only by a GET by id (resources/event.md:
    ``cancelledOccurrences``); asking for them in a collection is ignored, not refused."""
    if not view.select or not set(view.select) & render.SELECT_ONLY:
        return view
    return render.View(tz=view.tz, body_type=view.body_type, ext_ids=view.ext_ids,
                       select=[s for s in view.select if s not in render.SELECT_ONLY])
