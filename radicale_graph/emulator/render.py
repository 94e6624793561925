"""How events and calendars are shown in responses: zone, body format, $select, $expand.

- ``Prefer: outlook.timezone`` sets the zone of ``start``/``end`` (default UTC); all-day events
  keep their midnight wall times in that zone (resources/datetimetimezone.md, api/event-get.md).
- ``Prefer: outlook.body-content-type`` converts ``body`` to text or HTML (api/event-get.md).
- ``$select``: ``id`` and ``@odata.etag`` are always returned; ``cancelledOccurrences`` only when
  selected (resources/event.md).
- ``singleValueExtendedProperties`` appear only when expanded with a filter that matches
  (api/singlevaluelegacyextendedproperty-get.md).
Key order follows the 201 response of api/user-post-events.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from urllib.parse import quote

from . import normalize, times

SELECT_ONLY = {"cancelledOccurrences"}
EVENT_ORDER = [
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "transactionId",
    "originalStartTimeZone", "originalEndTimeZone", "iCalUId", "reminderMinutesBeforeStart",
    "isReminderOn", "hasAttachments", "subject", "bodyPreview", "importance", "sensitivity",
    "isAllDay", "isCancelled", "isOrganizer", "responseRequested", "seriesMasterId", "showAs",
    "type", "webLink", "onlineMeetingUrl", "isOnlineMeeting", "onlineMeetingProvider",
    "allowNewTimeProposals", "isDraft", "hideAttendees", "originalStart", "cancelledOccurrences",
    "responseStatus", "body", "start", "end", "location", "locations", "recurrence", "attendees",
    "organizer", "onlineMeeting",
]
EVENT_PROPERTIES = {p.lower(): p for p in EVENT_ORDER + ["singleValueExtendedProperties",
                                                         "multiValueExtendedProperties",
                                                         "exceptionOccurrences", "instances",
                                                         "attachments", "extensions", "calendar"]}


@dataclass
class View:
    """How a client asked to see items.

    ``select``: property names (canonical case) or None for the default set; ``"*"`` in the list
    means every default property. ``ext_ids``: lower-case extended property ids to expand, or
    None. ``tz``: zone name for start/end. ``body_type``: "text", "html" or None (HTML).
    """

    tz: str = "UTC"
    body_type: str | None = None
    select: list | None = None
    ext_ids: list | None = None


def web_link(event_id: str) -> str:
    """OWA deep link of an event (resources/event.md, webLink note)."""
    item = quote(event_id, safe="")
    return f"https://outlook.office365.com/owa/?itemid={item}&exvsurl=1&path=/calendar/item"


def _time(value: dict, all_day: bool, zone_name: str) -> dict:
    if all_day:
        return {"dateTime": times.fmt_local(times.parse_naive(value["dateTime"])[0]),
                "timeZone": zone_name}
    return times.to_dtz(times.from_dtz(value), zone_name)


def _body(body: dict, wanted: str | None) -> dict:
    wanted = wanted or "html"  # api/event-get.md: without the Prefer header, HTML
    kind = body.get("contentType", "html")
    content = body.get("content") or ""
    if wanted == "text" and kind == "html":
        return {"contentType": "text", "content": normalize.html_to_text(content)}
    if wanted == "html" and kind == "text":
        html = normalize.text_to_html(content) if content else ""
        return {"contentType": "html", "content": html}
    return {"contentType": kind, "content": content}


def _selected(view: View, name: str) -> bool:
    if view.select is None:
        return name not in SELECT_ONLY
    if name in view.select:
        return True
    return "*" in view.select and name not in SELECT_ONLY


def event(data: dict, ext: dict, view: View, exceptions: list | None = None) -> dict:
    """The JSON of one event. ``data``: stored-form event (start/end in their own zones);
    ``ext``: lower id -> (id, value); ``exceptions``: (data, ext) pairs to inline as
    ``exceptionOccurrences`` when that navigation was expanded."""
    out: dict = {"@odata.etag": f'W/"{data.get("changeKey", "")}"'}
    keys = EVENT_ORDER + [k for k in data if k not in EVENT_ORDER]
    all_day = bool(data.get("isAllDay"))
    for name in keys:
        if name not in data or (name != "id" and not _selected(view, name)):
            continue
        value = data[name]
        if name == "transactionId" and value is None:
            continue
        if name in ("start", "end") and value:
            value = _time(value, all_day, view.tz)
        elif name == "body" and value:
            value = _body(value, view.body_type)
        else:
            value = copy.deepcopy(value)
        out[name] = value
    if view.ext_ids is not None:
        found = [{"id": ext[k][0], "value": ext[k][1]} for k in view.ext_ids if k in ext]
        if found:
            out["singleValueExtendedProperties"] = found
    if exceptions is not None:
        inner = View(tz=view.tz, body_type=view.body_type, ext_ids=view.ext_ids)
        out["exceptionOccurrences"] = [event(d, e, inner) for d, e in exceptions]
    return out


class _FilterView(dict):
    """An event as ``$filter``/``$orderby`` read it, over the stored dict without copying:
    ``start``/``end`` are converted to UTC and ``singleValueExtendedProperties`` listed only
    when an expression reads them (the emulator's own cost, not Graph's). Read-only."""

    _LAZY = ("start", "end", "singleValueExtendedProperties")

    def __init__(self, data: dict, ext: dict) -> None:
        super().__init__(data)
        dict.__setitem__(self, "singleValueExtendedProperties", None)
        self._ext = ext
        self._done: set[str] = set()

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if key in self._LAZY and key not in self._done:
            self._done.add(key)
            if key == "singleValueExtendedProperties":
                value = [{"id": i, "value": v} for i, v in self._ext.values()]
            elif value:
                value = _time(value, bool(dict.get(self, "isAllDay")), "UTC")
            dict.__setitem__(self, key, value)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default


def filter_view(data: dict, ext: dict) -> dict:
    """An event as ``$filter`` sees it: start/end in UTC, extended properties listed. A
    read-only view over ``data`` (not a copy): build it under the store's lock."""
    return _FilterView(data, ext)


def calendar(data: dict, select: list | None) -> dict:
    """The JSON of one calendar (api/calendar-get.md), ``$select`` applied (``id`` kept)."""
    if select is None:
        return copy.deepcopy(data)
    lower = {s.lower() for s in select}
    return {k: copy.deepcopy(v) for k, v in data.items() if k == "id" or k.lower() in lower}
