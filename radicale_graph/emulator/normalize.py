"""Turn a written event body into the event Exchange stores, with Graph's defaults.

The defaults and shapes follow the 201 responses in api/user-post-events.md (fixtures
``user-post-events__*__response.json``): HTML bodies wrapped in ``<html>``, ``location`` given a
``uniqueId``, ``locations`` mirroring ``location``, attendees given ``status`` ``none``, the
recurrence filled with ``month``/``dayOfMonth``/``firstDayOfWeek``/``index``/
``recurrenceTimeZone``/``numberOfOccurrences``. All-day rules: resources/event.md (``isAllDay``
needs midnight start and end in the same zone).
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import re
from html.parser import HTMLParser

from . import times
from .errors import GraphError

# Properties Graph computes; a written value is ignored (resources/event.md marks them read-only
# or server-computed). Annotations (``@odata.*``) are dropped as well.
READ_ONLY = {
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "iCalUId", "type", "webLink",
    "seriesMasterId", "originalStart", "hasAttachments", "bodyPreview", "onlineMeeting",
    "onlineMeetingUrl", "cancelledOccurrences", "exceptionOccurrences", "instances", "calendar",
    "attachments", "extensions", "multiValueExtendedProperties", "isOrganizer", "organizer",
    "responseStatus", "uid", "occurrenceId",
}
ZERO_TIME = "0001-01-01T00:00:00Z"


def validation_failed() -> GraphError:
    """400 ErrorPropertyValidationFailure, Exchange's answer to an inconsistent event."""
    return GraphError(
        400, "ErrorPropertyValidationFailure", "At least one property failed validation."
    )


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("head", "style", "script"):
            self._skip += 1
        if tag in ("br", "p", "div", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("head", "style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(content: str) -> str:
    """Plain text of an HTML body (Graph's ``outlook.body-content-type="text"`` conversion)."""
    parser = _Text()
    parser.feed(content)
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n", text).strip()


def text_to_html(content: str) -> str:
    """An HTML document holding plain text, line breaks kept."""
    inner = html.escape(content).replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return wrap_html(inner)


def wrap_html(inner: str) -> str:
    """Exchange's HTML envelope around body content that has none."""
    if re.match(r"\s*<html", inner, re.I):
        return inner
    return (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f"\r\n</head>\r\n<body>\r\n{inner}\r\n</body>\r\n</html>\r\n"
    )


def body_preview(body: dict) -> str:
    """``bodyPreview``: the first 255 characters of the body as text."""
    content = body.get("content") or ""
    text = html_to_text(content) if body.get("contentType") == "html" else content
    return " ".join(text.split())[:255]


def _body(value: dict | None) -> dict:
    value = value or {}
    kind = (value.get("contentType") or "text").lower()
    content = value.get("content") or ""
    if kind == "html":
        return {"contentType": "html", "content": wrap_html(content) if content else ""}
    return {"contentType": "text", "content": content}


def _location(value: dict | None) -> dict:
    if not value:
        return {
            "displayName": "", "locationType": "default", "uniqueIdType": "unknown",
            "address": {}, "coordinates": {},
        }
    out = {k: v for k, v in value.items() if not k.startswith("@") and v is not None}
    name = out.get("displayName") or ""
    out["displayName"] = name
    out.setdefault("locationType", "default")
    if name and "uniqueId" not in out:
        out["uniqueId"] = name
        out.setdefault("uniqueIdType", "private")
    out.setdefault("uniqueIdType", "unknown")
    return out


def _locations(location: dict, given: list | None) -> list:
    if given is not None:
        out = []
        for item in given:
            entry = {
                k: v for k, v in (item or {}).items() if not k.startswith("@") and v is not None
            }
            entry.setdefault("displayName", "")
            entry.setdefault("locationType", "default")
            entry.setdefault("uniqueIdType", "unknown")
            out.append(entry)
        return out
    if not location.get("displayName"):
        return []
    entry = {"displayName": location["displayName"], "locationType": location["locationType"]}
    for key in ("locationEmailAddress", "address", "coordinates"):
        if location.get(key):
            entry[key] = location[key]
    entry["uniqueIdType"] = "unknown"
    return [entry]


def _attendees(value: list | None) -> list:
    out = []
    for item in value or []:
        email = dict((item or {}).get("emailAddress") or {})
        email.setdefault("name", email.get("address", ""))
        status = dict((item or {}).get("status") or {})
        status.setdefault("response", "none")
        status.setdefault("time", ZERO_TIME)
        out.append({
            "type": ((item or {}).get("type") or "required"),
            "status": status,
            "emailAddress": {
                "name": email.get("name") or "", "address": email.get("address") or ""
            },
        })
    return out


def recurrence(value: dict | None, start_zone: str, start: dt.datetime) -> dict | None:
    """A ``patternedRecurrence`` filled the way Graph returns it (user-post-events__3)."""
    if value is None:
        return None
    pattern = dict(value.get("pattern") or {})
    rng = dict(value.get("range") or {})
    pattern.setdefault("interval", 1)
    pattern["month"] = pattern.get("month") or 0
    pattern["dayOfMonth"] = pattern.get("dayOfMonth") or 0
    pattern["daysOfWeek"] = [d.lower() for d in pattern.get("daysOfWeek") or []]
    pattern["firstDayOfWeek"] = (pattern.get("firstDayOfWeek") or "sunday").lower()
    pattern["index"] = (pattern.get("index") or "first").lower()
    pattern["type"] = pattern.get("type")
    rng["type"] = rng.get("type") or "noEnd"
    rng["startDate"] = rng.get("startDate") or start.date().isoformat()
    rng["endDate"] = rng.get("endDate") or "0001-01-01"
    rng["recurrenceTimeZone"] = rng.get("recurrenceTimeZone") or start_zone
    rng["numberOfOccurrences"] = rng.get("numberOfOccurrences") or 0
    order = ["type", "interval", "month", "dayOfMonth", "daysOfWeek", "firstDayOfWeek", "index"]
    return {
        "pattern": {k: pattern[k] for k in order},
        "range": {k: rng[k] for k in (
            "type", "startDate", "endDate", "recurrenceTimeZone", "numberOfOccurrences")},
    }


def _dtz(value: dict | None) -> tuple[dict, dt.datetime]:
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise validation_failed()
    moment = times.from_dtz(value)
    name = value.get("timeZone") or "UTC"
    return {"dateTime": times.fmt_local(moment), "timeZone": name}, moment


def check_times(data: dict) -> None:
    """Refuse end before start and all-day events not spanning whole days in one zone."""
    start_v, start = _dtz(data.get("start"))
    end_v, end = _dtz(data.get("end"))
    if data.get("isAllDay"):
        same_zone = times.zone(start_v["timeZone"]) == times.zone(end_v["timeZone"])
        midnight = all(v["dateTime"].endswith("T00:00:00.0000000") for v in (start_v, end_v))
        if not (same_zone and midnight and end > start):
            raise validation_failed()
    elif end < start:
        raise GraphError(
            400, "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate"
        )


def writable(body: dict) -> dict:
    """The body without read-only properties and OData annotations (deep copy)."""
    return {
        k: copy.deepcopy(v) for k, v in body.items()
        if k not in READ_ONLY and not k.startswith("@") and "@odata." not in k
    }


def apply(data: dict, patch: dict) -> set[str]:
    """Write ``patch`` (writable properties) into the stored event ``data``; returns names changed.

    Raises GraphError for unusable times or zones (see :func:`check_times`).
    """
    changed = set(patch)
    for key, value in patch.items():
        if key in ("start", "end"):
            data[key], _ = _dtz(value)
            data["originalStartTimeZone" if key == "start" else "originalEndTimeZone"] = (
                data[key]["timeZone"]
            )
        elif key == "body":
            data["body"] = _body(value)
            data["bodyPreview"] = body_preview(data["body"])
        elif key == "location":
            data["location"] = _location(value)
            if "locations" not in patch:
                data["locations"] = _locations(data["location"], None)
        elif key == "locations":
            data["locations"] = _locations({}, value or [])
            if "location" not in patch:
                names = "; ".join(x["displayName"] for x in data["locations"] if x["displayName"])
                data["location"] = _location({"displayName": names} if names else None)
        elif key == "attendees":
            data["attendees"] = _attendees(value)
        elif key == "categories":
            data["categories"] = list(value or [])
        elif key == "transactionId":
            if not data.get("transactionId"):
                data["transactionId"] = value
        elif key == "isOnlineMeeting":
            data["isOnlineMeeting"] = bool(value)
        elif key == "recurrence":
            continue  # needs the final start; done below
        else:
            data[key] = value
    if "recurrence" in patch:
        if not data.get("start"):
            raise validation_failed()
        start = times.from_dtz(data["start"])
        data["recurrence"] = recurrence(patch["recurrence"], data["start"]["timeZone"], start)
        data["type"] = "seriesMaster" if data["recurrence"] else "singleInstance"
    if data.get("isOnlineMeeting"):
        if data.get("onlineMeetingProvider") in (None, "unknown"):
            data["onlineMeetingProvider"] = "teamsForBusiness"
        if not data.get("onlineMeeting"):
            data["onlineMeeting"] = {
                "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                + data.get("id", "x")[-24:].replace("=", "")
                + "%40thread.v2/0"
            }
    elif "isOnlineMeeting" in patch:
        data["onlineMeeting"] = None
    check_times(data)
    return changed


def defaults(owner_name: str, owner_address: str) -> dict:
    """A new event's properties before the written body applies (user-post-events__1 response)."""
    return {
        "categories": [],
        "originalStartTimeZone": "UTC",
        "originalEndTimeZone": "UTC",
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "hasAttachments": False,
        "hideAttendees": False,
        "subject": "",
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": False,
        "isCancelled": False,
        "isDraft": False,
        "isOrganizer": True,
        "responseRequested": True,
        "seriesMasterId": None,
        "showAs": "busy",
        "type": "singleInstance",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "onlineMeeting": None,
        "allowNewTimeProposals": True,
        "responseStatus": {"response": "organizer", "time": ZERO_TIME},
        "body": {"contentType": "html", "content": ""},
        "location": _location(None),
        "locations": [],
        "recurrence": None,
        "attendees": [],
        "organizer": {"emailAddress": {"name": owner_name, "address": owner_address}},
    }
