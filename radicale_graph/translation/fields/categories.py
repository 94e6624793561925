"""CATEGORIES ⇄ ``categories``.

RFC 5545 3.8.1.2 (one or several CATEGORIES lines, each a list); Graph resources/event.md
(``categories``: the names of Outlook categories). Rendered as one line.
"""

from __future__ import annotations

from .base import Context, Field, Rendering

CATEGORIES = "categories"


def to_graph(parts, body: dict) -> None:
    """``categories``: every value of every CATEGORIES line, in order."""
    found = parts.vevent.get("CATEGORIES")
    groups = [] if found is None else found if isinstance(found, list) else [found]
    body[CATEGORIES] = [str(c) for g in groups for c in g.cats]


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """One CATEGORIES line when there are categories."""
    if event.get(CATEGORIES):
        out.add("CATEGORIES", list(event[CATEGORIES]))


def canonical(group: str, event: dict) -> list:
    """The list of names."""
    return list(event.get(CATEGORIES) or [])


CATEGORIES_ROW = Field("CATEGORIES", (CATEGORIES,), groups=("CATEGORIES",), to_graph=to_graph,
                       to_ical=to_ical, canonical=canonical, occurrence=(CATEGORIES,))
