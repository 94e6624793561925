"""The CalDAV requests a typical client sends, and reading their answers.

Bodies follow RFC 4918 (PROPFIND), RFC 4791 (calendar-query section 7.8, calendar-multiget
section 7.9) and RFC 6578 (sync-collection section 3.2). Each ``*_request`` returns
``(method, headers, body)``; :func:`send` performs one and checks its status.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import requests

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
XML = '<?xml version="1.0" encoding="utf-8"?>'
NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" ' \
     'xmlns:CS="http://calendarserver.org/ns/"'
# Resources per calendar-multiget when reading a whole calendar: Radicale refuses a REPORT
# answering more than [reporting] max_expand_occurrence (10,000) VEVENTs, and clients ask in
# chunks anyway.
MULTIGET_CHUNK = 1000


def propfind_request() -> tuple[str, dict, str]:
    """PROPFIND depth 1 with the properties clients list a calendar with (Thunderbird, DAVx5:
    resource type, content type, ETag, ctag)."""
    body = (f"{XML}<D:propfind {NS}><D:prop><D:resourcetype/><D:getcontenttype/>"
            "<D:getetag/><CS:getctag/></D:prop></D:propfind>")
    return "PROPFIND", {"Depth": "1"}, body


def month_query_request(start: dt.datetime, end: dt.datetime) -> tuple[str, dict, str]:
    """calendar-query: VEVENTs overlapping [start, end) (UTC), with ETag and calendar-data."""
    fmt = "%Y%m%dT%H%M%SZ"
    body = (f"{XML}<C:calendar-query {NS}><D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{start.strftime(fmt)}" end="{end.strftime(fmt)}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")
    return "REPORT", {"Depth": "1"}, body


def multiget_request(hrefs: list[str]) -> tuple[str, dict, str]:
    """calendar-multiget of ``hrefs`` (absolute paths) with ETag and calendar-data."""
    refs = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    body = (f"{XML}<C:calendar-multiget {NS}><D:prop><D:getetag/><C:calendar-data/>"
            f"</D:prop>{refs}</C:calendar-multiget>")
    return "REPORT", {"Depth": "1"}, body


def sync_request(token: str = "") -> tuple[str, dict, str]:
    """sync-collection level 1 from ``token`` ("" = initial sync) asking for ETags."""
    body = (f"{XML}<D:sync-collection {NS}><D:sync-token>{token}</D:sync-token>"
            "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>")
    return "REPORT", {}, body


def get_request() -> tuple[str, dict, str]:
    """GET of the whole collection (one iCalendar object with every event)."""
    return "GET", {}, ""


def send(session: requests.Session, url: str, request: tuple[str, dict, str],
         expect: int) -> requests.Response:
    """Perform ``request`` on ``url``; raises RuntimeError when the status is not ``expect``."""
    method, headers, body = request
    response = session.request(method, url, headers=headers, data=body.encode() or None,
                               timeout=600)
    if response.status_code != expect:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
    return response


def responses(text: str) -> list[tuple[str, dict[str, str], str | None]]:
    """(href, {property local name: text}, status text or None) per ``D:response``."""
    out = []
    for node in ET.fromstring(text).iter(f"{DAV}response"):
        href = node.findtext(f"{DAV}href") or ""
        props = {}
        for prop in node.iter(f"{DAV}prop"):
            for child in prop:
                props[child.tag.rsplit("}", 1)[-1]] = child.text or ""
        out.append((href, props, node.findtext(f"{DAV}status")))
    return out


def sync_token(text: str) -> str:
    """The ``D:sync-token`` of a sync-collection answer."""
    return ET.fromstring(text).findtext(f"{DAV}sync-token") or ""
