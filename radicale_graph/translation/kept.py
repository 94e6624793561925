"""What Graph cannot hold but changes no meaning, kept for CalDAV clients.

One single-value extended property (:data:`.extended.KEPT_PROPERTY`) holds a compact JSON
object, so a client reads back what it wrote:

- ``x``: the client's lines Graph has no field for (X- properties, COLOR, URL, ATTACH by URI,
  CONFERENCE, SEQUENCE, unknown properties) and ``c`` its extra subcomponents (VALARMs beyond
  the one Graph's reminder holds, PARTICIPANT, ...), verbatim;
- ``s``: for a Graph field whose rendering differs from the client's spelling (a custom TZID,
  floating times, DURATION instead of DTEND, PRIORITY 3 for "high", an attendee's extra
  parameters, Apple's structured location, ...), the client's lines with a fingerprint of the
  Graph value they stand for. They replace the gateway's rendering only while Graph still
  holds that value; after an edit in Outlook the client reads Graph's new value;
  CREATED is always the client's (or absent, if the client sent none);
- ``tz``: VTIMEZONEs of custom TZIDs used by kept lines; ``cal``: VCALENDAR-level lines.

Per VEVENT: ``m`` for the master (or single event), ``o`` by occurrence key for overrides.
An override the client cancelled (STATUS:CANCELLED, RFC 5545 3.8.1.11) is a cancelled
occurrence in Graph (the master's ``cancelledOccurrences``, resources/event.md), which holds
none of its properties: its entry is ``d``, the client's VEVENT verbatim (every line and
subcomponent but UID, DTSTAMP and LAST-MODIFIED, which the store renders), with ``t``, its
(start, end) in POSIX seconds UTC. It is rendered while Graph still lists that occurrence as
cancelled (:func:`cancelled_overrides`); a cancellation made in Outlook has no entry and reads
back as EXDATE (RFC 5545 3.8.5.1).

Size: Graph documents no limit for string extended properties (resources/
extended-properties-overview.md, singlevaluelegacyextendedproperty.md). Exchange returns a
property that does not fit one 32 KB ROP buffer only as a stream ([MS-OXCPRPT] 3.1.4.5,
"Reading a Property as a Stream"), and MAPI tables truncate long strings to 255 characters.
The gateway keeps at most :data:`MAX_CHARS` characters (32,000 bytes in UTF-16, within one
ROP buffer) and refuses a resource that needs more, naming what is largest.
"""

from __future__ import annotations

import hashlib
import json

from . import fields, lines
from .errors import UnsupportedObject

MAX_CHARS = 16000
VERSION = 1


# ------------------------------------------------------------------------------------------
# Fingerprints of Graph values, equal for what the gateway wrote and what Graph returns


def canonical(group: str, event: dict):
    """The Graph value behind an item group, in a form equal for a body the gateway wrote and
    the event Graph returns for it: the row of the mapping table that owns the group says
    (``fields.canonical``); None for CREATED, whose client value always stands."""
    return fields.canonical(group, event)


def canonical_field(name: str, event: dict):
    """A Graph field of an event in comparable form (bodies by their words, locations and
    attendees by what the mapping carries): ``fields.same``."""
    return fields.same(name, event)


def fingerprint(group: str, event: dict) -> str:
    """A short digest of :func:`canonical`."""
    text = json.dumps(canonical(group, event), sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------
# Building (write side) and applying (read side)


def _by_group(items) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group, text in items:
        out.setdefault(group, []).append(text)
    return out


def build(client, derived, event: dict) -> dict:
    """The kept entry for one VEVENT: ``client`` and ``derived`` are ``(group, text)`` items
    of the client's VEVENT and of the gateway's rendering of ``event`` (the Graph body as
    Graph will return it)."""
    mine, theirs = _by_group(client), _by_group(derived)
    entry: dict = {}
    for group in sorted(set(mine) | set(theirs) | lines.CLIENT_GROUPS):
        ours = mine.get(group, [])
        if group in lines.SERVER_GROUPS or group == "CONFERENCE":
            continue
        if group == lines.KEPT:
            plain = [t for t in ours if not lines.is_component(t)]
            parts = [t for t in ours if lines.is_component(t)]
            if plain:
                entry["x"] = plain
            if parts:
                entry["c"] = parts
        elif group in lines.CLIENT_GROUPS:
            entry.setdefault("s", {})[group] = [fingerprint(group, event), ours]
        elif sorted(ours) != sorted(theirs.get(group, [])):
            entry.setdefault("s", {})[group] = [fingerprint(group, event), ours]
    return entry


def apply(items, entry: dict | None, event: dict) -> list[tuple[str, str]]:
    """Items to render for ``event``: the derived ``items`` with the kept ``entry`` applied
    where Graph still holds the value the client's lines stand for."""
    if not entry:
        return list(items)
    out = list(items)
    for group, (print_, texts) in (entry.get("s") or {}).items():
        if fingerprint(group, event) == print_:
            out = [(g, t) for g, t in out if g != group] + [(group, t) for t in texts]
    verbatim = list(entry.get("x") or [])
    uris = {lines.parts(t)[2] for t in verbatim if t.upper().startswith("CONFERENCE")}
    out = [(g, t) for g, t in out if not (g == "CONFERENCE" and lines.parts(t)[2] in uris)]
    out += [(lines.KEPT, t) for t in verbatim]
    out += [(lines.KEPT, t) for t in entry.get("c") or []]
    return out


def cancelled_entry(client, span: tuple[int, int]) -> dict:
    """The kept entry of a cancelled override: ``client`` is its ``(group, text)`` items
    (``lines.property_items``), ``span`` its (start, end) in POSIX seconds UTC. The
    store's own lines (UID, DTSTAMP, LAST-MODIFIED) are left out: they are rendered."""
    return {"d": [text for group, text in client if group not in lines.SERVER_GROUPS],
            "t": [int(span[0]), int(span[1])]}


def cancelled_overrides(data: dict | None) -> list[tuple[str, list[str], tuple[int, int]]]:
    """The kept cancelled overrides, sorted by occurrence key: ``(key, texts, (start, end))``
    with ``texts`` the client's lines and subcomponents (see :func:`cancelled_entry`) and
    the times in POSIX seconds UTC."""
    out = []
    for key, part in sorted(((data or {}).get("o") or {}).items()):
        if isinstance(part, dict) and part.get("d"):
            span = part.get("t") or [0, 0]
            out.append((key, list(part["d"]), (int(span[0]), int(span[1]))))
    return out


def entry(data: dict | None, key: str | None) -> dict | None:
    """The kept entry of the master (``key`` None) or of the override at ``key``."""
    if not data:
        return None
    if key is None:
        return data.get("m")
    return (data.get("o") or {}).get(key)


def encode(data: dict) -> str | None:
    """The extended property value for kept ``data`` (None when nothing is kept). Raises
    :class:`UnsupportedObject` when it exceeds :data:`MAX_CHARS`, naming the largest part."""
    compact = {k: v for k, v in data.items() if v}
    if not compact:
        return None
    text = json.dumps({"v": VERSION, **compact}, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_CHARS:
        raise UnsupportedObject(largest(compact), f"what Graph cannot hold but the gateway "
                                f"keeps for CalDAV clients is {len(text)} characters; the "
                                f"gateway keeps at most {MAX_CHARS} in one Graph extended "
                                "property, and dropping the rest would lose it silently")
    return text


def largest(data: dict) -> str:
    """The name of the largest kept property or component (for refusals)."""
    best, size = "kept data", -1
    for part in [data.get("m") or {}] + list((data.get("o") or {}).values()):
        for text in (part.get("x") or []) + (part.get("c") or []) + (part.get("d") or []):
            if len(text) > size:
                best, size = text, len(text)
        for _, texts in (part.get("s") or {}).values():
            for text in texts:
                if len(text) > size:
                    best, size = text, len(text)
    for text in (data.get("tz") or {}).values():
        if len(text) > size:
            best, size = text, len(text)
    if lines.is_component(best):
        return best.split("\r\n", 1)[0].replace("BEGIN:", "") + " component"
    if best == "kept data":
        return best
    name, params, _ = lines.parts(best)
    value = params.get("VALUE")
    return f"{name};VALUE={value}" if value else name


def decode(text: str | None) -> dict:
    """Kept data from the extended property value (empty when absent or unreadable)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) and data.get("v") == VERSION else {}
