"""The client's own preconditions of the CalDAV request being served.

Radicale checks ``If-Match`` and ``If-None-Match`` against the ETag the storage plugin gives
(RFC 7232 section 3) before it calls ``upload`` or ``delete``, but does not tell the plugin
whether the client sent them. The gateway's application records them here (per request, in a
context variable) so a write sends Graph an ``If-Match`` only when the client asked for a
conditional write: a changeKey the client never saw must never fail its request.
"""

from __future__ import annotations

import contextvars

_if_match: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "radicale_graph_if_match", default=None)


def set_from_environ(environ: dict) -> None:
    """Remember the request's ``If-Match`` header (WSGI ``HTTP_IF_MATCH``), or its absence."""
    value = environ.get("HTTP_IF_MATCH")
    _if_match.set(value.strip() if value and value.strip() else None)


def client_if_match() -> str | None:
    """The client's ``If-Match`` value, or ``None`` when it sent none (also ``*``: any)."""
    value = _if_match.get()
    return None if value in (None, "*") else value


def clear() -> None:
    """Forget the recorded preconditions (outside a request, or at its start)."""
    _if_match.set(None)
