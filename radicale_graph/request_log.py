"""Request logs: one info line per CalDAV request, one debug line per Graph request.

``radicale_graph.request`` (info), for every CalDAV request the application answers::

    alice@contoso.com PROPFIND /alice@contoso.com/ -> 207 in 41 ms, 3 Graph requests

(the login the client sent in its Basic credentials, ``-`` for none; the method, the path
without the query, the status, the milliseconds until Radicale's answer was ready, and the
number of HTTP requests this request made to Graph, counted through a context variable).

``radicale_graph.graph`` (debug), for every HTTP exchange with Graph, each retry its own::

    Graph GET /v1.0/users/{user}/calendars/{id}/events -> 200 in 12 ms (operation=list events,
    client-request-id=..., request-id=...)

The path is a template: mailbox addresses and the segment after ``users`` become
``{user}``, ids ``{id}``; the query (``$skiptoken``, ``$deltatoken``) is dropped. Tokens,
secrets and request bodies never appear in either line.

Graph requests made by threads other than the request's (the background refresher, the delta
round opened beside a full listing) are logged but not counted in the CalDAV request's line.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from . import metrics as metrics_module

log = logging.getLogger("radicale_graph.request")
graph_log = logging.getLogger("radicale_graph.graph")

THROTTLE_STATUSES = frozenset({429, 503})
# A Graph path segment kept as is: a resource or function name ("calendarView", "delta()",
# "microsoft.graph.delta()"), "$batch"/"$value", or the API version.
_WORD = re.compile(r"(?:[a-z][A-Za-z]*\.)*[a-z][A-Za-z]{0,40}(?:\(\))?|\$[a-z]+|v\d+\.\d+|beta")
_USER_PARENTS = frozenset({"users", "rooms"})


def template(path_or_url: str) -> str:
    """The path of a Graph URL with addresses and the segment after ``users`` replaced by
    ``{user}`` and ids (anything that is not a lower-camel-case word) by ``{id}``; the query
    is dropped. ``/v1.0/users/a@b.com/events/AAMk=`` -> ``/v1.0/users/{user}/events/{id}``."""
    path = urlsplit(path_or_url).path
    out: list[str] = []
    previous = ""
    for raw in path.split("/"):
        segment = unquote(raw)
        if not segment:
            out.append("")
        elif "@" in segment or previous in _USER_PARENTS:
            out.append("{user}")
        elif "(" in segment and not segment.endswith("()"):  # users('a@b'), key syntax
            out.append("{id}")
        elif _WORD.fullmatch(segment):
            out.append(segment)
        else:
            out.append("{id}")
        previous = segment
    return "/".join(out)


# -- counting a CalDAV request's Graph requests ------------------------------------------
_graph_count: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "radicale_graph_graph_count", default=None)


def count_graph_request() -> None:
    """One more Graph request for the CalDAV request being served (if any)."""
    counter = _graph_count.get()
    if counter is not None:
        counter[0] += 1


@contextmanager
def counting_graph_requests() -> Iterator[list[int]]:
    """Count the Graph requests of the ``with`` body (this thread's context) in ``[n]``."""
    counter = [0]
    token = _graph_count.set(counter)
    try:
        yield counter
    finally:
        _graph_count.reset(token)


# -- one Graph call (a request and urllib3's retries of it) ------------------------------
@dataclass
class GraphCall:
    """What the debug line and the metrics need about the Graph call in progress."""

    method: str
    url: str
    operation: str
    client_request_id: str
    metrics: metrics_module.GatewayMetrics | None = None
    started: float = field(default_factory=time.monotonic)


_call: contextvars.ContextVar[GraphCall | None] = contextvars.ContextVar(
    "radicale_graph_graph_call", default=None)


@contextmanager
def graph_call(method: str, url: str, operation: str, client_request_id: str,
               metrics: metrics_module.GatewayMetrics | None) -> Iterator[GraphCall]:
    """Mark the ``with`` body as one Graph call (``GraphClient._send``); each HTTP exchange
    in it is then reported with :func:`graph_exchange` (urllib3's retries from
    ``GraphRetry.increment``, the last one by the client)."""
    call = GraphCall(method, url, operation, client_request_id, metrics)
    token = _call.set(call)
    try:
        yield call
    finally:
        _call.reset(token)


def graph_exchange(status: object, headers=None, request_id: str | None = None, *,
                   method: str | None = None, url: str | None = None,
                   retried: bool = False) -> None:
    """One HTTP exchange with Graph just ended with ``status`` (an int, or an exception
    class name): the debug line, the CalDAV request's count, the metrics (requests by
    operation and status; throttled answers and their Retry-After in seconds). The next
    exchange of the same call is timed from now."""
    call = _call.get()
    now = time.monotonic()
    if call is None:
        call = GraphCall(method or "?", url or "", "request", "-", metrics_module.current(),
                         started=now)
    method = method or call.method
    url = url or call.url
    count_graph_request()
    metrics = call.metrics or metrics_module.current()
    if metrics is not None:
        metrics.observe_graph(call.operation, status)
        if status in THROTTLE_STATUSES:
            metrics.observe_throttled(status, retry_after_seconds(headers))
    if graph_log.isEnabledFor(logging.DEBUG):
        graph_log.debug("Graph %s %s -> %s in %.0f ms%s (operation=%s, client-request-id=%s, "
                        "request-id=%s)", method, template(url), status,
                        (now - call.started) * 1000, ", retrying" if retried else "",
                        metrics_module.label(call.operation), call.client_request_id,
                        request_id or "-")
    call.started = now


def batch_throttled(items, metrics: metrics_module.GatewayMetrics | None = None) -> None:
    """Count the 429/503 answers inside a ``$batch`` response (``GraphClient._run_chunk``'s
    items: ``{"status", "headers"}``) as throttled, with their Retry-After seconds, in
    ``metrics`` (None: the current ones)."""
    metrics = metrics or metrics_module.current()
    if metrics is None:
        return
    for item in items:
        if item.get("status") in THROTTLE_STATUSES:
            metrics.observe_throttled(item["status"], retry_after_seconds(item.get("headers")))


def retry_after_seconds(headers) -> float | None:
    """``Retry-After`` of ``headers`` (any mapping, case-insensitive) in seconds, or None."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    try:  # delta-seconds, as Graph sends it (RFC 9110 section 10.2.3)
        return max(0.0, float(str(value).strip()))
    except ValueError:
        return None


# -- the CalDAV request line ---------------------------------------------------------------
def login_of(environ) -> str:
    """The login of the request's Basic credentials (never the password), or ``-``."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "-"
    login = decoded.partition(":")[0]
    return login if login and login.isprintable() else "-"


def loggable_path(path: str) -> str:
    """A request path as log lines show it: a feed's secret token (``/.feeds/<token>.ics``,
    :mod:`radicale_graph.web.feeds`) is left out, anything unprintable is ``repr``'d."""
    path = path or "/"
    if path.startswith("/.feeds/"):
        return "/.feeds/..."
    return path if path.isprintable() else repr(path)


def handle(environ, start_response, call, metrics: metrics_module.GatewayMetrics | None):
    """Run the WSGI ``call(environ, start_response)`` as one CalDAV request: with ``metrics``
    current and its Graph requests counted; then the info line and the metrics. Returns the
    body iterable."""
    seen: list[str] = []

    def recording_start_response(status, headers, exc_info=None):
        seen.append(status)
        if exc_info is not None:
            return start_response(status, headers, exc_info)
        return start_response(status, headers)

    started = time.monotonic()
    method = environ.get("REQUEST_METHOD", "?")
    with metrics_module.using(metrics), counting_graph_requests() as counter:
        answers = call(environ, recording_start_response)
    seconds = time.monotonic() - started
    status = seen[-1].split(" ", 1)[0] if seen else "500"
    if metrics is not None:
        metrics.observe_caldav(method, status, seconds)
    if log.isEnabledFor(logging.INFO):
        log.info("%s %s %s -> %s in %.0f ms, %d Graph request%s", login_of(environ), method,
                 loggable_path(environ.get("PATH_INFO", "")), status, seconds * 1000,
                 counter[0], "" if counter[0] == 1 else "s")
    return answers
