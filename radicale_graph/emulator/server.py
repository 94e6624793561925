"""The HTTPS server: identity endpoints, Graph v1.0 under ``/v1.0``, JSON batching, faults.

Identity endpoints under ``/{tenant}/``: ``v2.0/.well-known/openid-configuration``,
``discovery/v2.0/keys``, ``oauth2/v2.0/token`` (client credentials, authorization code,
refresh token) and ``oauth2/v2.0/authorize`` (sign-in page; :mod:`.delegated`).

Behaviour beyond the resources (Graph docs):
- Response headers on Graph answers: ``Content-Type: application/json;odata.metadata=minimal;
  odata.streaming=true;IEEE754Compatible=false;charset=utf-8``, ``request-id``,
  ``client-request-id`` (echoed when sent), ``OData-Version: 4.0``, ``Date``
  (concepts/json-batching.md shows these headers).
- Missing or bad bearer token: 401 ``InvalidAuthenticationToken`` with ``WWW-Authenticate``.
- Outlook service limit of 4 concurrent requests per app and mailbox: a fifth gets 429
  ``ApplicationThrottled`` with ``Retry-After: 1`` (concepts/throttling-limits.md, Outlook).
- ``POST /v1.0/$batch``: up to 20 requests, ``dependsOn`` honoured (424 when a dependency
  failed), responses carry ``id``, ``status``, ``headers``, ``body`` (concepts/json-batching.md).
  Each item is throttled individually: an item answered 429 carries its own ``Retry-After`` in
  its ``headers`` (concepts/json-batching.md, "Batch size limitations": "Requests in a batch are
  evaluated individually against throttling limits"; concepts/throttling.md, "Throttling and
  batching": retry each failed request with the ``retry-after`` of its JSON content).
- Injected faults (429 ``ApplicationThrottled``, 500, 503, 504) with ``Retry-After`` in seconds,
  filtered by path and method, before the request runs or after it (a lost answer).
- Housekeeping: :meth:`Emulator.housekeep` and ``housekeeping_interval`` move changeKeys as
  Exchange does by itself (resources/event.md, changeKey).
HTTP/1.1 keep-alive with Content-Length on every response; each connection has its own daemon
thread (``ThreadingHTTPServer``).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter, namedtuple
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from . import certs, demo
from .errors import GraphError, bad_request, graph_error_body
from .graph_api import GraphApi, Request, read_json
from .identity import Identity
from .store import Store
from .subscriptions import Subscriptions

LoggedRequest = namedtuple("LoggedRequest", "method path query status mailbox batched",
                           defaults=(False,))
LoggedRequest.__doc__ = ("One Graph request as served: path includes /v1.0; query is the raw "
                         "text; batched is True for a request that came inside a $batch.")
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
CONCURRENCY = 4
MAX_BATCH = 20
_FAULTS = {
    500: ("InternalServerError", "An internal server error occurred. Please retry later."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Try again later."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response from the service."),
}


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int | None
    path_contains: str | None
    method: str | None = None
    after: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Hang up kept-alive connections so no request is served after stop()."""
        with self.connections_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()

    def handle_error(self, request, client_address):  # noqa: D401 - stdlib hook
        """Drop the connection quietly (clients hang up, TLS handshakes fail)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GraphEmulator/1.0"
    sys_version = ""
    timeout = 120
    server: _Server

    def setup(self):
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.request)
        self.request.settimeout(self.timeout)
        self.request.do_handshake()

    def finish(self):
        with self.server.connections_lock:
            self.server.connections.discard(self.request)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        return

    def version_string(self):
        return self.server_version

    def date_time_string(self, timestamp=None):
        """The ``Date`` header on the tenant's clock (``Identity.clock_offset``)."""
        if timestamp is None:
            timestamp = self.server.emulator.identity.now()
        return super().date_time_string(timestamp)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.server.emulator._serve(
            self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _serve


class Emulator:
    """A Microsoft Graph v1.0 (calendar) and Entra token service emulator over HTTPS.

    ``Emulator(host, port=0, certfile=None, keyfile=None, load_demo=True, latency=0.0,
    beta=False, housekeeping_interval=None, deleted_retention=3600.0)``;
    :meth:`start` serves in daemon threads, :meth:`stop` ends. ``latency`` (seconds) is added
    to every request and may be changed at any time. ``beta`` serves ``/events/delta`` as
    Graph beta does (v1.0 answers 400; concepts/delta-query-events.md). ``housekeeping_interval``
    (seconds) starts a thread bumping one random event's changeKey every interval
    (:meth:`housekeep`). ``deleted_retention`` (seconds, attribute changeable at runtime): how
    long a deleted event stays readable by id (Deleted Items). ``notification_ca_file``: the PEM
    CA trusted when delivering change notifications (:attr:`subscriptions`, see
    :mod:`.subscriptions`; :meth:`advance_clock` moves the tenant's clock). Graph is at
    :attr:`graph_url`, the
    authority host at :attr:`authority_host` (``/<tenant>/...``); :attr:`ca_file` is the PEM
    certificate served. :attr:`store` is the tenant state, :attr:`request_log` lists Graph
    requests (batch sub-requests included) as :class:`LoggedRequest`. With ``load_demo`` the
    demo app also has delegated consent (``demo.DELEGATED_SCOPES``) and redirect URIs
    (``demo.REDIRECT_URIS``), and the demo users sign in with ``demo.USER_PASSWORDS``;
    :attr:`identity` holds users, codes, refresh grants, ``token_log`` and ``counts``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, certfile: str | None = None,
                 keyfile: str | None = None, load_demo: bool = True, latency: float = 0.0,
                 beta: bool = False, housekeeping_interval: float | None = None,
                 deleted_retention: float = 3600.0, notification_ca_file: str | None = None):
        self.host = host
        self.port = port
        self.latency = latency
        self.certfile = certfile
        self.keyfile = keyfile
        self.store = Store(deleted_retention=deleted_retention)
        self.identity = Identity(demo.TENANT_ID, domains=demo.DOMAINS)
        self.api = GraphApi(self.store, self.identity, events_delta=beta)
        # Change notifications (subscriptions.py); deliveries trust notification_ca_file.
        self.subscriptions = Subscriptions(self.store, self.identity, notification_ca_file)
        self.api.subscriptions = self.subscriptions
        self.housekeeping_interval = housekeeping_interval
        self._housekeeping_stop = threading.Event()
        self._housekeeping_thread: threading.Thread | None = None
        self._random = random.Random()
        self.request_log: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        self._inflight: Counter = Counter()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._tmp: str | None = None
        if load_demo:
            demo.load(self.store)
            self.register_app(demo.CLIENT_ID, secret=demo.CLIENT_SECRET,
                              redirect_uris=demo.REDIRECT_URIS,
                              delegated_scopes=demo.DELEGATED_SCOPES)
            for upn, password in demo.USER_PASSWORDS.items():
                self.set_password(upn, password)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Bind, generate the certificate if none was given, and serve in a daemon thread."""
        if not self.certfile:
            self._tmp = tempfile.mkdtemp(prefix="graph-emulator-")
            self.certfile, self.keyfile = certs.self_signed(self._tmp)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        server = _Server((self.host, self.port), _Handler, bind_and_activate=True)
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        server.emulator = self
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="graph-emulator", daemon=True).start()
        self.subscriptions.start()
        if self.housekeeping_interval:
            self._housekeeping_stop.clear()
            self._housekeeping_thread = threading.Thread(
                target=self._housekeeping_loop, name="graph-emulator-housekeeping", daemon=True)
            self._housekeeping_thread.start()

    def _housekeeping_loop(self) -> None:
        interval = float(self.housekeeping_interval or 0)
        while interval > 0 and not self._housekeeping_stop.wait(interval):
            try:
                self.housekeep()
            except Exception:  # noqa: BLE001 - housekeeping never takes the server down
                pass

    def stop(self) -> None:
        """Stop serving (and housekeeping) and remove a generated certificate."""
        self.subscriptions.stop()
        self._housekeeping_stop.set()
        if self._housekeeping_thread is not None:
            self._housekeeping_thread.join(timeout=5)
            self._housekeeping_thread = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def url(self) -> str:
        """``https://host:port``."""
        return f"https://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        """Graph root, ``url + "/v1.0"``."""
        return f"{self.url}/v1.0"

    @property
    def authority_host(self) -> str:
        """The identity service root (authority = ``authority_host + "/" + tenant``)."""
        return self.url

    @property
    def ca_file(self) -> str | None:
        """Path of the PEM certificate the server presents (its own CA)."""
        return self.certfile

    # -- test controls ------------------------------------------------------------------------

    def register_app(self, client_id: str, *, secret: str | None = None,
                     certificate_pem: str | bytes | None = None, allowed_mailboxes=None,
                     redirect_uris=None, delegated_scopes=None, roles=None, rbac=None):
        """Register an Entra app. ``allowed_mailboxes`` None = every mailbox; a set of UPNs acts
        like an ApplicationAccessPolicy on app-only tokens (others answer 403
        ErrorAccessDenied). ``redirect_uris``: redirect URIs for the authorization code flow
        (for ``localhost``/``127.0.0.1`` the port is ignored, reply-url.md);
        ``delegated_scopes``: delegated permissions consented for the tenant (list or
        space-separated string, e.g. ``"openid profile offline_access Calendars.ReadWrite"``).
        ``roles``: application permissions with admin consent, the token's ``roles`` claim
        (None: ``Calendars.ReadWrite``, ``Place.Read.All``; an empty list: no claim);
        ``rbac``: RBAC for Applications assignments, ``{"Application Calendars.ReadWrite":
        {upn, ...} or None}`` (None: the whole organization). App-only calendar requests
        need a role (reads ``Calendars.Read`` or ``Calendars.ReadWrite``, writes
        ``Calendars.ReadWrite``) inside the access policy, or an RBAC assignment whose scope
        holds the mailbox; else 403 ErrorAccessDenied. ``identity.clock_offset`` (seconds)
        shifts token times and the ``Date`` header."""
        return self.identity.register_app(client_id, secret=secret,
                                          certificate_pem=certificate_pem,
                                          allowed_mailboxes=allowed_mailboxes,
                                          redirect_uris=redirect_uris,
                                          delegated_scopes=delegated_scopes,
                                          roles=roles, rbac=rbac)

    def set_password(self, upn: str, password: str):
        """Let the user of mailbox ``upn`` sign in (delegated mode) with ``password``; the
        Graph user id becomes the token's ``oid``. Earlier refresh tokens stay valid (call
        :meth:`revoke_refresh_tokens` for a password reset)."""
        box = self.store.mailbox(upn)
        if box is None:
            raise KeyError(f"no mailbox {upn}")
        return self.identity.add_user(box.upn, password, oid=box.guid, name=box.display_name,
                                      given_name=box.given_name, surname=box.surname)

    def share(self, owner: str, calendar_id: str | None, sharee: str, role: str) -> str:
        """Share ``owner``'s calendar (None = the default one) with ``sharee`` as an Outlook
        user does, with a calendarPermission role (``freeBusyRead``, ``limitedRead``,
        ``read``, ``write``, ``delegateWithoutPrivateEventAccess``,
        ``delegateWithPrivateEventAccess``; resources/calendarpermission.md). A second call
        for the same sharee changes the role. Returns the permission id."""
        return self.store.share(owner, calendar_id, sharee, role)

    def unshare(self, owner: str, calendar_id: str | None, sharee: str) -> None:
        """Remove ``sharee`` (an address or a permission id) from the calendar's permissions."""
        self.store.unshare(owner, calendar_id, sharee)

    def revoke_refresh_tokens(self, upn: str) -> int:
        """Refuse every refresh token of ``upn`` issued so far (400 invalid_grant AADSTS50173),
        as revokeSignInSessions does; access tokens already issued stay valid until they expire
        (refresh-tokens.md). Returns how many live refresh tokens were revoked."""
        return self.identity.revoke_refresh_tokens(upn)

    def inject_fault(self, status: int = 429, count: int = 1, retry_after: int | None = 2,
                     path_contains: str | None = None, method: str | None = None,
                     after: bool = False) -> None:
        """Answer the next ``count`` Graph requests whose path+query contains ``path_contains``
        (any when None) and whose method is ``method`` (any when None, e.g. "POST") with
        ``status`` (429, 500, 503 or 504) and Graph's error body; a ``Retry-After`` header
        (seconds) is sent unless ``retry_after`` is None. A ``$batch`` request is matched itself
        first, then each of its items (an item's ``Retry-After`` is in that item's headers,
        concepts/json-batching.md). ``after``: the request is executed first, then answered
        with the fault (a lost answer: the event was created but the client saw 504)."""
        if status not in _FAULTS:
            raise ValueError(f"unsupported fault status {status}")
        with self._lock:
            self._faults.append(_Fault(status, count, retry_after, path_contains,
                                       method.upper() if method else None, after))

    def clear_faults(self) -> None:
        """Forget injected faults not yet used."""
        with self._lock:
            self._faults.clear()

    def expire_delta_tokens(self) -> None:
        """Make every delta token (``$skiptoken``/``$deltatoken``) issued so far answer 410
        ``syncStateNotFound`` (concepts/delta-query-overview.md, "Token duration")."""
        self.api.deltas.expire()

    def housekeep(self, mailbox: str | None = None, event_id: str | None = None,
                  count: int = 1) -> list[str]:
        """Move the ``changeKey`` (so ``@odata.etag``) and ``lastModifiedDateTime`` of events
        without changing their content, as Exchange does by itself (attendee replies,
        reminders; resources/event.md: "Every time the event is changed, ChangeKey changes").
        It counts as a change: calendarView/delta reports the item again.

        ``event_id``: that single event or series master (for a series the master's changeKey
        moves), in ``mailbox`` or any mailbox. Otherwise ``count`` random events of ``mailbox``
        (of any mailbox when None). Returns the ids bumped."""
        return self.store.housekeep(mailbox, event_id, count, rng=self._random)

    @property
    def deleted_retention(self) -> float:
        """Seconds a deleted event stays readable by id (Deleted Items), then 404."""
        return self.store.deleted_retention

    @deleted_retention.setter
    def deleted_retention(self, seconds: float) -> None:
        self.store.deleted_retention = seconds

    def advance_clock(self, seconds: float) -> None:
        """Move the tenant's clock ``seconds`` ahead (``identity.clock_offset``): tokens,
        the ``Date`` header and subscription expiry follow; expired subscriptions go and
        ``reauthorizationRequired`` is sent at once (subscriptions.py)."""
        self.identity.clock_offset += seconds
        self.subscriptions.wake()

    def clear_log(self) -> None:
        """Empty :attr:`request_log`."""
        with self._lock:
            self.request_log.clear()

    # -- dispatch -----------------------------------------------------------------------------

    def _serve(self, method: str, target: str, headers: dict, body: bytes):
        """(status, headers, payload bytes) for one HTTP request."""
        split = urlsplit(target)
        if split.path == "/v1.0" or split.path.startswith("/v1.0/"):
            status, out, data = self._graph(method, split.path[5:], split.query, headers, body,
                                             claims=None)
            return status, out, _encode(data)
        if self.latency:
            time.sleep(self.latency)
        return self._identity(method, split.path, headers, body, split.query)

    def _identity(self, method, path, headers, body, query=""):
        parts = [p for p in path.split("/") if p]
        if len(parts) == 4 and [p.lower() for p in parts[1:]] == ["oauth2", "v2.0", "authorize"]:
            return self.identity.authorize(self.url, parts[0], method, query, body)
        json_headers = {"Content-Type": "application/json; charset=utf-8",
                        "Cache-Control": "no-store, no-cache", "Pragma": "no-cache",
                        "x-ms-request-id": str(uuid.uuid4())}
        status, data = 404, {"error": "not_found", "error_description": "Not found."}
        if len(parts) == 4 and [p.lower() for p in parts[1:]] == [
                "v2.0", ".well-known", "openid-configuration"] and method == "GET":
            status, data = self.identity.openid_configuration(self.url, parts[0])
        elif len(parts) == 4 and [p.lower() for p in parts[1:]] == ["discovery", "v2.0", "keys"]:
            status, data = 200, self.identity.jwks()
        elif len(parts) == 4 and [p.lower() for p in parts[1:]] == ["oauth2", "v2.0", "token"]:
            if method != "POST":
                status, data = 405, {"error": "invalid_request",
                                     "error_description": "The token endpoint takes POST."}
            else:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                auth = headers.get("authorization", "")
                if auth.lower().startswith("basic ") and "client_secret" not in form:
                    try:
                        pair = base64.b64decode(auth[6:].strip()).decode()
                        cid, _, secret = pair.partition(":")
                        form.setdefault("client_id", unquote(cid))
                        form["client_secret"] = unquote(secret)
                    except (ValueError, UnicodeDecodeError):
                        pass
                status, data = self.identity.token(self.url, parts[0], form)
        return status, json_headers, _encode(data)

    def _take_fault(self, where: str, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.path_contains is None
                                            or fault.path_contains in where) and (
                        fault.method is None or fault.method == method.upper()):
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    def _graph(self, method, path, query, headers, body, claims):
        """Serve one Graph request (top-level or batch item): (status, headers, body dict)."""
        request_id = str(uuid.uuid4())
        client_id = headers.get("client-request-id") or request_id
        out = {"request-id": request_id, "client-request-id": client_id, "OData-Version": "4.0",
               "Strict-Transport-Security": "max-age=31536000",
               "x-ms-ags-diagnostic": json.dumps({"ServerInfo": {
                   "DataCenter": "Emulator", "Slice": "E", "Ring": "0", "ScaleUnit": "000",
                   "RoleInstance": "EMU000000000000"}}, separators=(",", ":"))}
        top = claims is None
        segments = [unquote(s) for s in path.split("/") if s]
        mailbox = self.api.mailbox_of(segments, claims)
        fault = None
        try:
            fault = self._take_fault(path + ("?" + query if query else ""), method)
            if fault is not None and not fault.after:
                if top and self.latency:
                    time.sleep(self.latency)
                code, message = _FAULTS[fault.status]
                extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                raise GraphError(fault.status, code, message, extra)
            if top:
                try:
                    claims = self.identity.check(headers.get("authorization"))
                except GraphError as exc:
                    exc.headers["WWW-Authenticate"] = (
                        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                        'common/oauth2/authorize", '
                        'client_id="00000003-0000-0000-c000-000000000000"')
                    raise
                mailbox = self.api.mailbox_of(segments, claims)
            if segments == ["$batch"]:
                if method != "POST":
                    raise GraphError(405, "Request_BadRequest",
                                     "Specified HTTP method is not allowed for the request target.")
                if top and self.latency:
                    time.sleep(self.latency)
                status, data = 200, self._batch(read_json(body), claims)
                mailbox = None
            else:
                status, data = self._resource(method, segments, query, headers, body, claims,
                                              mailbox, top, out)
        except GraphError as exc:
            status = exc.status
            data = graph_error_body(exc.code, exc.message, request_id, client_id)
            out.update(exc.headers)
        if fault is not None and fault.after:
            # The request ran; its answer is lost (concepts/errors.md, 5xx/429 answers).
            code, message = _FAULTS[fault.status]
            status = fault.status
            data = graph_error_body(code, message, request_id, client_id)
            for name in ("Preference-Applied", "Location"):
                out.pop(name, None)
            if fault.retry_after is not None:
                out["Retry-After"] = str(fault.retry_after)
        if data is not None:
            out["Content-Type"] = ODATA_JSON
        self._log(method, path, query, status, mailbox, not top)
        return status, out, data

    def _resource(self, method, segments, query, headers, body, claims, mailbox, top, out):
        """Serve one non-batch Graph request under the concurrency limit: (status, body)."""
        slot = None
        try:
            if mailbox is not None:
                slot = (claims.get("appid", "").lower(), mailbox)
                with self._lock:
                    if self._inflight[slot] >= CONCURRENCY:
                        slot = None
                        raise GraphError(429, *_FAULTS[429], {"Retry-After": "1"})
                    self._inflight[slot] += 1
            if top and self.latency:
                time.sleep(self.latency)
            req = Request(method, segments, dict(parse_qsl(query, keep_blank_values=True)),
                          headers, body, claims, self.graph_url)
            res = self.api.handle(req)
            out.update(res.headers)
            return res.status, res.body
        finally:
            if slot is not None:
                with self._lock:
                    self._inflight[slot] -= 1

    def _log(self, method, path, query, status, mailbox, batched=False):
        with self._lock:
            self.request_log.append(LoggedRequest(method, "/v1.0" + path, query, status, mailbox,
                                                  batched))

    def _batch(self, payload, claims) -> dict:
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad_request("Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            raise bad_request("Number of requests inside batch exceeds the limit.")
        ids = [str((r or {}).get("id", "")) for r in requests]
        if "" in ids or len({i.lower() for i in ids}) != len(ids):
            raise bad_request("Batch request ids must be present and unique.")
        done: dict[str, int] = {}
        responses = []
        for item in requests:
            rid = str(item["id"])
            method = str(item.get("method", "")).upper()
            url = str(item.get("url", ""))
            if "/v1.0/" in url:
                url = url.split("/v1.0", 1)[1]
            if not url.startswith("/"):
                url = "/" + url
            sub_headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            failed = [d for d in item.get("dependsOn") or [] if done.get(str(d), 424) >= 400]
            if failed or not method:
                status = 424 if failed else 400
                code, message = (("FailedDependency", "A dependency of this request failed.")
                                 if failed else ("BadRequest", "The request method is missing."))
                data = graph_error_body(code, message, str(uuid.uuid4()), str(uuid.uuid4()))
                responses.append({"id": rid, "status": status,
                                  "headers": {"Content-Type": "application/json"}, "body": data})
                done[rid] = status
                continue
            raw = item.get("body")
            if isinstance(raw, (dict, list)):
                body = json.dumps(raw).encode()
            elif isinstance(raw, str):
                try:
                    body = base64.b64decode(raw)
                except ValueError:
                    body = raw.encode()
            else:
                body = b""
            split = urlsplit(url)
            status, headers, data = self._graph(method, split.path, split.query, sub_headers,
                                                body, claims)
            done[rid] = status
            entry = {"id": rid, "status": status, "headers": {
                k: v for k, v in headers.items() if k in (
                    "Content-Type", "Retry-After", "Preference-Applied", "Location")}}
            if data is not None:
                entry["body"] = data
            responses.append(entry)
        return {"responses": responses}


def _encode(data) -> bytes:
    if data is None:
        return b""
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
