"""The gateway's WSGI application: Radicale's, with error responses that name the cause.

Radicale answers any storage exception with a bare 400 or 500. The storage plugin records the
cause (:mod:`radicale_graph.storage.errors`); this application replaces such an answer by:

* 403 with the CalDAV precondition (RFC 4791 section 5.3.2.1, e.g.
  ``valid-calendar-object-resource``) for an iCalendar object the gateway refuses;
* 403 for operations the gateway or the app's access policy does not allow;
* 412 when the event changed in Exchange meanwhile (Graph's If-Match failed);
* 503 with Retry-After when Graph throttles, 502/504 for other Graph failures;

each with a text that says what happened. Secrets never reach these texts (the Graph layer's
messages carry none).
"""

from __future__ import annotations

import logging
import threading
from http import client
from xml.sax.saxutils import escape

import radicale

from . import metrics, request_log
from .graph import (
    AccessDenied,
    AuthError,
    BadRequest,
    GraphError,
    NetworkError,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    SignInRequired,
    Throttled,
)
from .storage import conditions, errors
from .storage.rights import ExchangeRights
from .storage.storage import Storage, login_kind
from .storage.writer import PartialWrite
from .translation import UnsupportedObject
from .web import answer, guard, outbox
from .web.app_passwords import AppPasswords
from .web.feeds import FeedServer
from .web.notifications import serve as serve_notifications
from .web.signin import SignInPages

DAV_NS = "DAV:"
CALDAV_NS = "urn:ietf:params:xml:ns:caldav"
GATEWAY_NS = "urn:radicale-graph"

logger = logging.getLogger("radicale_graph.signin")


def error_response(exc: BaseException) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a recorded cause."""
    if isinstance(exc, SignInRequired):  # the text names the sign-in page; nothing was sent
        return _text(403, str(exc))
    if isinstance(exc, UnsupportedObject):
        return _precondition(403, exc.precondition, str(exc))
    if isinstance(exc, PartialWrite):
        return _text(502, str(exc))
    if isinstance(exc, PreconditionFailed):
        return _text(412, f"the event changed in Exchange since you last read it; read it "
                          f"again and retry ({exc})")
    if isinstance(exc, AccessDenied | PermissionError):
        return _text(403, str(exc))
    if isinstance(exc, BadRequest):
        return _precondition(403, "valid-calendar-object-resource",
                             f"Microsoft Graph refused the event: {exc}")
    if isinstance(exc, NotFound):
        return _text(409, f"the event or calendar no longer exists in Exchange ({exc})")
    if isinstance(exc, Throttled):
        seconds = int(exc.retry_after or 30)
        return _text(503, str(exc), {"Retry-After": str(max(seconds, 1))})
    if isinstance(exc, NetworkError):
        return _text(504, str(exc))
    if isinstance(exc, ServiceUnavailable | GraphError | AuthError):
        return _text(502, str(exc))
    return _text(500, f"internal error: {type(exc).__name__}: {exc}")


def _text(status: int, message: str, extra: dict | None = None):
    body = (message.strip() + "\n").encode("utf-8")
    return status, {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}, body


def _precondition(status: int, precondition: str, message: str):
    namespace = DAV_NS if precondition in ("no-conflicting-lock",) else CALDAV_NS
    body = ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<D:error xmlns:D="{DAV_NS}" xmlns:C="{CALDAV_NS}" xmlns:G="{GATEWAY_NS}">'
            f'<{"C" if namespace == CALDAV_NS else "D"}:{precondition}/>'
            f'<G:reason>{escape(message)}</G:reason></D:error>\n').encode()
    return status, {"Content-Type": "application/xml; charset=utf-8"}, body


class GatewayApplication(radicale.Application):
    """Radicale's ``Application`` whose failed answers carry the recorded cause; in delegated
    mode it also serves the sign-in page under ``/.signin/`` (:mod:`.web.signin`)."""

    _signin = None
    _signin_lock = threading.Lock()

    def __init__(self, configuration) -> None:
        super().__init__(configuration)
        # Prometheus metrics ([storage] metrics_address; None when off): see .metrics.
        self._metrics = metrics.for_application(configuration)
        if isinstance(self._storage, Storage) and self._metrics is not None:
            self._storage.client.metrics = self._metrics
        if isinstance(self._storage, Storage):
            # Exchange's sharing decides; the configured rights can only narrow it.
            self._rights = ExchangeRights(self._rights, self._storage)

    def __call__(self, environ, start_response):
        """Radicale's WSGI call, timed: one info line per request (login, method, path,
        status, milliseconds, Graph requests made) and the CalDAV metrics
        (:mod:`.request_log`, :mod:`.metrics`)."""
        return request_log.handle(environ, start_response, super().__call__, self._metrics)

    def _signin_pages(self):
        """The sign-in pages, built on first use from the storage's delegated tokens; None
        when the storage is not the gateway's or delegated mode is off."""
        if self._signin is None:
            tokens = getattr(self._storage, "delegated", None)
            if tokens is None:
                return None
            with self._signin_lock:
                if self._signin is None:
                    options = self._storage.options
                    self._signin = SignInPages(tokens, AppPasswords(options.state_folder),
                                               options.public_url)
        return self._signin

    _feeds = None

    def _serve_feed(self, environ):
        """A room or calendar feed, ``/.feeds/<token>.ics`` (:mod:`.web.feeds`): no CalDAV
        login, the token is the secret; 404 without the gateway's storage or a state_folder.
        The token never reaches the log."""
        if self._feeds is None and isinstance(self._storage, Storage) \
                and self._storage.options.state_folder:
            with self._signin_lock:
                if self._feeds is None:
                    self._feeds = FeedServer(self._storage, error_response)
        if self._feeds is None:
            status, headers, body = 404, {"Content-Type": "text/plain"}, b"no feeds\n"
        else:
            status, headers, body = self._feeds.handle(environ)
        logger.debug("%s /.feeds/...: %d", environ.get("REQUEST_METHOD"), status)
        return answer(status, headers, body)  # a 304 keeps the 200's Content-Length

    def do_PROPFIND(self, environ, base_prefix, path, user, *args):
        """Radicale's PROPFIND plus the login principal's RFC 6638 properties
        (``C:schedule-outbox-URL``, a ``mailto:`` calendar-user-address; :mod:`.web.outbox`)."""
        answer = super().do_PROPFIND(environ, base_prefix, path, user, *args)
        return outbox.principal_properties(answer, base_prefix, user)

    def do_POST(self, environ, base_prefix, path, user, *args):
        """A free/busy request to ``/<login>/.outbox/`` (RFC 6638 section 5, answered from
        Graph's getSchedule: :mod:`.web.outbox`) after Radicale's authentication; any other
        POST is Radicale's."""
        if outbox.outbox_owner(path) is not None and isinstance(self._storage, Storage):
            return outbox.post(self._storage, self.configuration, environ, base_prefix, path,
                               user)
        return super().do_POST(environ, base_prefix, path, user, *args)

    def _handle_request(self, environ):
        if (refusal := guard.intercept(environ, self.configuration, self._auth)) is not None:
            return refusal  # hostile input: 4xx before Radicale (.web.guard)
        login_kind.set("")
        path = environ.get("PATH_INFO", "")
        if path == "/.notifications":  # Graph change notifications (.web.notifications)
            return serve_notifications(environ, getattr(self._storage, "notifications", None))
        if path == "/.signin" or path.startswith("/.signin/"):
            pages = self._signin_pages()
            if pages is not None:
                status, headers, body = pages.handle(environ)
                logger.info("%s %s: %d", environ.get("REQUEST_METHOD"), path, status)
                return answer(status, headers, body)
        if path == "/.feeds" or path.startswith("/.feeds/"):
            return self._serve_feed(environ)
        errors.reset()
        conditions.set_from_environ(environ)
        status_text, headers, answers = super()._handle_request(environ)
        cause = errors.take()
        denial = errors.take_denial()
        code = int(status_text.split(" ", 1)[0])
        if cause is None and denial and code == 403:
            cause = PermissionError(denial)
        if cause is None or code < 400:
            return status_text, headers, answers
        status, new_headers, body = error_response(cause)
        kept = [(k, v) for k, v in headers
                if k.lower() not in ("content-type", "content-length", "content-encoding")]
        merged = kept + list(new_headers.items()) + [("Content-Length", str(len(body)))]
        return f"{status} {client.responses.get(status, 'Error')}", merged, [body]
