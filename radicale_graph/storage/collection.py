"""Radicale collections backed by Graph: the root, one principal per mailbox, one calendar
collection per Graph calendar (Radicale's ``BaseCollection`` interface, Radicale 3.9)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from email.utils import formatdate, parsedate_to_datetime

from cachetools import LRUCache
from radicale import item as radicale_item
from radicale import storage as radicale_storage
from radicale.app import report as radicale_report
from radicale.item import filter as radicale_filter

from .. import translation
from ..graph import NotFound, PreconditionFailed
from ..metrics import count_cache
from ..translation import UnsupportedObject
from . import colors, conditions, redaction, writer
from .access import owner_grant
from .cache import CachedEvent, CalendarCache, etag_for
from .calendar_props import KEPT_BY_GRAPH
from .directory import CalendarInfo
from .loader import CalendarLoader, is_series_master, translate
from .refresher import GRACE

logger = logging.getLogger("radicale_graph.storage")


# A cold multiget of up to this many hrefs reads them by href (ceil(N/20) $batch requests);
# more than that, one listing of the calendar (1,000 events per page) costs less.
COLD_MULTIGET_LIMIT = 40


class PlainCollection(radicale_storage.BaseCollection):
    """The root ("") or a mailbox's principal collection: no items, no properties."""

    def __init__(self, path: str, storage=None) -> None:
        self._path = path
        self._storage = storage

    @property
    def path(self) -> str:
        return self._path

    def get_multi(self, hrefs):
        return ((href, None) for href in hrefs)

    def get_all(self):
        return iter(())

    def has_uid(self, uid: str) -> bool:
        return False

    def upload(self, href, item):
        raise UnsupportedObject("a resource outside a calendar",
                                "events live in calendar collections")

    def _refuse(self, message: str):
        exc = PermissionError(message)
        return self._storage.report(exc) if self._storage else exc

    def delete(self, href=None):
        raise self._refuse("the root and the mailbox principals are Exchange mailboxes: they "
                           "cannot be deleted through CalDAV")

    def get_meta(self, key=None):
        return None if key is not None else {}

    def set_meta(self, props):
        raise self._refuse("principal collections have no writable properties")

    @property
    def last_modified(self) -> str:
        return formatdate(0, usegmt=True)

    @property
    def etag(self) -> str:
        return '"principal"'


class CalendarCollection(radicale_storage.BaseCollection):
    """One Graph calendar. Items are served from the calendar's :class:`CalendarCache`, kept
    current by its :class:`~.loader.CalendarLoader` when older than ``refresh_interval``;
    writes go to Graph first, then to the cache and the sync state, so every client sees them
    at once."""

    def __init__(self, storage, info: CalendarInfo, cache: CalendarCache,
                 loader: CalendarLoader) -> None:
        self._storage = storage
        self.info = info
        self._cache = cache
        self._loader = loader
        self._events = loader.events
        self._key = loader.key
        self.grant = info.grant or owner_grant(info.owner)

    # -- identity and properties --------------------------------------------------------
    @property
    def path(self) -> str:
        return self.info.path

    @property
    def _props_key(self) -> tuple[str, str]:
        """Whose kept properties these are: the home's (a shared calendar's client-side
        name and colour are the sharee's own), and the calendar's id."""
        return self.info.home or self.info.mailbox, self.info.id

    def _check_editable(self, what: str = "", action: str = "change events") -> None:
        """Raise (recorded, 403) PermissionError when the login's grant does not allow
        writing (the reason names the owner and the role) or Graph's ``canEdit`` of the
        calendar is false; ``what`` ends the message (e.g. ": it cannot be deleted")."""
        if not self.grant.writable:
            raise self._storage.report(PermissionError(
                self.grant.refusal(f"/{self.path}/", action)))
        if not self.info.can_edit and self.grant.owned:
            raise self._storage.report(PermissionError(
                f"calendar {self.path} is read-only for the gateway's app (Graph canEdit "
                f"is false){what}"))

    def get_meta(self, key=None):
        """The calendar's properties: name and colour as Graph holds them (the colour as the
        client wrote it while Graph still holds the value written for it, see
        :func:`.colors.shown`), and the dead properties the gateway keeps."""
        dead, client_color, written = self._storage.calendar_props.get(*self._props_key)
        meta = dict(dead)
        meta.update({"tag": "VCALENDAR", "D:displayname": self.info.display_name,
                     "C:supported-calendar-component-set": "VEVENT"})
        meta.pop("ICAL:calendar-color", None)
        color = colors.shown(client_color, written, self.info.graph_color, self.info.color)
        if color:
            meta["ICAL:calendar-color"] = color
        if not self.grant.owned:  # a sharee's own name and colour for the calendar
            meta.update({k: v for k, v in dead.items()
                         if k in ("D:displayname", "ICAL:calendar-color") and v})
        return meta.get(key) if key is not None else meta

    def set_meta(self, props) -> None:
        """PROPPATCH (RFC 4918 section 9.2; Radicale passes every property the calendar
        will have). ``D:displayname`` is Graph's ``name`` and ``ICAL:calendar-color`` the
        nearest ``calendarColor`` (PATCH, api/calendar-update.md; the client's string is kept
        and read back); any other property is kept by the gateway as a dead property. The
        resource type and the component set (VEVENT) cannot change. Refused with 403 when
        the app cannot edit the calendar (Graph ``canEdit`` false), or the login's grant is
        read-only. On a calendar the login does not own (shared, delegated, group, room) all
        properties are kept by the gateway for that login, the owner's calendar is unchanged."""
        self._check_editable(": its properties cannot be changed",
                             action="change the calendar's properties")
        if not self.grant.owned:
            self._storage.calendar_props.put(*self._props_key, dict(props), "", "")
            return
        props = dict(props)
        if props.get("tag", "VCALENDAR") != "VCALENDAR":
            raise self._storage.report(PermissionError(
                f"{self.path} is a Graph calendar: its resource type cannot change"))
        components = props.get("C:supported-calendar-component-set", "VEVENT")
        if {c.strip().upper() for c in components.split(",")} != {"VEVENT"}:
            raise self._storage.report(PermissionError(
                f"cannot set supported-calendar-component-set to {components} on "
                f"{self.path}: Graph calendars hold events (VEVENT) only"))
        patch = {}
        name = (props.get("D:displayname") or "").strip()
        if name and name != self.info.display_name:
            patch["name"] = name
        _, client_old, written_old = self._storage.calendar_props.get(*self._props_key)
        shown_old = colors.shown(client_old, written_old, self.info.graph_color,
                                 self.info.color)
        client_color = props.get("ICAL:calendar-color", "")
        written = self.info.graph_color  # unchanged colour: Graph still holds its value
        if client_color != shown_old:
            value = colors.nearest(client_color) if client_color else "auto"
            if value and value != self.info.graph_color:
                patch["color"] = value
            written = value or self.info.graph_color
        if patch:
            try:
                self._storage.directory.update(self.info, patch)
            except Exception as exc:
                if getattr(exc, "code", "") == "ErrorFolderExists":
                    exc = PermissionError(
                        f"cannot rename {self.path} to {name!r}: {self.info.mailbox} already "
                        f"has a calendar of that name (Graph 409 ErrorFolderExists)")
                raise self._storage.report(exc) from None
        dead = {k: v for k, v in props.items() if k not in KEPT_BY_GRAPH}
        self._storage.calendar_props.put(*self._props_key, dead, client_color,
                                         written if client_color else "")
        if patch:
            self._storage.reach.invalidate()
            fresh = self._storage.directory.find(self.info.mailbox, self.info.name)
            if fresh is not None:
                self.info = fresh

    @property
    def etag(self) -> str:
        """The ctag: changes exactly when an event or the calendar's properties change
        (revision of the sync state plus a digest of the properties). Costs no Graph request
        while the cache is fresh."""
        self._refresh()
        epoch, revision = self._storage.sync_state.revision(self._key)
        meta = hashlib.sha256(json.dumps(self.get_meta(), sort_keys=True).encode())
        return f'"{epoch}-{revision}-{meta.hexdigest()[:8]}"'

    def sync(self, old_token: str = ""):
        """RFC 6578 sync-collection: (new token, hrefs changed or deleted since
        ``old_token``; every href for an empty token). Raises ``ValueError`` for a token
        that is unknown or expired (Radicale answers 403 ``valid-sync-token``)."""
        self._refresh()
        token = self._storage.sync_state.token(self._key)
        if not old_token:
            return token, sorted(self._cache.hrefs())
        return token, self._storage.sync_state.changes_since(self._key, old_token)

    @property
    def last_modified(self) -> str:
        entries = self._entries()
        if not entries:
            return formatdate(0, usegmt=True)
        return max((e.last_modified for e in entries), key=parsedate_to_datetime)

    # -- reading ------------------------------------------------------------------------
    def _entries(self) -> list[CachedEvent]:
        self._refresh()
        return self._cache.entries()

    def _refresh(self) -> None:
        """Make the cache at most ``refresh_interval`` seconds old, refreshing here only when
        the background refresh (:mod:`.refresher`) has not done it already: a round it is
        running is waited for (the listing lock), a round that is due within its next tick
        is left to it (the cache is then served up to :data:`.refresher.GRACE` x
        ``refresh_interval`` old)."""
        max_age = self._storage.options.refresh_interval
        watched = self._storage.watch(self._loader)
        if self._cache.is_fresh(max_age):
            count_cache(hit=True)
            return
        with self._storage.listing_lock(self._key):
            if self._cache.is_fresh(max_age) or (
                    watched and self._cache.is_fresh(max_age * GRACE)):
                count_cache(hit=True)  # refreshed meanwhile, or the background round is due
                return
            count_cache(hit=False)
            try:
                self._loader.refresh()
            except Exception as exc:
                raise self._storage.report(exc) from None

    def _item(self, entry: CachedEvent) -> radicale_item.Item:
        text, etag = entry.text, entry.etag
        if self.grant.view != redaction.FULL:
            text, etag = _shown(entry, self.grant.view)
        return radicale_item.Item(
            collection_path=self.path, collection=self, href=entry.href,
            last_modified=entry.last_modified, text=text, etag=etag,
            uid=entry.uid, name="VCALENDAR", component_name="VEVENT",
            time_range=entry.time_range)

    def _check_reply(self, old: CachedEvent | None, plan) -> None:
        """Refuse (403) a reply to an invitation (the owner's PARTSTAT) from a sharee who is
        not a delegate: in Exchange only the owner and their delegates receive and answer
        meeting requests (concepts/outlook-share-or-delegate-calendar.md). Delegated copies
        do not tell the role (``editor``): Graph decides there and its refusal is passed on."""
        if old is None or self.grant.owned or self.grant.role in (
                "editor", "delegateWithPrivateEventAccess", "delegateWithoutPrivateEventAccess"):
            return
        reply = writer.REPLIES.get((plan.owner_partstat or "").upper())
        current = ((old.graph_master or {}).get("responseStatus") or {}).get("response")
        if reply and current != reply[1]:
            raise self._storage.report(PermissionError(
                f"{old.href}: only {self.grant.owner} and their delegates may answer this "
                f"invitation; your role {self.grant.says()} lets you edit events but not "
                f"reply on {self.grant.owner}'s behalf"))

    def _check_private(self, entry: CachedEvent | None, action: str) -> None:
        """Refuse (403) to change or delete a private event the grant shows as a busy block
        (Exchange: write and delegateWithoutPrivateEventAccess "can't view information of
        the owner's private events", resources/calendarpermission.md)."""
        if entry is not None and self.grant.view != redaction.FULL \
                and redaction.is_private(entry.text):
            raise self._storage.report(PermissionError(
                f"{entry.href} is a private event of {self.grant.owner}: your role "
                f"{self.grant.says()} does not let you {action} it"))

    def get_multi(self, hrefs: Iterable[str]):
        hrefs = list(dict.fromkeys(hrefs))
        if not self._cache.loaded and 0 < len(hrefs) <= COLD_MULTIGET_LIMIT:
            found = self._cold_multiget(hrefs)
            if found is not None:
                return ((href, self._item(found[href]) if found.get(href) else None)
                        for href in hrefs)
        self._refresh()
        return ((href, self._item(e) if (e := self._cache.get(href)) else None)
                for href in hrefs)

    def _cold_multiget(self, hrefs: list[str]) -> dict[str, CachedEvent] | None:
        """Events by href before the calendar was ever listed: ceil(N/20) ``$batch`` requests,
        plus ceil(S/20) for the S series masters among them (read by id).
        ``None`` when an href is not found that way (events made outside the gateway carry no
        kept href): the caller then lists the calendar."""
        try:
            found = self._events.find_by_hrefs(hrefs)
        except Exception as exc:
            raise self._storage.report(exc) from None
        series = [m[0]["id"] for m in found.values() if len(m) == 1 and is_series_master(m[0])]
        try:
            by_id = self._events.get_many(series) if series else {}
        except Exception as exc:
            raise self._storage.report(exc) from None
        result = {}
        for href, masters in found.items():
            if len(masters) != 1:
                return None
            # Lists carry no exceptions or cancellations: series masters read by id.
            event = by_id.get(masters[0]["id"]) or masters[0]
            if is_series_master(masters[0]) and by_id.get(masters[0]["id"]) is None:
                return None
            entry = translate(event, list(event.get("exceptionOccurrences") or []),
                              self._storage.options.rooms, href=href, owner=self.info.owner)
            if entry is None:
                return None
            result[href] = entry
        return result

    def get_all(self) -> Iterator[radicale_item.Item]:
        return (self._item(e) for e in self._entries())

    def get_filtered(self, filters):
        """calendar-query from the cache: events whose time range overlaps the query's.
        ``filters_matched`` is True where the answer is exact without Radicale re-checking:
        a single timed event under a plain time-range filter, or an event Radicale's own
        filter test (``radicale.app.report.test_filter``) already judged for this ETag, view
        and filter. Series (occurrence by occurrence) and all-day events (floating dates,
        whose cached range is widened) are judged by that test once and remembered, so a
        client asking for the same window again costs no re-parsing."""
        tag, start, end, simple = radicale_filter.simplify_prefilters(filters, "VCALENDAR")
        try:
            query = b"".join(ET.tostring(f) for f in filters)
        except TypeError:
            query = None
        for entry in self._entries():
            if tag is not None and tag != "VEVENT":
                continue
            istart, iend = entry.time_range
            if istart >= end or iend <= start:
                continue
            exact = simple and not entry.is_series and not entry.all_day
            if exact or query is None:
                yield self._item(entry), exact
                continue
            item = self._item(entry)
            verdict = _judged(item, self.grant.view, query, filters)
            if verdict is None:
                yield item, False  # Radicale re-checks and reports what it finds
            elif verdict:
                yield item, True

    def has_uid(self, uid: str) -> bool:
        self._refresh()
        return self._cache.by_uid(uid) is not None

    def get_item(self, href: str) -> radicale_item.Item | None:
        for _, item in self.get_multi([href]):
            return item
        return None

    # -- writing ------------------------------------------------------------------------
    def upload(self, href: str, item: radicale_item.Item):
        """Write one resource to Graph (POST or PATCH plus exceptions) and return the item
        as Graph now holds it. Raises ``UnsupportedObject`` (nothing written) or Graph errors,
        recorded for the HTTP response.

        Graph gets an If-Match only when the client sent one (:mod:`.conditions`); when
        Graph's If-Match fails but a fresh read shows the content the client matched (only
        the changeKey moved), the write is made again with the fresh changeKey. After a
        partial write the series is read back, so the next GET shows what Graph holds."""
        self._check_editable()
        # The listing lock: no refresh (a background round) reads Graph between this write
        # and its entry in the cache, so an older state of the event cannot come back.
        with self._storage.listing_lock(self._key):
            return self._upload(href, item)

    def _upload(self, href: str, item: radicale_item.Item):
        text = item.serialize()
        self._refresh()
        old = self._cache.get(href)
        self._check_private(old, "change")
        try:
            plan = translation.event_plan(
                text, href, self._storage.options.default_timezone, owner=self.info.owner,
                acting=None if self.grant.owned else self._storage.login())
            translation.check_against(plan, old.as_existing() if old else None)
        except UnsupportedObject as exc:
            raise self._storage.report(exc) from None
        self._check_reply(old, plan)
        try:
            if old is None:
                master, exceptions = writer.create(self._events, href, text, plan,
                                                   adopt=self._adopt(href))
            else:
                master, exceptions = self._conditional(
                    old, lambda entry, tag: writer.update(self._events, entry, plan, tag))
        except Exception as exc:
            self._after_failure(exc, old)
            raise self._storage.report(exc) from None
        written = plan.master or next(iter(plan.overrides.values()), {})
        master.setdefault("singleValueExtendedProperties",
                          written.get("singleValueExtendedProperties") or [])
        entry = translate(master, exceptions, self._storage.options.rooms, href=href,
                          owner=self.info.owner)
        if entry is None:
            self._cache.invalidate()
            raise self._storage.report(RuntimeError(
                f"Graph stored {href} but returned an event the gateway cannot read back"))
        self._cache.put(entry)
        self._loader.note_written(master)
        self._storage.sync_state.record(self._key, {href: entry.etag})
        old_item = self._item(old) if old else None
        return self._item(entry), old_item

    def _adopt(self, href: str):
        def adopt(event: dict) -> CachedEvent | None:
            return translate(event, list(event.get("exceptionOccurrences") or []),
                             self._storage.options.rooms, href=href, owner=self.info.owner)
        return adopt

    def _conditional(self, entry: CachedEvent, write):
        """Run ``write(entry, if_match)``: ``if_match`` is the cached ``@odata.etag`` when the
        client sent If-Match, else ``None``. On Graph's 412 the event is read again: if a
        client would read the same content (housekeeping moved the changeKey), the write is
        retried once with the fresh changeKey; otherwise the 412 stands (Outlook changed the
        event since the client read it)."""
        if conditions.client_if_match() is None:
            return write(entry, None)
        try:
            return write(entry, entry.odata_etag)
        except PreconditionFailed:
            fresh = self._loader.reread(entry.event_id)
            if fresh is None or fresh.etag != entry.etag:
                raise
            return write(fresh, fresh.odata_etag)

    def _after_failure(self, exc: Exception, old: CachedEvent | None) -> None:
        """Make the cache tell the truth after a failed write: a partial write is read back
        at once; otherwise the calendar is refreshed on the next read."""
        event_id = exc.event_id if isinstance(exc, writer.PartialWrite) else None
        if event_id:
            try:
                self._loader.reread(event_id)
                return
            except Exception as reread_exc:  # the answer still says what was written
                logger.warning("reading %s back after a partial write failed: %s", event_id,
                               reread_exc)
        self._cache.invalidate()

    def delete(self, href: str | None = None) -> None:
        if href is None:
            self._delete_calendar()
            return
        with self._storage.listing_lock(self._key):  # as in upload
            self._delete(href)

    def _delete(self, href: str) -> None:
        self._refresh()
        entry = self._cache.get(href)
        if entry is None:
            raise radicale_storage.ComponentNotFoundError(href)
        self._check_editable(action="delete events")
        self._check_private(entry, "delete")
        try:
            self._conditional(entry, lambda e, tag: self._events.delete(e.event_id, tag))
        except NotFound:
            self._events.removed_ids.add(entry.event_id)  # already gone: as the client asked
        except Exception as exc:
            self._cache.invalidate()
            raise self._storage.report(exc) from None
        self._cache.remove(href)
        self._storage.sync_state.record(self._key, {}, removed={href})

    def _delete_calendar(self) -> None:
        """DELETE of the calendar collection (RFC 4918 section 9.6): ``DELETE
        /users/{mailbox}/calendars/{id}`` (api/calendar-delete.md), then the directory, the
        caches and the kept state forget it. The default calendar is refused: Exchange keeps
        it (Graph answers ``ErrorDeleteDistinguishedFolder``)."""
        if not self.grant.owned:
            raise self._storage.report(PermissionError(
                f"/{self.path}/ is {self.grant.owner}'s calendar ({self.grant.says()}): only "
                f"its owner can delete it; to stop seeing it, remove it in Outlook (or ask "
                f"{self.grant.owner} to stop sharing it)"))
        if self.info.is_default:
            raise self._storage.report(PermissionError(
                f"the default calendar of {self.info.mailbox} cannot be deleted; Exchange "
                f"keeps it"))
        self._check_editable(": it cannot be deleted")
        try:
            self._storage.directory.delete(self.info)
        except NotFound:
            pass  # already gone: as the client asked
        except Exception as exc:
            raise self._storage.report(exc) from None
        self._storage.forget_calendar(self.info)
        logger.info("deleted calendar %s (%s)", self.path, self.info.id)


_SHOWN_LOCK = threading.Lock()
_SHOWN: LRUCache = LRUCache(maxsize=50000)


def _shown(entry: CachedEvent, view: str) -> tuple[str, str]:
    """(text, ETag) of ``entry`` as ``view`` shows it (:func:`.redaction.redact`), kept per
    (ETag, view) so a warm read redacts nothing again."""
    key = (entry.etag, view)
    with _SHOWN_LOCK:
        hit = _SHOWN.get(key)
    if hit is not None:
        return hit
    text = redaction.redact(entry.text, view)
    shown = (entry.text, entry.etag) if text is entry.text else (text, etag_for(text))
    with _SHOWN_LOCK:
        _SHOWN[key] = shown
    return shown


_JUDGED_LOCK = threading.Lock()
_JUDGED: LRUCache = LRUCache(maxsize=100000)


def _judged(item: radicale_item.Item, view: str, query: bytes, filters) -> bool | None:
    """Radicale's own verdict (``radicale.app.report.test_filter``, every filter) on
    ``item`` for ``query`` (the filters serialized), kept per (ETag, view, query); ``None``
    when the test raised (Radicale then re-checks and reports the error itself)."""
    key = (item.etag, view, query)
    with _JUDGED_LOCK:
        verdict = _JUDGED.get(key)
    if verdict is not None:
        return verdict
    try:
        verdict = all(radicale_report.test_filter("VCALENDAR", item, f) for f in filters)
    except Exception:
        return None
    with _JUDGED_LOCK:
        _JUDGED[key] = verdict
    return verdict
