"""The Radicale storage plugin's entry class :class:`Storage` (``[storage] type = radicale_graph``).

Paths are ``/<mailbox>/<calendar>/<resource>.ics`` (see :mod:`.paths`). Radicale creates one
:class:`Storage` for the whole server; the logged-in user is kept per request in a context
variable, never on the instance. Implements Radicale 3.9's ``BaseStorage`` interface
(radicale/storage/__init__.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Iterator

from radicale import storage as radicale_storage

from ..graph import GraphClient
from ..graph.delegated import DelegatedTokens
from . import colors, errors
from . import config as plugin_config
from .cache import CalendarCache
from .calendar_props import KEPT_BY_GRAPH, CalendarProps
from .collection import CalendarCollection, PlainCollection
from .directory import CalendarInfo, Directory
from .free_busy import FreeBusyCollection, fetch_schedule
from .graph_events import CalendarEvents
from .loader import CalendarLoader
from .paths import DEFAULT_CALENDAR, parse
from .reach import SEPARATOR, Reach
from .refresher import LEAD, BackgroundRefresher
from .sync_state import SyncState

logger = logging.getLogger("radicale_graph.storage")

current_user: contextvars.ContextVar[str] = contextvars.ContextVar("radicale_graph_user",
                                                                  default="")
# How the request's login was checked, set by radicale_graph.auth (reset by the application
# before each request): an app password is served with the person's delegated token.
LOGIN_APP_PASSWORD = "app-password"
LOGIN_HTPASSWD = "htpasswd"
login_kind: contextvars.ContextVar[str] = contextvars.ContextVar("radicale_graph_login_kind",
                                                                default="")
# The UPN served with its own delegated token in this request ("" = app-only).
delegated_user: contextvars.ContextVar[str] = contextvars.ContextVar(
    "radicale_graph_delegated_user", default="")
TOKEN_CACHE_FILE = "token-cache.fernet"
_built_here = threading.local()


@contextlib.contextmanager
def closing_built() -> Iterator[None]:
    """Close, at the end of the ``with`` body, every storage built in this thread during it
    (a server builds its application, and so its storages, in the thread that serves)."""
    built: list = []
    _built_here.storages = built
    try:
        yield
    finally:
        _built_here.storages = None
        for storage in built:
            storage.close()


class Storage(radicale_storage.BaseStorage):
    """Radicale storage over Microsoft Graph calendars.

    Raises ``ValueError`` at construction when the ``[storage]`` options are incomplete
    (message names the option, never a secret)."""

    # Resource names are the clients' own (Graph keeps them in an extended property), so any
    # Unicode name works (Radicale 3.9 otherwise validates paths as "no-unicode").
    _supports_unicode = True

    def __init__(self, configuration) -> None:
        collector = getattr(_built_here, "storages", None)
        if collector is not None:
            collector.append(self)
        configuration = configuration.copy(plugin_config.PLUGIN_CONFIG_SCHEMA)
        super().__init__(configuration)
        self.settings, self.options = plugin_config.read(configuration)
        self.client = GraphClient(self.settings)
        self.calendar_props = CalendarProps(
            os.path.join(self.options.state_folder, "calendar-props.sqlite3")
            if self.options.state_folder else None)
        segments = self.calendar_props.segments
        self.app_directory = Directory(self.client, self.options.calendar_list_interval,
                                       segments=segments)
        self.delegated: DelegatedTokens | None = None
        self.me_directory: Directory | None = None
        if self.options.delegated:
            self.delegated = DelegatedTokens(
                self.settings, self.options.delegated_scopes,
                os.path.join(self.options.state_folder, TOKEN_CACHE_FILE),
                self.options.token_cache_key, self.signin_url)
            self.me_directory = Directory(self.client, self.options.calendar_list_interval,
                                          route=self._me_route, segments=segments)
        state_path = (os.path.join(self.options.state_folder, "sync-state.sqlite3")
                      if self.options.state_folder else None)
        self.sync_state = SyncState(state_path)
        self._loaders: dict[tuple[str, str], CalendarLoader] = {}
        self._caches_lock = threading.Lock()
        self._write_locks: dict[str, threading.RLock] = {}
        self._listing_locks: dict[str, threading.Lock] = {}
        self.reach = Reach(self)
        self.refresher: BackgroundRefresher | None = None
        if self.options.background_refresh:
            self.refresher = BackgroundRefresher(self.options.refresh_interval,
                                                 self.options.idle_after)
            self.refresher.start()
        from .notifications import for_storage  # Graph change notifications: refresh hints
        self.notifications = for_storage(self)

    # -- delegated mode ---------------------------------------------------------------------
    @property
    def signin_url(self) -> str:
        """The sign-in page, ``<public_url>/.signin/`` (path only without public_url)."""
        return f"{self.options.public_url}/.signin/"

    def _me_route(self, mailbox: str):
        return self.client.with_tokens(self.delegated.provider(mailbox)), "/me"

    @property
    def directory(self) -> Directory:
        """The calendar directory of this request: the person's own (``/me``, their token)
        when they logged in with an app password, else the app-only one."""
        if delegated_user.get() and self.me_directory is not None:
            return self.me_directory
        return self.app_directory

    def _serves(self, mailbox: str) -> bool:
        """Whether the home ``/<mailbox>/`` is served in this request: a login's own home
        only (every calendar it reaches is listed there, see :mod:`.reach`); without a
        login (the gateway's own checks), every served mailbox. A delegated person asking
        for another home raises PermissionError (403)."""
        person = delegated_user.get()
        if person:
            if mailbox != person:
                raise self.report(PermissionError(
                    f"{person} signed in with Microsoft sees only their own calendar home "
                    f"/{person}/ (calendars shared with them are listed there), not "
                    f"/{mailbox}/"))
            return True
        if not self.options.app_only:
            return False
        login = current_user.get().lower()
        if login:
            return mailbox == login
        return mailbox in self.options.mailboxes

    def _served_mailboxes(self) -> tuple[str, ...]:
        person = delegated_user.get()
        if person:
            return (person,)
        if not self.options.app_only:
            return ()
        login = current_user.get().lower()
        return (login,) if login else self.options.mailboxes

    def login(self) -> str:
        """The login of this request (lower-case; "" outside a request)."""
        return current_user.get().lower()

    def person_for(self, user: str) -> str:
        """The UPN served with its own delegated token for login ``user`` in this request
        ("" = app-only): in mode delegated every login, in mode both a login by app
        password (``login_kind``)."""
        if self.options.delegated and user and (
                self.options.mode == "delegated" or login_kind.get() == LOGIN_APP_PASSWORD):
            return user.lower()
        return ""

    # -- Exchange's sharing as Radicale rights ----------------------------------------------
    def exchange_rights(self, user: str, path: str) -> str:
        """Radicale rights letters that Exchange's sharing allows ``user`` on ``path`` (a
        sanitized path; see :mod:`.access`, :mod:`.rights`): ``R`` on the root, ``RW`` on the
        login's own home, the :class:`~.access.Grant`'s ``rw``/``r``/``f`` on a calendar of
        the home (``rw`` where the login may create one), nothing elsewhere (items: the
        calendar's rights apply). When writing is not allowed the reason is noted
        (:func:`.errors.note_denial`). Raises the Graph client's errors (recorded)."""
        target = parse(path)
        if target is None:
            return ""
        if target.mailbox is None:
            return "R"
        login = (user or "").lower()
        if not login:
            return ""
        if target.mailbox != login:
            errors.note_denial(
                f"/{target.mailbox}/ is not your calendar home: every calendar you may open, "
                f"including those shared with you in Exchange, is listed under /{login}/")
            return ""
        if target.calendar is None:
            return "RW"
        # A resource has its calendar's rights (Radicale checks a resource against its
        # calendar; MKCALENDAR of a path below a calendar then fails as Radicale says, 409).
        person = self.person_for(login)
        try:
            info = self.reach.find(login, person, target.calendar)
        except Exception as exc:
            raise self.report(exc) from None
        if info is None:
            if SEPARATOR in target.calendar or target.calendar.startswith("."):
                errors.note_denial(f"/{login}/{target.calendar}/ is not a calendar you may "
                                   f"open or create (segments with {SEPARATOR!r} name "
                                   f"calendars shared with you)")
                return ""
            if person or login in self.options.mailboxes:
                return "rw"
            errors.note_denial(f"{login}'s own mailbox is not served by the gateway "
                               f"([storage] mailboxes): /{login}/ lists only calendars shared "
                               f"with you, and no calendar can be created there")
            return ""
        grant = info.grant
        if grant is not None and not grant.writable:
            errors.note_denial(grant.refusal(
                f"/{info.path}/", "read its events (only when it is busy) or change anything"
                if grant.rights == "f" else
                "create, change or delete events or change its properties"))
        return grant.rights if grant is not None else "rw"

    # -- per-request state ----------------------------------------------------------------
    @contextlib.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args, **kwargs) -> Iterator[None]:
        """Set the request's user (and, for a login by app password in delegated mode, the
        person served with their own token); writes to one mailbox are serialized (so a PUT's
        UID check and upload are atomic), reads take no lock."""
        token = current_user.set(user or "")
        person = self.person_for(user or "")
        person_token = delegated_user.set(person)
        errors.clear()
        try:
            if mode == "w":
                target = parse(kwargs.get("path") or "")
                with self._lock_for(self._write_locks, target.mailbox if target else ""):
                    yield
            else:
                yield
        finally:
            delegated_user.reset(person_token)
            current_user.reset(token)

    def _lock_for(self, table: dict, key: str):
        with self._caches_lock:
            lock = table.get(key)
            if lock is None:
                lock = table[key] = threading.RLock()
            return lock

    def listing_lock(self, path: str):
        """Lock held while one calendar is listed from Graph (one listing at a time)."""
        return self._lock_for(self._listing_locks, path)

    def watch(self, loader: CalendarLoader) -> bool:
        """A client read the calendar of ``loader``: keep it fresh in the background
        (:mod:`.refresher`) until nobody reads it for ``idle_after`` seconds. Returns
        whether the background keeps it fresh (its cache was listed once)."""
        if self.refresher is None:
            return False
        key, cache = loader.key, loader.cache
        soon = self.options.refresh_interval * LEAD

        def refresh(hinted: bool) -> None:
            loader.settle()  # a round a listing opened ends first, outside the lock
            with self.listing_lock(key):
                age = cache.age()
                if not hinted and age is not None and age < soon / 2:
                    return  # a client's own read refreshed it meanwhile
                loader.refresh()
        self.refresher.touch(key, loader.events.mailbox, refresh, cache.age)
        return cache.age() is not None and self.refresher.watching(key)

    def report(self, exc: BaseException) -> BaseException:
        """Record ``exc`` for the HTTP response and return it (see :mod:`.errors`)."""
        return errors.record(exc)

    # -- discovery ------------------------------------------------------------------------
    def loader_for(self, info: CalendarInfo) -> CalendarLoader:
        """The cache and loader of one calendar (one per calendar for the server's life)."""
        with self._caches_lock:
            person = delegated_user.get()
            key = (info.mailbox, info.id, bool(person))
            loader = self._loaders.get(key)
            if loader is None:
                paths = {"calendar_path": info.calendar_path, "events_path": info.events_path,
                         "owner": info.owner}
                if person:  # the person's own token and /me paths; its own cache and state
                    client, user_path = self._me_route(info.mailbox)
                    events = CalendarEvents(client, info.mailbox, info.id, user_path, **paths)
                    state_key = f"me:{info.mailbox}/{info.id}"
                else:
                    events = CalendarEvents(self.client, info.mailbox, info.id, **paths)
                    state_key = f"{info.mailbox}/{info.id}"
                loader = self._loaders[key] = CalendarLoader(
                    events, CalendarCache(), self.sync_state, state_key,
                    self.options.rooms, self.options.delta_window,
                    self.options.full_listing_interval)
                if info.kind == "group":
                    # calendarView/delta is documented for users only (api/event-delta.md):
                    # a group calendar is kept current by reconciliations.
                    loader.delta_supported = False
            return loader

    def _collection(self, info: CalendarInfo):
        grant = info.grant
        if grant is not None and grant.rights == "f":
            return self._free_busy(info)
        loader = self.loader_for(info)
        return CalendarCollection(self, info, loader.cache, loader)

    def _free_busy(self, info: CalendarInfo) -> FreeBusyCollection:
        """A calendar shared as free/busy only: Graph's getSchedule answers free-busy
        queries (api/calendar-getschedule.md); no event is ever read."""
        if delegated_user.get():
            client, user_path = self._me_route(info.mailbox)
        else:
            client, user_path = self.client, f"/users/{info.owner}"

        def fetch(start, end):
            return fetch_schedule(client, user_path, info.mailbox, info.owner, start, end)
        return FreeBusyCollection(
            info.path, info.display_name,
            info.grant.refusal(f"/{info.path}/", "read or change its events"), fetch,
            self.report, max_days=self.options.delta_window)

    def calendar(self, mailbox: str, name: str):
        """The collection for ``/<mailbox>/<name>/``, or ``None``: with a login, a calendar
        of its home as :class:`.reach.Reach` lists it."""
        login = current_user.get().lower()
        try:
            if login:
                info = self.reach.find(login, delegated_user.get(), name) \
                    if mailbox == login else None
            else:
                info = self.directory.find(mailbox, name)
        except Exception as exc:
            raise self.report(exc) from None
        if info is None:
            return None
        return self._collection(info)

    def home_calendars(self, mailbox: str) -> list[CalendarInfo]:
        """The calendars listed in the home ``/<mailbox>/`` in this request."""
        login = current_user.get().lower()
        if login:
            return list(self.reach.calendars(login, delegated_user.get()).values())
        return list(self.directory.calendars(mailbox).values())

    def discover(self, path: str, depth: str = "0", child_context_manager=None,
                 user_groups=frozenset()):
        """Yield the object at ``path`` and, unless ``depth == "0"``, its children.

        Lazy: Radicale reads only the first element of ``discover("/user/", depth="1")`` on
        every request, so children are listed only when iterated."""
        target = parse(path)
        if target is None:
            return
        manager = child_context_manager or (lambda path, href=None: contextlib.nullcontext())
        if target.mailbox is None:
            yield PlainCollection("", self)
            if depth != "0":
                for mailbox in self._served_mailboxes():
                    with manager(mailbox, None):
                        yield PlainCollection(mailbox, self)
            return
        if not self._serves(target.mailbox):
            return
        if target.calendar is None:
            yield PlainCollection(target.mailbox, self)
            if depth != "0":
                try:
                    calendars = self.home_calendars(target.mailbox)
                except Exception as exc:
                    raise self.report(exc) from None
                for info in calendars:
                    with manager(f"{target.mailbox}/{info.name}", None):
                        yield self._collection(info)
            return
        collection = self.calendar(target.mailbox, target.calendar)
        if collection is None:
            return
        if target.href is not None:
            item = collection.get_item(target.href)
            if item is not None:
                yield item
            return
        yield collection
        if depth != "0":
            for item in collection.get_all():
                with manager(collection.path, item.href):
                    yield item

    def move(self, item, to_collection, to_href: str) -> None:
        raise self.report(PermissionError(
            "MOVE is not supported by the Graph gateway: copy the event and delete the old one"))

    def create_collection(self, href: str, items=None, props=None):
        """MKCALENDAR (RFC 4791 section 5.3.1; also an extended MKCOL, RFC 5689) of
        ``/<mailbox>/<segment>/``: ``POST /users/{mailbox}/calendars`` (api/user-post-calendars.md)
        with ``name`` = the ``D:displayname`` (Graph requires a name: without one the segment
        is used) and ``color`` = the ``calendarColor`` nearest to ``ICAL:calendar-color``. The
        calendar is then served at the segment the client chose (kept in
        :class:`.calendar_props.CalendarProps`) and at ``c-<hash of its id>``; other
        properties of the request are kept as dead properties. Graph's 409
        ``ErrorFolderExists`` (a calendar of that name exists) is refused with 403 naming it.

        A mailbox principal "exists" for served mailboxes (Radicale creates the login's own
        principal on first use). A PUT of a whole calendar (``items`` given) is refused."""
        target = parse(href)
        if target and target.calendar is None and not props:
            if target.mailbox in self._served_mailboxes():
                return PlainCollection(target.mailbox, self), {}, []
            # Radicale tries this for every login with W on /<login>/ and fails the request.
            raise self.report(PermissionError(
                f"login {target.mailbox} is not a mailbox served by the gateway: add it to "
                f"[storage] mailboxes, or do not grant W on its own path in the rights file"))
        if target is None or target.calendar is None or target.href is not None:
            raise self.report(PermissionError(
                f"cannot create collection {href!r}: the gateway creates calendars only, at "
                f"/<mailbox>/<calendar>/, and serves a mailbox listed in [storage] mailboxes"))
        if items is not None:
            raise self.report(PermissionError(
                f"cannot create or replace calendar /{target.mailbox}/{target.calendar}/ "
                f"with a PUT of a whole calendar: create it with MKCALENDAR, then PUT its "
                f"events one by one"))
        props = dict(props or {})
        tag = props.get("tag", "")
        if tag != "VCALENDAR":
            kind = "an address book" if tag == "VADDRESSBOOK" else "a plain collection"
            raise self.report(PermissionError(
                f"cannot create {kind} at /{target.mailbox}/{target.calendar}/: Exchange "
                f"mailboxes hold calendars here; use MKCALENDAR"))
        components = props.get("C:supported-calendar-component-set", "VEVENT")
        if "VEVENT" not in {c.strip().upper() for c in components.split(",")}:
            raise self.report(PermissionError(
                f"cannot create a calendar for {components}: Graph calendars hold events "
                f"(VEVENT) only"))
        if not self._serves(target.mailbox) or not (
                delegated_user.get() or target.mailbox in self.options.mailboxes):
            raise self.report(PermissionError(
                f"cannot create a calendar in {target.mailbox}: not a mailbox served by the "
                f"gateway ([storage] mailboxes); calendars shared with you are listed in "
                f"your home, but new ones go into your own mailbox"))
        if target.calendar == DEFAULT_CALENDAR or target.calendar.startswith(".") \
                or SEPARATOR in target.calendar:
            raise self.report(PermissionError(
                f"the path segment {target.calendar!r} is reserved by the gateway; choose "
                f"another"))
        name = (props.get("D:displayname") or "").strip() or target.calendar
        body = {"name": name}
        client_color = props.get("ICAL:calendar-color", "")
        value = colors.nearest(client_color) if client_color else None
        if value:
            body["color"] = value
        try:
            created = self.directory.create(target.mailbox, body)
        except Exception as exc:
            if getattr(exc, "code", "") == "ErrorFolderExists":
                exc = PermissionError(
                    f"cannot create calendar /{target.mailbox}/{target.calendar}/: "
                    f"{target.mailbox} already has a calendar named {name!r} (Graph 409 "
                    f"ErrorFolderExists); choose another display name")
            raise self.report(exc) from None
        calendar_id = created["id"]
        self.reach.invalidate()
        self.calendar_props.set_segment(target.mailbox, target.calendar, calendar_id)
        dead = {k: v for k, v in props.items() if k not in KEPT_BY_GRAPH}
        self.calendar_props.put(target.mailbox, calendar_id, dead, client_color,
                                (created.get("color") or "") if client_color else "")
        collection = self.calendar(target.mailbox, target.calendar)
        if collection is None:
            raise self.report(RuntimeError(
                f"Graph created calendar {name!r} in {target.mailbox} but does not list it"))
        logger.info("created calendar %r (%s) in %s at %s", name, calendar_id, target.mailbox,
                    target.calendar)
        return collection, {}, []

    def forget_calendar(self, info: CalendarInfo) -> None:
        """Drop a deleted calendar from the directory, the caches and the kept state."""
        self.directory.invalidate(info.mailbox)
        self.app_directory.invalidate(info.mailbox)
        self.reach.invalidate()
        with self._caches_lock:
            for key in [k for k in self._loaders if k[:2] == (info.mailbox, info.id)]:
                del self._loaders[key]
        self.calendar_props.forget(info.mailbox, info.id)

    def close(self) -> None:
        """Stop the background threads (refresh, change notifications); the storage serves
        on without them (every read then refreshes by itself)."""
        if self.refresher is not None:
            self.refresher.stop()
            self.refresher = None
        if self.notifications is not None:
            self.notifications.stop()
            self.notifications = None

    def verify(self) -> bool:
        """Check that the app can get a token and list every served mailbox's calendars."""
        ok = True
        for mailbox in self.options.mailboxes:
            try:
                self.directory.calendars(mailbox)
            except Exception as exc:
                logger.error("%s", exc)
                ok = False
        return ok
