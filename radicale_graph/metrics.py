"""Prometheus metrics of the gateway (``prometheus_client``), off by default.

``[storage] metrics_address = HOST:PORT`` (e.g. ``127.0.0.1:9464``) serves them at
``http://HOST:PORT/metrics`` with prometheus_client's own HTTP server, on its own address so
the CalDAV port never exposes them. Each gateway has its own :class:`CollectorRegistry`, not
prometheus_client's global one, so several gateways (tests) can run in one process.

Label values are HTTP methods, status codes and the Graph client's fixed operation names
("list events"); never a mailbox address, a path, an id or a secret (:func:`label`).

Where each count comes from:

* ``radicale_graph_caldav_requests_total{method,status}`` and
  ``radicale_graph_caldav_request_duration_seconds{method}``: every WSGI request of
  :class:`radicale_graph.app.GatewayApplication` (seconds from the call until Radicale's
  answer is ready; the body is already built then);
* ``radicale_graph_graph_requests_total{operation,status}``: every HTTP exchange with Graph
  (:class:`radicale_graph.graph.GraphClient`, urllib3's retries each counted; status is
  the HTTP status, or the exception class for a network failure);
* ``radicale_graph_graph_throttled_total{status}`` and
  ``radicale_graph_graph_retry_after_seconds``: Graph answers 429 or 503, top-level or
  inside a ``$batch``, and the ``Retry-After`` they asked for, in seconds
  (learn.microsoft.com/graph/throttling);
* ``radicale_graph_delta_rounds_total``: ``calendarView/delta`` rounds followed
  (:mod:`radicale_graph.storage.loader`);
* ``radicale_graph_notifications_total{change_type}``: Graph change notifications received
  (learn.microsoft.com/graph/change-notifications-overview; ``changeType`` created,
  updated, deleted, or a lifecycle event);
* ``radicale_graph_cache_hits_total`` / ``radicale_graph_cache_misses_total``: a calendar
  answered from its cache, or refreshed from Graph first
  (:mod:`radicale_graph.storage.collection`);
* ``radicale_graph_token_refreshes_total{grant}``: access tokens obtained from the identity
  platform rather than msal's cache (``grant`` is ``app``, client credentials, or
  ``delegated``, a refresh-token redemption).

Which gateway a count belongs to: the Graph client carries its gateway's metrics
(``GraphClient.metrics``); other counts go to the metrics of the CalDAV request being
served (a context variable set by the application), or, outside a request (background
refresh), to the one gateway whose metrics are on when there is exactly one.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

log = logging.getLogger("radicale_graph.metrics")

#: Seconds; CalDAV requests range from a cached GET (milliseconds) to a cold listing.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Seconds; Graph's Retry-After is usually 1 to a few hundred seconds.
RETRY_AFTER_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "PROPFIND",
                     "PROPPATCH", "REPORT", "MKCOL", "MKCALENDAR", "MOVE", "COPY", "LOCK",
                     "UNLOCK", "ACL"})
CHANGE_TYPES = frozenset({"created", "updated", "deleted", "missed", "subscriptionRemoved",
                          "reauthorizationRequired"})
_OPERATION = re.compile(r"[a-z][a-z $-]{0,47}")


def label(value: object) -> str:
    """A label value that cannot carry an address, id or secret: an operation name made of
    lower-case words (``"list events"``), else ``"other"``."""
    text = str(value or "")
    return text if _OPERATION.fullmatch(text) else "other"


def method_label(method: object) -> str:
    """An HTTP method (WebDAV's included) in upper case, else ``"other"``."""
    text = str(method or "").upper()
    return text if text in METHODS else "other"


def status_label(status: object) -> str:
    """An HTTP status code (``"200"``), an exception class name for network failures
    (``"ConnectionError"``), else ``"other"``."""
    text = str(status)
    return text if re.fullmatch(r"[1-5]\d\d|[A-Z][A-Za-z]{0,47}", text) else "other"


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``(host, port)``. Raises ValueError."""
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"[storage] metrics_address must be HOST:PORT (e.g. 127.0.0.1:9464), "
                         f"got {text!r}")
    return host, int(port)


class GatewayMetrics:
    """The counters of one gateway, in their own registry (see the module text)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.caldav_requests = Counter(
            "radicale_graph_caldav_requests", "CalDAV requests answered, by method and status",
            ["method", "status"], registry=r)
        self.caldav_duration = Histogram(
            "radicale_graph_caldav_request_duration_seconds",
            "Seconds to answer a CalDAV request, by method", ["method"],
            buckets=DURATION_BUCKETS, registry=r)
        self.graph_requests = Counter(
            "radicale_graph_graph_requests",
            "HTTP requests sent to Microsoft Graph (each retry counted), by operation and "
            "status", ["operation", "status"], registry=r)
        self.throttled = Counter(
            "radicale_graph_graph_throttled",
            "Graph answers 429 or 503 (top-level or inside $batch), by status", ["status"],
            registry=r)
        self.retry_after = Histogram(
            "radicale_graph_graph_retry_after_seconds",
            "Retry-After asked for by throttled Graph answers, seconds",
            buckets=RETRY_AFTER_BUCKETS, registry=r)
        self.delta_rounds = Counter(
            "radicale_graph_delta_rounds", "calendarView/delta rounds followed", registry=r)
        self.notifications = Counter(
            "radicale_graph_notifications", "Graph change notifications received, by "
            "changeType", ["change_type"], registry=r)
        self.cache_hits = Counter(
            "radicale_graph_cache_hits", "calendar reads answered from the gateway's cache",
            registry=r)
        self.cache_misses = Counter(
            "radicale_graph_cache_misses", "calendar reads that refreshed from Graph first",
            registry=r)
        self.token_refreshes = Counter(
            "radicale_graph_token_refreshes", "access tokens obtained from the identity "
            "platform (not msal's cache), by grant (app or delegated)", ["grant"], registry=r)
        self._server = None
        self._thread = None
        self.address: tuple[str, int] | None = None

    # -- recording --------------------------------------------------------------------
    def observe_caldav(self, method: str, status: object, seconds: float) -> None:
        """One CalDAV request answered with ``status`` after ``seconds``."""
        m = method_label(method)
        self.caldav_requests.labels(m, status_label(status)).inc()
        self.caldav_duration.labels(m).observe(max(0.0, seconds))

    def observe_graph(self, operation: str, status: object) -> None:
        """One HTTP exchange with Graph for ``operation``."""
        self.graph_requests.labels(label(operation), status_label(status)).inc()

    def observe_throttled(self, status: object, retry_after: float | None) -> None:
        """One throttled Graph answer and its Retry-After in seconds (None: none given)."""
        self.throttled.labels(status_label(status)).inc()
        if retry_after is not None and retry_after >= 0:
            self.retry_after.observe(retry_after)

    # -- serving ----------------------------------------------------------------------
    def start(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` (port 0: any free port) in a daemon thread;
        returns the bound ``(host, port)``."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.address = (host, self._server.server_port)
        with _active_lock:
            _active.append(self)
        log.info("Prometheus metrics on http://%s:%d/metrics", host if ":" not in host
                 else f"[{host}]", self.address[1])
        return self.address

    def stop(self) -> None:
        """Stop serving ``/metrics`` (idempotent)."""
        with _active_lock:
            if self in _active:
                _active.remove(self)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = self._thread = None


_active: list[GatewayMetrics] = []
_active_lock = threading.Lock()
_current: contextvars.ContextVar[GatewayMetrics | None] = contextvars.ContextVar(
    "radicale_graph_metrics", default=None)
_pending = threading.local()


def current() -> GatewayMetrics | None:
    """The metrics of the CalDAV request being served; outside a request the only gateway's
    whose metrics are on; else None (nothing is counted)."""
    metrics = _current.get()
    if metrics is not None:
        return metrics
    with _active_lock:
        return _active[0] if len(_active) == 1 else None


@contextmanager
def using(metrics: GatewayMetrics | None) -> Iterator[None]:
    """Make ``metrics`` :func:`current` for the ``with`` body (one CalDAV request)."""
    token = _current.set(metrics)
    try:
        yield
    finally:
        _current.reset(token)


# -- counting from the storage and the Graph layer (no-ops while metrics are off) ---------
def count_delta_round() -> None:
    """One ``calendarView/delta`` round followed."""
    metrics = current()
    if metrics is not None:
        metrics.delta_rounds.inc()


def count_notification(change_type: str = "updated") -> None:
    """One Graph change notification received, by its ``changeType``."""
    metrics = current()
    if metrics is not None:
        kind = change_type if change_type in CHANGE_TYPES else "other"
        metrics.notifications.labels(kind).inc()


def count_cache(hit: bool) -> None:
    """A calendar read answered from the cache (``hit``) or after refreshing from Graph."""
    metrics = current()
    if metrics is not None:
        (metrics.cache_hits if hit else metrics.cache_misses).inc()


def count_token(result: object, grant: str) -> None:
    """Count msal's ``result`` when the token came from the identity platform (msal's
    ``token_source`` is ``identity_provider``), not from its cache. ``grant``: app or
    delegated."""
    if not isinstance(result, dict) or result.get("token_source") != "identity_provider":
        return
    metrics = current()
    if metrics is not None:
        metrics.token_refreshes.labels("delegated" if grant == "delegated" else "app").inc()


# -- the endpoint's lifetime ----------------------------------------------------------------
def from_configuration(configuration) -> GatewayMetrics | None:
    """Start the metrics endpoint of ``[storage] metrics_address`` (a Radicale
    configuration, raw or copied with the plugin schema); None when the option is empty."""
    try:  # the raw value: the plugin's schema need not have been applied
        address = configuration.get_raw("storage", "metrics_address")
    except KeyError:
        return None
    if not str(address or "").strip():
        return None
    metrics = GatewayMetrics()
    metrics.start(*parse_address(address))
    return metrics


@contextmanager
def serving(configuration) -> Iterator[GatewayMetrics | None]:
    """Start the endpoint (when configured) for the ``with`` body and hand it to the
    application built in this thread meanwhile (:func:`for_application`); stop it at exit."""
    metrics = from_configuration(configuration)
    _pending.metrics = metrics
    _pending.set = True
    try:
        yield metrics
    finally:
        _pending.set = False
        _pending.metrics = None
        if metrics is not None:
            metrics.stop()


def for_application(configuration) -> GatewayMetrics | None:
    """The metrics of an application being built: those started by :func:`serving` in this
    thread, else (a WSGI server of its own) started now from the configuration."""
    if getattr(_pending, "set", False):
        return _pending.metrics
    return from_configuration(configuration)
