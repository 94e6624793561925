"""Every calendar a login can reach, as collections of the login's own calendar home.

A person's home ``/<login>/`` lists their own calendars (as :class:`.directory.Directory`
names them), then, each under the segment ``<owner address>~<owner's segment>`` and with a
display name that says whose it is:

* **app-only** (the app's token reaches every served mailbox; the gateway enforces Exchange's
  sharing itself): each other served mailbox's calendars that ``calendarPermissions``
  (api/calendar-list-calendarpermissions.md) shares with the login. A person's calendar is
  listed only with an entry for the login (Outlook lists a calendar for a sharee only after
  an explicit share); a room's also by its "My Organization" role (Exchange's Default
  permission: rooms are for everyone in the organization).
* **delegated** (the person's own token; Graph enforces the sharing): the copies of shared and
  delegated calendars in ``/me/calendars`` (``owner`` not the person, seed 001), the
  calendars of the person's Microsoft 365 groups (``/me/memberOf``, ``/groups/{id}/calendar``,
  api/group-get-calendar.md) and the rooms of ``/places/microsoft.graph.room``
  (api/place-list.md) whose calendar the person may open, named with their room list; their
  events with titles and locations only (the role is not shown to a sharee, and rooms are
  shared so in most tenants).

Answers are kept ``refresh_interval`` seconds (so a permission changed in Outlook takes effect
within that time); groups, rooms and room lists ``calendar_list_interval`` seconds.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from urllib.parse import quote

from cachetools import TTLCache

from ..graph import AccessDenied, GraphError, NotFound
from . import redaction
from .access import MEMBER, Grant, grant_for_copy, grant_for_role, label, owner_grant, role_in
from .directory import CalendarInfo

logger = logging.getLogger("radicale_graph.storage")

SEPARATOR = "~"  # between the owner's address and the owner's segment


def alias(owner: str, segment: str) -> str:
    """The segment of another mailbox's calendar in a login's home."""
    return f"{owner}{SEPARATOR}{segment}"


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def _shown(display_name: str, whose: str) -> str:
    """A display name that says whose the calendar is."""
    if whose and whose.lower() not in display_name.lower():
        return f"{display_name} ({whose})" if display_name else whose
    return display_name or whose


class Reach:
    """What each login reaches (see the module text). ``storage`` is the
    :class:`~.storage.Storage`; its directories, clients and options are used."""

    def __init__(self, storage) -> None:
        self.storage = storage
        options = storage.options
        self._lock = threading.Lock()
        self._homes: TTLCache = TTLCache(maxsize=4096, ttl=options.refresh_interval)
        self._permissions: TTLCache = TTLCache(maxsize=16384, ttl=options.refresh_interval)
        self._extras: TTLCache = TTLCache(maxsize=4096, ttl=options.calendar_list_interval)
        self._own_memo: dict[tuple, tuple] = {}  # (login, delegated) -> (listing, own calendars)

    def invalidate(self, login: str | None = None) -> None:
        """Forget what was listed (for ``login``, or for everyone)."""
        with self._lock:
            self._homes.clear()
            if login is None:
                self._permissions.clear()

    def calendars(self, login: str, person: str) -> dict[str, CalendarInfo]:
        """Segment -> calendar of the home ``/<login>/``; ``person`` is the login served with
        its own delegated token ("" = app-only). Raises the Graph client's errors for the
        login's own calendars; others that fail are logged and left out."""
        others = self._others(login, person, None)  # delegated: lists /me/calendars afresh
        result = dict(self._own(login, person))     # ... which this then reuses
        result.update(others)
        return result

    def find(self, login: str, person: str, segment: str) -> CalendarInfo | None:
        """The calendar at ``/<login>/<segment>/``, or None. An own calendar costs no more
        than the directory's listing; another's reads only its owner's sharing."""
        if SEPARATOR not in segment:
            if not self._owns(login, person):
                return None
            own = self._own(login, person)
            if segment in own:
                return own[segment]
            info = self.storage.directory.find(person or login, segment)  # c-<hash> names
            if info is not None and info.owner in ("", person or login):
                return replace(info, grant=owner_grant(label(info.owner_name, info.owner)))
            return None
        owner = segment.split(SEPARATOR, 1)[0]
        return self._others(login, person, owner).get(segment)

    def _owns(self, login: str, person: str) -> bool:
        return bool(person) or login in self.storage.options.mailboxes

    def _own(self, login: str, person: str) -> dict[str, CalendarInfo]:
        """The login's own calendars (the directory keeps the listing)."""
        if not self._owns(login, person):
            return {}
        if person:
            listed = self.storage.me_directory.calendars(person)
        else:
            listed = self.storage.app_directory.calendars(login)
        owner = person or login
        # Radicale asks for rights once per item it lists: the grants are built once per
        # listing the directory keeps (the same dict object until it lists again).
        memo_key = (login, bool(person))
        kept = self._own_memo.get(memo_key)
        if kept is not None and kept[0] is listed:
            return kept[1]
        own = {segment: replace(info, grant=owner_grant(label(info.owner_name, owner)))
               for segment, info in listed.items() if info.owner in ("", owner)}
        self._own_memo[memo_key] = (listed, own)
        return own

    def _others(self, login: str, person: str, owner: str | None) -> dict[str, CalendarInfo]:
        """Calendars of others in the home (all, or those of ``owner``), kept
        ``refresh_interval`` seconds."""
        key = (login, bool(person), owner or "*")
        with self._lock:
            cached = self._homes.get(key)
        if cached is not None:
            return cached
        result = self._delegated(person, owner) if person else self._app_only(login, owner)
        with self._lock:
            self._homes[key] = result
        return result

    # -- app-only ---------------------------------------------------------------------------
    def _app_only(self, login: str, owner: str | None) -> dict[str, CalendarInfo]:
        storage, options = self.storage, self.storage.options
        result: dict[str, CalendarInfo] = {}
        listed: list[CalendarInfo] = []
        for mailbox in options.mailboxes:
            if mailbox == login or (owner is not None and mailbox != owner):
                continue
            try:
                listed.extend(storage.app_directory.calendars(mailbox).values())
            except GraphError as exc:
                logger.warning("calendars of %s left out of %s's home: %s", mailbox, login, exc)
        permissions = self._permissions_of(listed)
        inside_domains = {_domain(m) for m in options.mailboxes}
        for info in listed:
            room = info.mailbox in options.rooms
            inside = room and _domain(login) in inside_domains
            role = role_in(permissions.get((info.mailbox, info.id), []), login, inside)
            whose = info.owner_name or info.mailbox
            grant = grant_for_role(role, label(info.owner_name, info.mailbox))
            if grant is None:
                continue
            segment = alias(info.mailbox, info.name)
            result[segment] = replace(
                info, name=segment, home=login, grant=grant, kind="room" if room else "shared",
                display_name=_shown(info.display_name, whose))
        return result

    def _permissions_of(self, calendars: list[CalendarInfo]) -> dict[tuple, list]:
        """(mailbox, calendar id) -> its calendarPermission list, read 20 per ``$batch`` for
        those not kept (api/calendar-list-calendarpermissions.md). A calendar whose list
        Graph refuses has none (nothing is shared from it)."""
        out, wanted = {}, []
        with self._lock:
            for info in calendars:
                key = (info.mailbox, info.id)
                if key in self._permissions:
                    out[key] = self._permissions[key]
                else:
                    wanted.append(info)
        if not wanted:
            return out
        requests = [{"id": str(n), "method": "GET",
                     "url": f"/users/{quote(i.mailbox, safe='@')}/calendars/{quote(i.id)}"
                            f"/calendarPermissions"} for n, i in enumerate(wanted)]
        answers = self.storage.client.batch(requests, mailbox=None,
                                            operation="read calendar permissions")
        with self._lock:
            for info, answer in zip(wanted, answers, strict=True):
                key = (info.mailbox, info.id)
                if answer["status"] >= 400:
                    logger.warning("calendar permissions of %s (%s) not readable: %s %s",
                                   info.mailbox, info.display_name, answer["status"],
                                   ((answer.get("body") or {}).get("error") or {}).get("code"))
                    entries = []
                else:
                    entries = list((answer.get("body") or {}).get("value") or [])
                self._permissions[key] = out[key] = entries
        return out

    # -- delegated ----------------------------------------------------------------------------
    def _delegated(self, person: str, owner: str | None) -> dict[str, CalendarInfo]:
        storage = self.storage
        result: dict[str, CalendarInfo] = {}
        storage.me_directory.invalidate(person)  # shares change within refresh_interval
        for segment, info in storage.me_directory.calendars(person).items():
            if info.owner in ("", person) or (owner is not None and info.owner != owner):
                continue
            whose = label(info.owner_name, info.owner)
            segment = alias(info.owner, segment)
            path = f"/me/calendars/{quote(info.id)}"
            result[segment] = replace(
                info, name=segment, home=person, kind="shared",
                grant=grant_for_copy(info.can_edit, info.can_view_private, whose),
                calendar_path=path, events_path=f"{path}/events",
                display_name=_shown(info.display_name, info.owner_name or info.owner))
        for info in self._extra(person, "groups", self._groups) + \
                self._extra(person, "rooms", self._rooms):
            if owner is None or info.owner == owner:
                result[info.name] = info
        return result

    def _extra(self, person: str, kind: str, read) -> list[CalendarInfo]:
        with self._lock:
            cached = self._extras.get((person, kind))
        if cached is None:
            try:
                cached = read(person)
            except (AccessDenied, NotFound) as exc:
                logger.info("%s of %s not listed: %s", kind, person, exc)
                cached = []
            with self._lock:
                self._extras[(person, kind)] = cached
        return cached

    def _groups(self, person: str) -> list[CalendarInfo]:
        """The calendars of the person's Microsoft 365 groups (api/user-list-memberof.md;
        unified groups only, api/group-get-calendar.md)."""
        client, _ = self.storage._me_route(person)
        out = []
        for entry in client.iter_pages("/me/memberOf", mailbox=person,
                                       operation="list groups"):
            if "Unified" not in (entry.get("groupTypes") or []) or not entry.get("id"):
                continue
            gid, mail = entry["id"], (entry.get("mail") or entry["id"]).lower()
            name = entry.get("displayName") or mail
            out.append(CalendarInfo(
                mailbox=person, name=alias(mail, "calendar"), id=gid, display_name=name,
                color="", can_edit=True, is_default=False, owner_name=name,
                owner_address=mail, home=person, kind="group",
                grant=Grant(MEMBER, "rw", redaction.FULL, label(name, mail)),
                calendar_path=f"/groups/{quote(gid)}/calendar",
                events_path=f"/groups/{quote(gid)}/events"))
        return out

    def _rooms(self, person: str) -> list[CalendarInfo]:
        """The rooms of the tenant (api/place-list.md) whose calendar the person may open
        (``/users/{room}/calendar``): with events readable (``r``) or free/busy only
        (``f``, events refused with 403), named with their room list."""
        client, _ = self.storage._me_route(person)
        lists = {}
        for entry in client.iter_pages("/places/microsoft.graph.roomList", mailbox=person,
                                       operation="list room lists"):
            address = entry.get("emailAddress")
            if not address:
                continue
            for room in client.iter_pages(
                    f"/places/{quote(address, safe='@')}/microsoft.graph.roomList/rooms",
                    mailbox=person, operation="list rooms"):
                lists.setdefault((room.get("emailAddress") or "").lower(),
                                 entry.get("displayName") or address)
        out = []
        for room in client.iter_pages("/places/microsoft.graph.room", mailbox=person,
                                      operation="list rooms"):
            address = (room.get("emailAddress") or "").lower()
            if not address or address == person:
                continue
            user = f"/users/{quote(address, safe='@')}"
            try:
                calendar = client.get_json(f"{user}/calendar", mailbox=person,
                                           operation="open room calendar",
                                           params={"$select": "id,name"})
            except (AccessDenied, NotFound):
                continue
            name = room.get("displayName") or address
            whose = f"{name}, {lists[address]}" if address in lists else name
            try:
                client.get_json(f"{user}/calendar/events", mailbox=person,
                                operation="open room calendar",
                                params={"$top": "1", "$select": "id"})
                # The role is not shown to a sharee: rooms are shared with titles and
                # locations (limitedRead) in most tenants, so no more is served.
                grant = Grant("reviewer", "r", redaction.LIMITED, label(name, address))
            except AccessDenied:
                grant = Grant("freeBusyRead", "f", redaction.FREE_BUSY, label(name, address))
            out.append(CalendarInfo(
                mailbox=person, name=alias(address, "calendar"), id=calendar["id"],
                display_name=_shown(calendar.get("name") or "Calendar", whose), color="",
                can_edit=False, is_default=False, owner_name=name, owner_address=address,
                home=person, kind="room", grant=grant, calendar_path=f"{user}/calendar",
                events_path=f"{user}/calendar/events"))
        return out
