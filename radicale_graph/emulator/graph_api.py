"""Graph v1.0 calendar resources: routing of one authenticated request to the tenant state.

Paths (relative to ``/v1.0``; ``{user}`` is a UPN, any case, or an object id):
``/users/{user}``, ``/users/{user}/calendar``, ``/users/{user}/calendars[/{id}]``, the event
collections ``/users/{user}/events``, ``.../calendar/events``, ``.../calendars/{id}/events``
(list, create, ``/{id}`` get/update/delete, ``/{id}/instances``, ``/{id}/accept|decline|
tentativelyAccept``, ``/delta``), the views ``.../calendarView`` and ``.../calendarView/delta``,
and ``/places/microsoft.graph.room``. Pages: api/user-list-events.md, api/user-post-events.md,
api/event-get.md, api/event-update.md, api/event-delete.md, api/event-list-instances.md,
api/calendar-list-calendarview.md, api/event-accept.md, api/event-delta.md, api/place-list.md.

Sharing, groups and places (sources in :mod:`.sharing`): ``.../calendar[s/{id}]/
calendarPermissions[/{id}]`` (api/calendar-list-calendarpermissions.md,
api/calendar-post-calendarpermissions.md, api/calendarpermission-update.md,
api/calendarpermission-delete.md); a delegated token on a calendar shared with or delegated to
its user (``/me/calendars`` copies, ``/users/{owner}/calendar[s/{id}]/...``), by the role
(resources/calendarpermission.md); ``/groups``, ``/groups/{id}``, ``/groups/{id}/members``,
``/groups/{id}/calendar[/events]``, ``/groups/{id}/events``, ``/groups/{id}/calendarView``
(api/group-list.md, api/group-get.md, api/group-list-members.md, api/group-get-calendar.md,
api/group-list-events.md), ``/me/memberOf`` and ``/users/{id}/memberOf``
(api/user-list-memberof.md); ``/places/microsoft.graph.roomlist`` and
``/places/{roomlist-email}/microsoft.graph.roomlist/rooms`` (api/place-list.md, examples 2, 3).
Free/busy: ``.../calendar/getSchedule`` (api/calendar-getschedule.md).

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

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from cachetools import LRUCache

from . import delta, odata, render, schema, series, sharing, times
from .delegated import CALENDAR_READ, CALENDAR_WRITE, OTHER_USERS_READ, PLACE_READ, USER_READ
from .errors import GraphError, bad_request, not_found

DEFAULT_PAGE = 10
#: Delegated permissions for calendars of other users shared with or delegated to the signed-in
#: user (concepts/outlook-get-shared-events-calendars.md; seed 001: Calendars.Read.Shared,
#: Calendars.ReadWrite.Shared for writes).
SHARED_READ = {"calendars.read.shared", "calendars.readwrite.shared"}
SHARED_WRITE = {"calendars.readwrite.shared"}
#: Group calendars: Group.Read.All / Group.ReadWrite.All, delegated only
#: (api/group-list-events.md, api/group-get-calendar.md; application "Not supported").
GROUP_CALENDAR_READ = {"group.read.all", "group.readwrite.all"}
GROUP_CALENDAR_WRITE = {"group.readwrite.all"}
#: Group directory objects (api/group-list.md, api/group-list-members.md,
#: api/user-list-memberof.md).
GROUP_READ = {"groupmember.read.all", "group.read.all", "group.readwrite.all",
              "directory.read.all", "directory.readwrite.all"}
#: What Graph answered app-only tokens on group calendars (application permissions "Not
#: supported", api/group-list-events.md): 403 ErrorAccessDenied, "Access is denied. Check
#: credentials and try again." (microsoftgraph/msgraph-sdk-powershell issue 623).
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

    subscriptions = None  # /subscriptions: a subscriptions.Subscriptions, set by the server

    def __init__(self, store, identity, events_delta: bool = False):
        self.store = store
        self.identity = identity
        self.deltas = delta.DeltaStates()
        # Serve /events/delta as beta does. False (default) answers 400 as v1.0 does: delta on
        # events without a time range is beta only (concepts/delta-query-events.md, note).
        self.events_delta = events_delta
        self._tl = threading.local()  # .role: the sharee's role while serving a shared calendar
        self._group_api = None
        # (mailbox, calendar, window) -> record id -> (seq, record, its calendarView entries);
        # the 64 windows used last (see _calendar_view_refs).
        self._view_refs: LRUCache = LRUCache(maxsize=64)

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
        if head == "subscriptions" and self.subscriptions is not None:
            return self.subscriptions.handle(req)  # change notifications (subscriptions.py)
        if head == "places":
            if delegated and not granted & PLACE_READ:
                raise _denied()
            return self._places(req)
        if head == "groups":
            return self._groups(req, seg, delegated, granted)
        if head != "users" or len(seg) < 2:
            raise bad_request(f"Resource not found for the segment '{seg[0] if seg else ''}'.")
        user = seg[1]
        box = self.store.mailbox(user)
        if box is None and self.store.group(user) is not None:
            # A group's id in a /users path (../shared/notes/graph-calendar-facts.md). The
            # status is not documented; the emulator answers 400.
            raise GraphError(400, "ErrorGroupIsUsedInNonGroupURI",
                             "The group mailbox can only be addressed through /groups/{id}.")
        if req.segments[0].lower() == "me":
            user = req.claims.get("oid") or user  # Graph's contexts for /me name the user id
        if delegated:
            own = box is not None and box.upn.lower() == req.claims.get("upn", "").lower()
            rest = seg[2:]
            low = [s.lower() for s in rest]
            if len(seg) == 2:
                if not (granted & (USER_READ if own else OTHER_USERS_READ)):
                    raise _denied()
            elif own and low == ["memberof"]:
                if not granted & (USER_READ | GROUP_READ):
                    raise _denied()
                return self._mailbox(req, box, user, rest)
            elif not own:
                if box is None:
                    raise _denied()
                return self._sharee_entry(req, box, user, rest, granted)
            elif not granted & CALENDAR_READ or (
                    req.method not in ("GET", "HEAD") and not granted & CALENDAR_WRITE
                    and low != ["calendar", "getschedule"]):
                raise _denied()
            elif len(rest) >= 2 and low[0] == "calendars" and (
                    hit := self.store.find_copy(box.upn, rest[1])) is not None:
                owner, cid, role = hit
                if not granted & SHARED_READ or (
                        req.method not in ("GET", "HEAD") and not granted & SHARED_WRITE):
                    raise _denied()
                if len(rest) == 2:
                    return self._copy_calendar(req, box, user, owner, cid, role)
                return self._shared(req, owner, owner.upn, ["calendars", cid, *rest[2:]], role)
            elif low == ["calendars"] and req.method == "GET" and granted & SHARED_READ:
                extra = [self.store.sharee_calendar(b, c, r, copy_for=box)
                         for b, c, r in self.store.shared_with(box.upn)]
                ctx = f"{req.base}/$metadata#users('{user}')/calendars"
                return self._calendar_list(req, box, ctx, extra=extra)
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
        if not delegated and app is not None:
            # App-only: a Calendars application permission (the token's roles) inside the
            # ApplicationAccessPolicy, or an RBAC for Applications assignment whose scope holds
            # the mailbox (Identity.App.calendar_access); getSchedule is a read.
            low = [s.lower() for s in seg[2:]]
            write = req.method not in ("GET", "HEAD") and low[-1:] != ["getschedule"]
            if low == ["memberof"]:
                refused = None if app.may_access(box.upn) else "policy"
            else:
                refused = app.calendar_access(box.upn, write)
            if refused == "policy":
                raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled.")
            if refused:
                raise _denied()
        return self._mailbox(req, box, user, seg[2:])

    @staticmethod
    def _method(req: Request, *allowed: str) -> None:
        if req.method not in allowed:
            raise GraphError(405, "Request_BadRequest",
                             "Specified HTTP method is not allowed for the request target.")

    # -- routing below /users/{user} ----------------------------------------------------------

    def _mailbox(self, req, box, user, rest, root: str = "users") -> Response:
        low = [s.lower() for s in rest]
        ctx = f"{req.base}/$metadata#{root}('{user}')"
        if low == ["memberof"] and root == "users":
            self._method(req, "GET")
            groups = [{"@odata.type": "#microsoft.graph.group", **g.json()}
                      for g in self.store.member_of(box.upn)]
            return Response(200, {"@odata.context": f"{req.base}/$metadata#directoryObjects",
                                  "value": groups})
        if low == ["calendar", "getschedule"] and root == "users":
            self._method(req, "POST")
            return self._get_schedule(req)
        if low[:2] == ["calendar", "calendarpermissions"]:
            return self._permissions(req, box, box.default_calendar_id, rest[2:],
                                     f"{ctx}/calendar/calendarPermissions")
        if len(low) >= 3 and low[0] == "calendars" and low[2] == "calendarpermissions":
            return self._permissions(req, box, rest[1], rest[3:],
                                     f"{ctx}/calendars('{rest[1]}')/calendarPermissions")
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
                              copy=True)
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

    def _calendar_list(self, req, box, context, extra=(), only=None) -> Response:
        """``extra``: calendars listed after the mailbox's own (a sharee's copies);
        ``only``: list these instead of the mailbox's calendars."""
        q = odata.parse(req.params, CALENDAR_PROPERTIES, "calendar")
        cals = (self.store.calendars(box.upn) if only is None else list(only)) + list(extra)
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
        role = getattr(self._tl, "role", None)
        if role is not None:
            data = sharing.redact(data, role)
        if by_id_get and q is not None and q.expand_exceptions \
                and data.get("type") == "seriesMaster":
            exceptions = []
            with self.store.lock:
                for exc in sorted(rec.exceptions.values(), key=lambda e: e.original_start):
                    inst = series.find(rec, exc.original_start)
                    if inst is not None:
                        d, e = self.store.shallow(rec, inst)
                        exceptions.append((sharing.redact(d, role) if role else d, e))
        return render.event(data, ext, view, exceptions)

    def _one(self, req, rec, inst, ctx_events, status=200, by_id_get=False) -> Response:
        q = odata.parse(req.params, render.EVENT_PROPERTIES, "event")
        view, headers = self._view(req, q)
        sel = f"({','.join(q.select)})" if q.select else ""
        with self.store.lock:  # rendered from what is stored; render.event copies
            data, ext = self.store.shallow(rec, inst)
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

    def _list(self, req, items, context, copy: bool = False) -> Response:
        """``items``: (data, ext, record) triples; applies $filter/$orderby/paging/$select.
        With ``copy``, ``items`` are records: filtered and sorted on read-only views and
        copied only when served, the page's events alone (the emulator's own cost, not
        Graph's)."""
        q = odata.parse(req.params, render.EVENT_PROPERTIES, "event")
        view, headers = self._view(req, q)
        if q.filter or q.orderby:
            role = getattr(self._tl, "role", None)
            with self.store.lock:
                # Records are filtered and sorted on read-only views of what they store
                # and copied only when served (copy below).
                source = [(*self.store.shallow(r), r) for r in items] if copy else items
                keyed = [(render.filter_view(sharing.redact(d, role) if role else d, e), d, e,
                          r) for d, e, r in source]
                if q.filter:
                    keyed = [k for k in keyed if q.filter(k[0])]
                keyed = odata.sort(keyed, q.orderby, get=lambda k: k[0])
            items = ([r for *_, r in keyed] if copy
                     else [(d, e, r) for _, d, e, r in keyed])
        offset, size = self._window(req, q)
        page = items[offset : offset + size]
        sel = f"({','.join(q.select)})" if q.select else ""
        if copy:
            # Records: rendered from what they store (render.event copies what it returns).
            with self.store.lock:
                value = [self._render(r, *self.store.shallow(r), view, q) for r in page]
        else:
            value = [self._render(r, d, e, view, q) for d, e, r in page]
        body = {"@odata.context": context + sel, "value": value}
        if offset + size < len(items):
            body["@odata.nextLink"] = self._next_link(req, offset + size, size)
        if "odata.maxpagesize" in parse_prefer(req.headers.get("prefer")):
            applied = headers.get("Preference-Applied")
            extra = f"odata.maxpagesize={size}"
            headers["Preference-Applied"] = f"{applied}, {extra}" if applied else extra
        return Response(200, body, headers)

    def _calendar_view_refs(self, box, cid, ws, we) -> list:
        """``(item id, record, instance or None)`` of the calendar's view over [ws, we),
        sorted by start then id, without copying any event (copy only what is returned)."""
        out = []
        key = (box.guid, cid or box.default_calendar_id, ws, we)
        with self.store.lock:
            # Each record's place in the view is kept per window until the record changes
            # (its seq): a delta round re-expands only the series that changed since.
            kept = self._view_refs.get(key) or {}
            fresh = {}
            for rec in self.store.records(box.upn, cid):
                hit = kept.get(rec.id)
                if hit is not None and hit[0] == rec.seq and hit[1] is rec:
                    entries = hit[2]
                elif rec.data.get("type") == "seriesMaster":
                    entries = [(inst.start, inst.id, rec, inst)
                               for inst in series.instances(rec, ws, we)]
                else:
                    start = times.from_dtz(rec.data["start"])
                    end = times.from_dtz(rec.data["end"])
                    entries = [(start, rec.id, rec, None)] if start < we and (
                        end > ws or (end == start and start >= ws)) else []
                fresh[rec.id] = (rec.seq, rec, entries)
                out.extend(entries)
            self._view_refs[key] = fresh
        out.sort(key=lambda x: (x[0], x[1]))
        return [x[1:] for x in out]

    def _calendar_view_items(self, box, cid, ws, we) -> list:
        with self.store.lock:
            return [(*self.store.full(rec, inst), rec)
                    for _, rec, inst in self._calendar_view_refs(box, cid, ws, we)]

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

    def _delta_items(self, page: list, view) -> list[dict]:
        """A delta page as served: ``(record, instance)`` refs rendered now (as the asker's
        role shows them), ``@removed`` entries as they are."""
        out = []
        role = getattr(self._tl, "role", None)
        with self.store.lock:
            for item in page:
                if isinstance(item, dict):
                    out.append(item)
                    continue
                data, ext = self.store.shallow(*item)  # render.event copies what it returns
                if role is not None:
                    data = sharing.redact(data, role)
                out.append({"@odata.type": "#microsoft.graph.event",
                            **render.event(data, ext, _without_select_only(view))})
        return out

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
                    refs = self._calendar_view_refs(box, cid, *window)
                else:
                    refs = [(r.id, r, None) for r in self.store.records(box.upn, cid)]
                seen = {item_id: r.id for item_id, r, _ in refs}  # item id -> record id
                # Items are rendered when their page is served (delta.DeltaStates.next): the
                # emulator copies only what it returns. A later page shows an item as it is
                # then; a change after the round began is reported by the next round too.
                out = [(rec, inst) for item_id, rec, inst in refs
                       if previous is None or rec.seq > previous.seq
                       or item_id not in previous.ids]
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
        page = self._delta_items(page, view)
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

    # -- calendar permissions, as the owner (or app-only) ------------------------------------

    def _permissions(self, req, box, cid, tail, context) -> Response:
        """calendarPermissions of one calendar (api/calendar-list-calendarpermissions.md,
        api/calendar-post-calendarpermissions.md: POST answers 200 with the entity,
        api/calendarpermission-update.md: only ``role``, api/calendarpermission-delete.md)."""
        if not tail:
            self._method(req, "GET", "POST")
            if req.method == "POST":
                body = read_json(req.body)
                schema.validate("calendarPermission", body)
                perm = self.store.add_permission(box.upn, cid, body)
                return Response(200, {"@odata.context": f"{context}/$entity", **perm})
            return Response(200, {"@odata.context": context,
                                  "value": self.store.permissions(box.upn, cid)})
        if len(tail) > 1:
            raise bad_request(f"Resource not found for the segment '{tail[1]}'.")
        pid = tail[0]
        self._method(req, "GET", "PATCH", "DELETE")
        if req.method == "DELETE":
            self.store.delete_permission(box.upn, cid, pid)
            return Response(204)
        if req.method == "PATCH":
            body = read_json(req.body)
            schema.validate("calendarPermission", body)
            perm = self.store.update_permission(box.upn, cid, pid, body)
        else:
            found = [p for p in self.store.permissions(box.upn, cid) if p["id"] == pid]
            if not found:
                raise not_found()
            perm = found[0]
        return Response(200, {"@odata.context": f"{context}/$entity", **perm})

    # -- free/busy ---------------------------------------------------------------------------

    def _get_schedule(self, req) -> Response:
        """``POST .../calendar/getSchedule`` (api/calendar-getschedule.md and its example,
        ../shared/notes/graph-calendar-facts.md): up to 20 ``schedules``, a period under 62
        days (400 ``ErrorTimeIntervalTooBig``), ``availabilityViewInterval`` 5-1440 minutes
        (default 30); times in UTC unless ``Prefer: outlook.timezone``. Each schedule's
        primary calendar gives ``scheduleItems`` (free items left out) and
        ``availabilityView`` (one digit per interval: 0 free, 1 tentative, 2 busy, 3 oof,
        4 workingElsewhere). What an item shows depends on the caller, as in the example
        (one schedule with subject/location, one with status and times only): the owner, an
        app-only token and sharees who may read events (limitedRead and up) see
        ``isPrivate``, ``subject`` and ``location``, except a private item's without
        delegateWithPrivateEventAccess; everyone else ("My Organization": freeBusyRead) sees
        ``status``, ``start`` and ``end``. An unknown address gets an entry with ``error``
        (``freeBusyError``; the responseCode is the emulator's choice)."""
        body = read_json(req.body)
        if not isinstance(body, dict) or not isinstance(body.get("schedules"), list) \
                or not body.get("startTime") or not body.get("endTime"):
            raise bad_request("schedules, startTime and endTime are required.",
                              "ErrorInvalidRequest")
        schedules = [str(x) for x in body["schedules"]]
        if len(schedules) > 20:
            raise bad_request("At most 20 schedules can be requested.", "ErrorInvalidRequest")
        interval = body.get("availabilityViewInterval") or 30
        if not isinstance(interval, int) or not 5 <= interval <= 1440:
            raise bad_request("availabilityViewInterval must be between 5 and 1440.",
                              "ErrorInvalidRequest")
        ws, we = times.from_dtz(body["startTime"]), times.from_dtz(body["endTime"])
        if we <= ws:
            raise bad_request("The end time must be after the start time.",
                              "ErrorInvalidRequest")
        if (we - ws).total_seconds() >= 62 * 86400:
            raise bad_request("The requested time duration specified is too long.",
                              "ErrorTimeIntervalTooBig")
        view, headers = self._view(req, None)
        caller = req.claims.get("upn", "").lower() if req.claims.get("scp") else None
        digits = {"free": 0, "tentative": 1, "busy": 2, "oof": 3, "workingelsewhere": 4}
        slots = -(-int((we - ws).total_seconds()) // (interval * 60))
        out = []
        for address in schedules:
            box = self.store.mailbox(address)
            if box is None:
                out.append({"scheduleId": address, "availabilityView": "",
                            "scheduleItems": [], "error": {
                                "message": f"The mailbox '{address}' was not found.",
                                "responseCode": "ErrorMailRecipientNotFound"}})
                continue
            if caller is None or caller == box.upn.lower():
                role = "owner"
            else:
                role = self.store.role_of(box.upn, None, caller) or "freeBusyRead"
            view_slots = [0] * slots
            items = []
            with self.store.lock:  # read-only views of what is stored; items copy values
                views = [self.store.shallow(rec, inst)[0] for _, rec, inst in
                         self._calendar_view_refs(box, box.default_calendar_id, ws, we)]
                for data in views:
                    status = data.get("showAs") or "busy"
                    if status == "free" or data.get("isCancelled"):
                        continue
                    start, end = times.from_dtz(data["start"]), times.from_dtz(data["end"])
                    item = {"status": status, "start": times.to_dtz(start, view.tz),
                            "end": times.to_dtz(end, view.tz)}
                    private = data.get("sensitivity") == "private"
                    if role == "owner" or role in sharing.EVENT_ROLES:
                        details = not private or role in ("owner", "delegateWithPrivateEventAccess")
                        item = {"isPrivate": private, **item}
                        if details:
                            item = {"isPrivate": private, "status": status,
                                    "subject": data.get("subject", ""),
                                    "location": (data.get("location") or {}).get("displayName", ""),
                                    "start": item["start"], "end": item["end"]}
                    items.append(item)
                    for i in range(slots):
                        lo = ws + dt.timedelta(minutes=interval * i)
                        hi = lo + dt.timedelta(minutes=interval)
                        if start < hi and end > lo:
                            view_slots[i] = max(view_slots[i], digits.get(status.lower(), 2))
            out.append({"scheduleId": address,
                        "availabilityView": "".join(str(d) for d in view_slots),
                        "scheduleItems": items,
                        "workingHours": {
                            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday",
                                           "friday"],
                            "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                            "timeZone": {"name": "UTC"}}})
        return Response(200, {"@odata.context": f"{req.base}/$metadata#Collection("
                              "microsoft.graph.scheduleInformation)", "value": out}, headers)

    # -- the sharee's view ----------------------------------------------------------------------

    def _sharee_entry(self, req, box, user, rest, granted) -> Response:
        """A delegated token on another user's mailbox: only calendars shared with or
        delegated to the signed-in user, by their role; anything else 403 ErrorAccessDenied
        (concepts/outlook-get-shared-events-calendars.md: ``/users/{owner}/calendar[/events]``
        with Calendars.Read.Shared or Calendars.ReadWrite.Shared). The role is the user's own
        permission entry or, for a user inside the organization without one, the role of "My
        Organization" (:meth:`.sharing.SharingStore.role_of`); ``/users/{owner}/calendars``
        lists the explicitly shared calendars only."""
        upn = req.claims.get("upn", "")
        low = [s.lower() for s in rest]
        if not granted & SHARED_READ or (
                req.method not in ("GET", "HEAD") and not granted & SHARED_WRITE):
            raise _denied()
        if low == ["calendars"]:
            self._method(req, "GET")
            cals = [self.store.sharee_calendar(b, c, r) for b, c, r in
                    self.store.shared_with(upn) if b is box]
            if not cals:
                raise _denied()
            return self._calendar_list(req, box, f"{req.base}/$metadata#users('{user}')"
                                       "/calendars", only=cals)
        if low[:1] == ["calendar"]:
            cid, rest = box.default_calendar_id, ["calendars", box.default_calendar_id, *rest[1:]]
        elif low[:1] == ["calendars"] and len(rest) >= 2:
            cid = rest[1]
            if cid not in box.calendars:
                raise _denied()
        elif low[:1] in (["events"], ["calendarview"]):
            cid, rest = box.default_calendar_id, ["calendars", box.default_calendar_id, *rest]
        else:
            raise _denied()
        role = self.store.role_of(box.upn, cid, upn)
        if role is None:
            raise _denied()
        return self._shared(req, box, user, rest, role)

    def _shared(self, req, box, user, rest, role) -> Response:
        """``rest`` = ``["calendars", cid, ...]`` of ``box``, served to a sharee with ``role``
        (resources/calendarpermission.md): freeBusyRead lists no events (403; free/busy only),
        limitedRead and read (private items without their information, see
        :func:`.sharing.redact`), write and delegates also create, update and delete; a
        private item is not writable without delegateWithPrivateEventAccess. The calendar
        itself is read-only to a sharee; its calendarPermissions are an empty collection."""
        cid, tail = rest[1], rest[2:]
        low = [s.lower() for s in tail]
        ctx = f"{req.base}/$metadata#users('{user}')"
        if not tail:
            if req.method != "GET":
                raise _denied()
            q = odata.parse(req.params, CALENDAR_PROPERTIES, "calendar")
            cal = self.store.sharee_calendar(box, cid, role)
            return Response(200, {"@odata.context": f"{ctx}/calendars/$entity",
                                  **render.calendar(cal, q.select)})
        if low[:1] == ["calendarpermissions"]:
            if req.method != "GET":
                raise _denied()
            if len(tail) > 1:
                raise not_found()
            return Response(200, {"@odata.context": f"{ctx}/calendars('{cid}')/"
                                  "calendarPermissions", "value": []})
        if low[:1] not in (["events"], ["calendarview"]):
            raise bad_request(f"Resource not found for the segment '{tail[0]}'.")
        if role not in sharing.EVENT_ROLES:
            raise _denied()
        if req.method not in ("GET", "HEAD"):
            if role not in sharing.WRITE_ROLES:
                raise _denied()
            if len(tail) >= 2 and low[0] == "events":
                rec, _ = self.store.resolve(box.upn, tail[1], cid)
                if rec.data.get("sensitivity") == "private" \
                        and role != "delegateWithPrivateEventAccess":
                    raise _denied()
        self._tl.role = role
        try:
            return self._mailbox(req, box, user, rest)
        finally:
            self._tl.role = None

    def _copy_calendar(self, req, box, user, owner, cid, role) -> Response:
        """The sharee's copy of a shared calendar in ``/me/calendars`` (seed 001); its name
        may be changed by the sharee (concepts/outlook-get-shared-events-calendars.md:
        "updating the calendar name for share recipients")."""
        self._method(req, "GET", "PATCH")
        ctx = f"{req.base}/$metadata#users('{user}')/calendars/$entity"
        if req.method == "PATCH":
            body = read_json(req.body)
            schema.validate("calendar", body)
            if set(body) - {"name", "@odata.type"}:
                raise _denied()
            if body.get("name"):
                self.store.rename_copy(box.upn, owner.upn, cid, body["name"])
        q = odata.parse(req.params, CALENDAR_PROPERTIES, "calendar")
        cal = self.store.sharee_calendar(owner, cid, role, copy_for=box)
        return Response(200, {"@odata.context": ctx, **render.calendar(cal, q.select)})

    # -- groups -------------------------------------------------------------------------------

    def _groups(self, req, seg, delegated, granted) -> Response:
        """``/groups``, ``/groups/{id}``, ``/groups/{id}/members`` (api/group-list.md,
        api/group-get.md, api/group-list-members.md) and the group calendar, delegated only:
        an app-only token gets 403 ErrorAccessDenied (application permissions "Not
        supported", api/group-list-events.md, api/group-get-calendar.md), so does a user who
        is not a member (../shared/notes/graph-calendar-facts.md)."""
        low = [s.lower() for s in seg]
        if len(seg) <= 3 and (len(seg) < 3 or low[2] == "members"):
            self._method(req, "GET")
            if delegated and not granted & GROUP_READ:
                raise _denied()
        if len(seg) == 1:
            return Response(200, {"@odata.context": f"{req.base}/$metadata#groups",
                                  "value": [g.json() for g in self.store.groups.values()]})
        group = self.store.group(seg[1])
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{seg[1]}' does not "
                             "exist or one of its queried reference-property objects are not "
                             "present.")
        if len(seg) == 2:
            return Response(200, {"@odata.context": f"{req.base}/$metadata#groups/$entity",
                                  **group.json()})
        if low[2:] == ["members"]:
            members = [{"@odata.type": "#microsoft.graph.user",
                        **self.store.mailbox(m).user_json()} for m in group.members]
            return Response(200, {"@odata.context": f"{req.base}/$metadata#directoryObjects",
                                  "value": members})
        if not delegated:
            raise GraphError(403, "ErrorAccessDenied",
                             "Access is denied. Check credentials and try again.")
        if not granted & GROUP_CALENDAR_READ or (
                req.method not in ("GET", "HEAD") and not granted & GROUP_CALENDAR_WRITE):
            raise _denied()
        if req.claims.get("upn", "").lower() not in group.members:
            raise _denied()
        if self._group_api is None:
            self._group_api = GraphApi(self.store.group_store, self.identity)
        gbox = self.store.group_store.mailbox(group.id)
        return self._group_api._mailbox(req, gbox, group.id, seg[2:], root="groups")

    # -- places -------------------------------------------------------------------------------

    def _places(self, req) -> Response:
        """Rooms, room lists and the rooms of a room list (api/place-list.md, examples 1-3)."""
        low = [s.lower() for s in req.segments]
        self._method(req, "GET")
        if low == ["places", "microsoft.graph.room"]:
            return Response(200, {
                "@odata.context": f"{req.base}/$metadata#places/microsoft.graph.room",
                "value": list(self.store.places),
            })
        if low == ["places", "microsoft.graph.roomlist"]:
            return Response(200, {
                "@odata.context": f"{req.base}/$metadata#places/microsoft.graph.roomList",
                "value": [{k: v for k, v in r.items() if k != "rooms"}
                          for r in self.store.room_lists],
            })
        if len(low) == 4 and low[2] == "microsoft.graph.roomlist" and low[3] == "rooms":
            for entry in self.store.room_lists:
                if low[1] in (entry["emailAddress"].lower(), entry["id"].lower()):
                    rooms = [p for p in self.store.places
                             if p.get("emailAddress", "").lower() in entry["rooms"]]
                    where = quote(req.segments[1], safe="")
                    return Response(200, {
                        "@odata.context": f"{req.base}/$metadata#places('{where}')/"
                                          "microsoft.graph.roomList/rooms",
                        "value": rooms,
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
