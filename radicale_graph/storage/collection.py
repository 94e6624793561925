"""Radicale collections backed by Graph: the root, one principal per mailbox, one calendar
collection per Graph calendar (Radicale's ``BaseCollection`` interface, Radicale 3.9)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from email.utils import formatdate

from radicale import item as radicale_item
from radicale import storage as radicale_storage

from .. import translation
from ..translation import UnsupportedObject
from ..translation.graph_to_ical import to_resource
from . import writer
from .cache import CachedEvent, CalendarCache, entry_from_graph
from .directory import CalendarInfo
from .graph_events import CalendarEvents
from .paths import default_href

logger = logging.getLogger("radicale_graph.storage")


class PlainCollection(radicale_storage.BaseCollection):
    """The root ("") or a mailbox's principal collection: no items, no properties."""

    def __init__(self, path: str) -> None:
        self._path = path

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

    def delete(self, href=None):
        raise ValueError("principal and root collections cannot be deleted")

    def get_meta(self, key=None):
        return None if key is not None else {}

    def set_meta(self, props):
        raise ValueError("principal collections have no writable properties")

    @property
    def last_modified(self) -> str:
        return formatdate(0, usegmt=True)

    @property
    def etag(self) -> str:
        return '"principal"'


class CalendarCollection(radicale_storage.BaseCollection):
    """One Graph calendar. Items come from a :class:`CalendarCache` listed from Graph when
    older than the refresh interval; writes go to Graph first and then update the cache."""

    def __init__(self, storage, info: CalendarInfo, cache: CalendarCache) -> None:
        self._storage = storage
        self.info = info
        self._cache = cache
        self._events = CalendarEvents(storage.client, info.mailbox, info.id)

    # -- identity and properties --------------------------------------------------------
    @property
    def path(self) -> str:
        return f"{self.info.mailbox}/{self.info.name}"

    def get_meta(self, key=None):
        meta = {"tag": "VCALENDAR", "D:displayname": self.info.display_name,
                "C:supported-calendar-component-set": "VEVENT"}
        if self.info.color:
            meta["ICAL:calendar-color"] = self.info.color
        return meta.get(key) if key is not None else meta

    def set_meta(self, props) -> None:
        """Only the display name is stored (Graph calendar ``name``); other properties are
        refused so nothing is silently lost."""
        fixed = ("tag", "D:displayname", "C:supported-calendar-component-set")
        unsupported = sorted(k for k, v in props.items()
                             if k not in fixed and v != self.get_meta(k))
        if unsupported:
            raise ValueError(f"cannot store {', '.join(unsupported)} on a Graph calendar")
        name = props.get("D:displayname")
        if name and name != self.info.display_name:
            self._storage.directory.rename(self.info, name)

    @property
    def last_modified(self) -> str:
        entries = self._entries()
        stamps = [e.last_modified for e in entries]
        if not stamps:
            return formatdate(0, usegmt=True)
        from email.utils import parsedate_to_datetime
        return max(stamps, key=lambda s: parsedate_to_datetime(s))

    # -- reading ------------------------------------------------------------------------
    def _entries(self) -> list[CachedEvent]:
        self._refresh()
        return self._cache.entries()

    def _refresh(self) -> None:
        if self._cache.is_fresh(self._storage.options.refresh_interval):
            return
        with self._storage.listing_lock(self.path):
            if self._cache.is_fresh(self._storage.options.refresh_interval):
                return
            started = time.monotonic()
            entries = []
            used: set[str] = set()
            for master in self._events.list_masters():
                entry = self._translate(master, list(master.get("exceptionOccurrences") or []),
                                        used)
                if entry is not None:
                    entries.append(entry)
                    used.add(entry.href)
            self._cache.replace_all(entries)
            logger.debug("listed %s: %d events in %.0f ms", self.path, len(entries),
                         (time.monotonic() - started) * 1000)

    def _translate(self, master: dict, exceptions: list[dict], used=frozenset(),
                   href: str | None = None) -> CachedEvent | None:
        try:
            resource = to_resource(master, exceptions, self._storage.options.rooms)
        except (ValueError, KeyError) as exc:
            logger.warning("event %s in %s cannot be shown: %s", master.get("id"), self.path,
                           exc)
            return None
        href = href or resource.href or default_href(resource.uid, master["id"])
        if href in used:
            href = default_href(f"{resource.uid}-{master['id']}", master["id"])
        return entry_from_graph(master, exceptions, resource, href)

    def _item(self, entry: CachedEvent) -> radicale_item.Item:
        return radicale_item.Item(
            collection_path=self.path, collection=self, href=entry.href,
            last_modified=entry.last_modified, text=entry.text, etag=entry.etag,
            uid=entry.uid, name="VCALENDAR", component_name="VEVENT",
            time_range=entry.time_range)

    def get_multi(self, hrefs: Iterable[str]):
        self._refresh()
        for href in hrefs:
            entry = self._cache.get(href)
            yield href, (self._item(entry) if entry else None)

    def get_all(self) -> Iterator[radicale_item.Item]:
        return (self._item(e) for e in self._entries())

    def has_uid(self, uid: str) -> bool:
        self._refresh()
        return self._cache.by_uid(uid) is not None

    def get_item(self, href: str) -> radicale_item.Item | None:
        self._refresh()
        entry = self._cache.get(href)
        return self._item(entry) if entry else None

    # -- writing ------------------------------------------------------------------------
    def upload(self, href: str, item: radicale_item.Item):
        """Write one resource to Graph (POST or PATCH plus exceptions) and return the item
        as Graph now holds it. Raises ``UnsupportedObject`` (nothing written) or Graph errors,
        recorded for the HTTP response."""
        if not self.info.can_edit:
            raise self._storage.report(PermissionError(
                f"calendar {self.path} is read-only for the gateway's app (Graph canEdit "
                f"is false)"))
        text = item.serialize()
        try:
            plan = translation.event_plan(text, href, self._storage.options.default_timezone)
        except UnsupportedObject as exc:
            raise self._storage.report(exc) from None
        self._refresh()
        old = self._cache.get(href)
        try:
            if old is None:
                master, exceptions = writer.create(self._events, href, text, plan)
            else:
                master, exceptions = writer.update(self._events, old, plan)
        except Exception as exc:
            self._cache.invalidate()
            raise self._storage.report(exc) from None
        master.setdefault("singleValueExtendedProperties", plan.master[
            "singleValueExtendedProperties"])
        entry = self._translate(master, exceptions, href=href)
        if entry is None:
            self._cache.invalidate()
            raise self._storage.report(RuntimeError(
                f"Graph stored {href} but returned an event the gateway cannot read back"))
        self._cache.put(entry)
        old_item = self._item(old) if old else None
        return self._item(entry), old_item

    def delete(self, href: str | None = None) -> None:
        if href is None:
            raise self._storage.report(PermissionError(
                "deleting a whole calendar through CalDAV is not supported; delete it in "
                "Outlook"))
        self._refresh()
        entry = self._cache.get(href)
        if entry is None:
            raise radicale_storage.ComponentNotFoundError(href)
        try:
            self._events.delete(entry.event_id, entry.odata_etag)
        except Exception as exc:
            self._cache.invalidate()
            raise self._storage.report(exc) from None
        self._cache.remove(href)


