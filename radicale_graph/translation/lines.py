"""iCalendar content lines (RFC 5545 section 3.1) as the translation handles them.

A VEVENT is handled as a list of items ``(group, text)``: ``text`` is one unfolded content line
(``NAME;PARAM=V:value``) or a whole subcomponent (``BEGIN:VALARM ... END:VALARM`` with CRLF
line ends). ``group`` names the Graph field the item comes from (see :func:`group_of`), so a
client's lines can stand in for the gateway's rendering of the same Graph value.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo

import icalendar
from icalendar.parser import Contentline

from .timezones import iana_from_graph, zone

# Groups whose lines the gateway derives from Graph (``name -> group``); every other property
# is kept verbatim for CalDAV clients. DTSTAMP and LAST-MODIFIED are the store's (server)
# values; CREATED is the client's when it sent one.
GROUPS = {
    "DTSTART": "DTSTART", "DTEND": "END", "DURATION": "END", "SUMMARY": "SUMMARY",
    "DESCRIPTION": "BODY", "X-ALT-DESC": "BODY", "LOCATION": "LOCATION", "GEO": "LOCATION",
    "X-APPLE-STRUCTURED-LOCATION": "LOCATION", "ORGANIZER": "ORGANIZER", "CLASS": "CLASS",
    "TRANSP": "SHOWAS", "X-MICROSOFT-CDO-BUSYSTATUS": "SHOWAS", "PRIORITY": "PRIORITY",
    "CATEGORIES": "CATEGORIES", "RRULE": "RRULE", "EXDATE": "EXDATE",
    "RECURRENCE-ID": "RECURRENCE-ID", "STATUS": "STATUS",
    "X-RADICALE-GRAPH-ONLINE-MEETING": "ONLINE", "X-MICROSOFT-DISALLOW-COUNTER": "COUNTER",
    "UID": "UID", "DTSTAMP": "SERVER", "LAST-MODIFIED": "SERVER", "CREATED": "CREATED",
}
COMPONENT_GROUPS = {"VLOCATION": "LOCATION", "VALARM": "VALARM"}
SERVER_GROUPS = {"SERVER", "UID"}
# Groups where the client's lines (or their absence) always stand when the client wrote the
# event: CREATED is when the client created it, which Graph's createdDateTime is not.
CLIENT_GROUPS = {"CREATED"}
KEPT = "KEPT"


def group_of(name: str, value: str = "") -> str:
    """The group of a property: ``ATTENDEE:<address>`` for attendees, the Graph field's group
    for mapped properties, :data:`KEPT` for properties kept verbatim."""
    name = name.upper()
    if name == "ATTENDEE":
        return "ATTENDEE:" + address_of(value)
    return GROUPS.get(name, KEPT)


def address_of(value: str) -> str:
    """The lower-case address of a cal-address (``mailto:`` removed)."""
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.lower()


def line(name: str, value, params: dict | None = None) -> str:
    """One unfolded content line for a property value (an icalendar-typed value or a Python
    value icalendar knows how to encode)."""
    holder = icalendar.Event()
    holder.add(name, value, parameters=params or None)
    return str(holder.content_line(name, holder[name])) if not isinstance(
        holder[name], list) else str(holder.content_line(name, holder[name][0]))


def parts(text: str) -> tuple[str, icalendar.Parameters, str]:
    """``(NAME, parameters, raw value)`` of an unfolded content line."""
    name, params, value = Contentline(text).parts()
    return name.upper(), params, value


def is_component(text: str) -> bool:
    """True when an item is a whole subcomponent rather than one line."""
    return text.startswith("BEGIN:")


def component_lines(component) -> list[str]:
    """The unfolded content lines of a parsed component, in order."""
    return [str(c) for c in component.content_lines() if c]


def component_text(component) -> str:
    """A subcomponent as CRLF text (folded)."""
    return component.to_ical().decode()


def property_items(component) -> list[tuple[str, str]]:
    """The ``(group, text)`` items of a parsed VEVENT: its properties and subcomponents."""
    items = []
    for text in component_lines_without_children(component):
        name, _, value = parts(text)
        items.append((group_of(name, value), text))
    for child in component.subcomponents:
        items.append((COMPONENT_GROUPS.get(child.name, KEPT), component_text(child)))
    return items


def component_lines_without_children(component) -> list[str]:
    """Content lines of a component's own properties (not BEGIN/END, not subcomponents)."""
    out = []
    for name, value in component.property_items(recursive=False):
        if name in ("BEGIN", "END"):
            continue
        out.append(str(component.content_line(name, value)))
    return out


def unescape_text(raw: str) -> str:
    """A TEXT value from its escaped form (RFC 5545 3.3.11): ``\\n``/``\\N``, ``\\;``,
    ``\\,`` and ``\\\\``."""
    return re.sub(r"\\([nN;,\\])", lambda m: "\n" if m.group(1) in "nN" else m.group(1),
                  raw)


def tzids(text: str) -> set[str]:
    """TZID parameters used in a content line or a subcomponent's lines."""
    if "TZID=" not in text.upper():
        return set()
    found = set()
    for raw in unfold(text).split("\r\n") if is_component(text) else [text]:
        if not raw or raw.startswith(("BEGIN:", "END:")):
            continue
        try:
            _, params, _ = parts(raw)
        except ValueError:
            continue
        if params.get("TZID"):
            found.add(str(params["TZID"]))
    return found


def unfold(text: str) -> str:
    """RFC 5545 3.1 unfolding (CRLF or LF followed by a space or tab)."""
    return text.replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "").replace(
        "\n\t", "")


def fold(text: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1, never inside a UTF-8 sequence),
    with its CRLF."""
    if text.isascii():
        if len(text) <= 75:
            return text + "\r\n"
        return "\r\n ".join([text[:75]] + [text[i:i + 74] for i in range(75, len(text), 74)]
                             ) + "\r\n"
    out, size, limit = [], 0, 75
    for char in text:
        width = len(char.encode())
        if size + width > limit:
            out.append("\r\n ")
            size, limit = 1, 75
        out.append(char)
        size += width
    return "".join(out) + "\r\n"


def vevent_text(items: list[str]) -> str:
    """A VEVENT from lines and subcomponent texts, folded at 75 octets."""
    out = ["BEGIN:VEVENT\r\n"]
    for text in items:
        if is_component(text):
            out.append(text if text.endswith("\r\n") else text + "\r\n")
        else:
            out.append(fold(text))
    out.append("END:VEVENT\r\n")
    return "".join(out)


@lru_cache(maxsize=256)
def vtimezone_text(tzid: str, first_year: int, last_year: int) -> str | None:
    """A VTIMEZONE for an IANA (or Windows) zone id, transitions from ``first_year`` to
    ``last_year`` (icalendar's generator), or ``None`` if the id names no known zone."""
    if iana_from_graph(tzid) is None:
        return None
    tz = zone(tzid)
    if tz is dt.UTC:  # a UTC alias used as a TZID still needs its VTIMEZONE (RFC 5545 3.2.19)
        tz = ZoneInfo("UTC")
    first = dt.date(max(first_year, 1900), 1, 1)
    last = dt.date(max(last_year, first_year + 1), 1, 1)
    return icalendar.Timezone.from_tzinfo(tz, tzid=tzid, first_date=first,
                                          last_date=last).to_ical().decode()
