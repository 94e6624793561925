"""SUMMARY, DESCRIPTION, X-ALT-DESC ⇄ ``subject``, ``body``.

RFC 5545 3.8.1.12 (SUMMARY), 3.8.1.5 (DESCRIPTION); X-ALT-DESC;FMTTYPE=text/html as Outlook
writes it ([MS-OXCICAL] 2.1.3.1.1.20.3); Graph resources/event.md and itembody.md. An HTML
X-ALT-DESC wins over DESCRIPTION. The storage reads bodies as text, so a body is judged by
its words (:func:`..body.words`) for the kept fingerprint.
"""

from __future__ import annotations

import icalendar

from .. import lines
from ..body import body_text, words
from .base import Context, Field, Rendering, plain

SUBJECT = "subject"
BODY = "body"


def _values(event, name: str) -> list:
    found = event.get(name)
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def item_body(event) -> dict:
    """The Graph ``itemBody`` of a VEVENT: the HTML X-ALT-DESC, else DESCRIPTION as text."""
    alt = [p for p in _values(event, "X-ALT-DESC")
           if str(p.params.get("FMTTYPE", "")).lower() == "text/html"]
    if alt:
        # X- values parse as unknown (still escaped) values: unescape as TEXT (RFC 5545 3.3.11)
        return {"contentType": "html",
                "content": lines.unescape_text(alt[0].to_ical().decode())}
    descriptions = _values(event, "DESCRIPTION")
    text = str(descriptions[0]) if descriptions else ""
    return {"contentType": "text", "content": text}


def to_graph(parts, body: dict) -> None:
    """``subject`` from SUMMARY (empty when absent), ``body`` (see :func:`item_body`)."""
    body[SUBJECT] = str(parts.vevent.get("SUMMARY", ""))
    body[BODY] = item_body(parts.vevent)


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """SUMMARY (omitted when empty), DESCRIPTION from the body's text, and X-ALT-DESC for an
    HTML body read as HTML."""
    if event.get(SUBJECT):
        out.add("SUMMARY", event[SUBJECT])
    body = event.get(BODY) or {}
    text = body_text(body)
    if text:
        out.add("DESCRIPTION", text)
    if str(body.get("contentType") or "").lower() == "html" and body.get("content"):
        out.add("X-ALT-DESC", icalendar.vText(str(body["content"])), {"FMTTYPE": "text/html"})


def canonical(group: str, event: dict):
    """SUMMARY: the subject; BODY: the words of the body's text."""
    if group == "SUMMARY":
        return event.get(SUBJECT) or ""
    return words(body_text(event.get(BODY)))


def same(name: str, event: dict):
    """``body`` by its words, ``subject`` case-folded."""
    if name == BODY:
        return words(body_text(event.get(BODY)))
    return plain(name, event)


def holds(name: str, current: dict, wanted: dict) -> bool:
    """``body`` by its exact content (trimmed), ``subject`` as is (empty alike)."""
    if name == BODY:
        return (current.get(BODY) or {}).get("content", "").strip() == \
            (wanted.get(BODY) or {}).get("content", "").strip()
    return (current.get(name) or "") == (wanted.get(name) or "")


TEXT = Field("text", (SUBJECT, BODY), groups=("SUMMARY", "BODY"), to_graph=to_graph,
             to_ical=to_ical, canonical=canonical, occurrence=(SUBJECT, BODY), same=same,
             holds=holds)
