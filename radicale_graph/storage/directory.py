"""The calendars of each served mailbox, listed from Graph and named for CalDAV."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import quote

from cachetools import TTLCache

from ..graph import GraphClient
from .paths import calendar_name


@dataclass(frozen=True)
class CalendarInfo:
    """One Graph calendar as a CalDAV collection: ``name`` is its path segment, ``color`` a
    ``#RRGGBB`` string or empty, ``can_edit`` from Graph's ``canEdit``."""

    mailbox: str
    name: str
    id: str
    display_name: str
    color: str
    can_edit: bool
    is_default: bool


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

    def __init__(self, client: GraphClient, max_age: float, route=None) -> None:
        self.client = client
        self.route = route or users_route(client)
        self.max_age = max_age
        self._lock = threading.Lock()
        self._calendars: TTLCache[str, dict[str, CalendarInfo]] = TTLCache(
            maxsize=4096, ttl=max_age)

    def calendars(self, mailbox: str) -> dict[str, CalendarInfo]:
        """Collection name -> calendar for ``mailbox``. Raises the Graph client's errors
        (``AccessDenied`` when the app's access policy excludes the mailbox)."""
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
        result = {}
        for calendar in listed:
            info = CalendarInfo(
                mailbox=mailbox, name=calendar_name(calendar), id=calendar["id"],
                display_name=calendar.get("name") or "", color=calendar.get("hexColor") or "",
                can_edit=calendar.get("canEdit", True) is not False,
                is_default=bool(calendar.get("isDefaultCalendar")))
            result[info.name] = info
        with self._lock:
            self._calendars[mailbox] = result
        return result

    def rename(self, info: CalendarInfo, display_name: str) -> None:
        """Rename a calendar in Graph (PATCH ``name``; api/calendar-update.md)."""
        client, user = self.route(info.mailbox)
        path = f"{user}/calendars/{quote(info.id)}"
        client.request("PATCH", path, mailbox=info.mailbox, operation="rename calendar",
                            json={"name": display_name})
        with self._lock:
            self._calendars.pop(info.mailbox, None)
