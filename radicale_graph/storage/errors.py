"""Errors met while serving one CalDAV request, kept for the HTTP response.

Radicale turns any exception from storage into a bare 400 or 500. The storage plugin records
the real cause here (per request, in a context variable) before raising, and
:class:`radicale_graph.app.GatewayApplication` answers with a status and body that name it:
403 with the CalDAV precondition for refused iCalendar objects (RFC 4791 section 5.3.2.1),
the Graph status for Graph refusals, 502/503 for Graph failures.
"""

from __future__ import annotations

import contextvars

_current: contextvars.ContextVar[BaseException | None] = contextvars.ContextVar(
    "radicale_graph_error", default=None)


def record(exc: BaseException) -> BaseException:
    """Remember ``exc`` as the cause of this request's failure and return it (to raise)."""
    _current.set(exc)
    return exc


def take() -> BaseException | None:
    """The recorded cause, cleared."""
    exc = _current.get()
    _current.set(None)
    return exc


def clear() -> None:
    """Forget any cause (when the storage is entered)."""
    _current.set(None)


def reset() -> None:
    """Forget any cause and any denial (at the start of a request)."""
    _current.set(None)
    _denial.set("")


_denial: contextvars.ContextVar[str] = contextvars.ContextVar("radicale_graph_denial",
                                                             default="")


def note_denial(reason: str) -> None:
    """Remember why Exchange's sharing narrowed this request's rights (see
    :mod:`.rights`): the text of a 403 that Radicale answers from those rights, which names
    the calendar's owner and the role. Not a failure by itself: kept for a 403 only."""
    _denial.set(reason)


def take_denial() -> str:
    """The noted reason ("" for none), cleared."""
    reason = _denial.get()
    _denial.set("")
    return reason
