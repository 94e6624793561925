"""The calendars of each served mailbox, listed from Graph and named for CalDAV."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from urllib.parse import quote

from cachetools import TTLCache

from ..graph import GraphClient
from .access import Grant
from .paths import calendar_name


@dataclass(frozen=True)
class CalendarInfo:
    """One Graph calendar as a CalDAV collection: ``name`` is its path segment, ``color``
    Graph's ``hexColor`` (``#RRGGBB`` or empty), ``graph_color`` Graph's ``color``
    (``calendarColor``), ``can_edit`` from Graph's ``canEdit``.

    ``mailbox`` is the mailbox whose token and paths reach Graph (the app's ``/users/{mailbox}``,
    or the signed-in person for ``/me``); ``owner_address``/``owner_name`` whose calendar it is
    (Graph's ``owner``; empty = ``mailbox``). A calendar reached through sharing, a group or
    a room lives in the login's home (``home``; empty = ``mailbox``) under its own segment,
    with the login's :class:`~.access.Grant` (``None`` = the owner's) and, when Graph reaches
    it elsewhere than ``{user}/calendars/{id}``, its ``calendar_path`` and ``events_path``
    (see :class:`~.graph_events.CalendarEvents`). ``kind``: ``own``, ``shared``, ``group`` or
    ``room``."""

    mailbox: str
    name: str
    id: str
    display_name: str
    color: str
    can_edit: bool
    is_default: bool
    graph_color: str = ""
    owner_name: str = ""
    owner_address: str = ""
    can_view_private: bool = True
    home: str = ""
    grant: Grant | None = None
    calendar_path: str = ""
    events_path: str = ""
    kind: str = "own"

    @property
    def owner(self) -> str:
        """The owner's mailbox address (lower-case)."""
        return (self.owner_address or self.mailbox).lower()

    @property
    def path(self) -> str:
        """The collection's path: ``<home>/<segment>``."""
        return f"{self.home or self.mailbox}/{self.name}"


def users_route(client: GraphClient):
    """The app-only route: ``mailbox -> (client, "/users/{mailbox}")``."""
    return lambda mailbox: (client, f"/users/{quote(mailbox, safe='@')}")


class Directory:
    """Lists ``/users/{mailbox}/calendars`` (api/user-list-calendars.md) and keeps the result
    for ``max_age`` seconds.

    ``route(mailbox) -> (client, user_path)`` chooses the client and the path of the mailbox:
    by default the app-only client and ``/users/{mailbox}``; in delegated mode a view of the
    client with the person's token and ``/me`` (api/user-list-calendars.md: ``GET
    /me/calendars``)."""

    def __init__(self, client: GraphClient, max_age: float, route=None, segments=None) -> None:
        self.client = client
        # mailbox -> {client's path segment: calendar id} (:class:`.calendar_props.CalendarProps`)
        self.segments = segments or (lambda mailbox: {})
        self.route = route or users_route(client)
        self.max_age = max_age
        self._lock = threading.Lock()
        self._calendars: TTLCache[str, dict[str, CalendarInfo]] = TTLCache(
            maxsize=4096, ttl=max_age)

    def calendars(self, mailbox: str) -> dict[str, CalendarInfo]:
        """Collection name -> calendar for ``mailbox``, one entry per calendar: the path
        segment a client created it at (MKCALENDAR), else :func:`.paths.calendar_name`.
        Raises the Graph client's errors (``AccessDenied`` when the app's access policy
        excludes the mailbox)."""
        with self._lock:
            cached = self._calendars.get(mailbox)
            if cached is not None:
                return cached
        client, user = self.route(mailbox)
        listed = list(client.iter_pages(
            f"{user}/calendars", mailbox=mailbox, operation="list calendars",
            params={"$top": "100"}))
        if not any(c.get("isDefaultCalendar") for c in listed):
            default = client.get_json(f"{user}/calendar", mailbox=mailbox,
                                           operation="read default calendar")
            for calendar in listed:
                calendar["isDefaultCalendar"] = calendar["id"] == default["id"]
        chosen = {cid: segment for segment, cid in sorted(self.segments(mailbox).items())}
        result = {}
        for calendar in listed:
            default = bool(calendar.get("isDefaultCalendar"))
            info = CalendarInfo(
                mailbox=mailbox,
                name=calendar_name(calendar) if default else chosen.get(
                    calendar["id"], calendar_name(calendar)),
                id=calendar["id"],
                display_name=calendar.get("name") or "", color=calendar.get("hexColor") or "",
                can_edit=calendar.get("canEdit", True) is not False,
                is_default=default, graph_color=calendar.get("color") or "",
                owner_name=(calendar.get("owner") or {}).get("name") or "",
                owner_address=((calendar.get("owner") or {}).get("address") or "").lower(),
                can_view_private=calendar.get("canViewPrivateItems", True) is not False)
            result[info.name] = info
        with self._lock:
            self._calendars[mailbox] = result
        return result

    def find(self, mailbox: str, name: str) -> CalendarInfo | None:
        """The calendar at path segment ``name``: its listed name, or the ``c-<hash>`` name
        of a calendar listed under the segment a client chose (both keep working)."""
        calendars = self.calendars(mailbox)
        info = calendars.get(name)
        if info is not None:
            return info
        for info in calendars.values():
            if not info.is_default and calendar_name({"id": info.id}) == name:
                return replace(info, name=name)
        return None

    def invalidate(self, mailbox: str) -> None:
        """Forget the listing of ``mailbox`` (after a change through the gateway)."""
        with self._lock:
            self._calendars.pop(mailbox, None)

    def create(self, mailbox: str, body: dict) -> dict:
        """Create a calendar (``POST /users/{id}/calendars``, api/user-post-calendars.md;
        ``name`` is required) and return Graph's calendar."""
        client, user = self.route(mailbox)
        try:
            response = client.request("POST", f"{user}/calendars", mailbox=mailbox,
                                      operation="create calendar", json=body)
        finally:
            self.invalidate(mailbox)
        return response.body or {}

    def update(self, info: CalendarInfo, patch: dict, operation: str = "update calendar"):
        """PATCH a calendar's writable properties (``name``, ``color``;
        api/calendar-update.md)."""
        client, user = self.route(info.mailbox)
        path = f"{user}/calendars/{quote(info.id)}"
        try:
            client.request("PATCH", path, mailbox=info.mailbox, operation=operation,
                           json=patch)
        finally:
            self.invalidate(info.mailbox)

    def delete(self, info: CalendarInfo) -> None:
        """Delete a calendar (``DELETE /users/{id}/calendars/{id}``, api/calendar-delete.md;
        204 No Content)."""
        client, user = self.route(info.mailbox)
        try:
            client.request("DELETE", f"{user}/calendars/{quote(info.id)}",
                           mailbox=info.mailbox, operation="delete calendar")
        finally:
            self.invalidate(info.mailbox)
