"""GraphClient: one Graph call, paging, and JSON batching, with tokens, retries and limits.

Sources: learn.microsoft.com/graph/paging (follow ``@odata.nextLink`` as is),
learn.microsoft.com/graph/json-batching (``$batch``, 20 requests, ``id``/``status``/
``headers``/``body``, 424 for failed dependencies), learn.microsoft.com/graph/outlook-immutable-id
(``Prefer: IdType="ImmutableId"`` on every request), learn.microsoft.com/graph/throttling.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests

from .. import request_log
from .auth import TokenProvider
from .errors import GraphError, NetworkError, error_from_response, parse_retry_after
from .http import RETRY_STATUSES, MailboxLimiter, build_session
from .settings import GraphSettings

log = logging.getLogger("radicale_graph.graph")

IMMUTABLE_ID = 'IdType="ImmutableId"'
BATCH_LIMIT = 20


def _version() -> str:
    try:
        return metadata.version("radicale-graph")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


USER_AGENT = f"radicale-graph/{_version()}"


@dataclass(frozen=True)
class GraphResponse:
    """A successful Graph response: HTTP ``status``, ``headers`` (case-insensitive
    mapping), ``body`` (decoded JSON object, or None for empty/non-JSON bodies such as 204)."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: dict | None


def merge_prefer(value: str | None) -> str:
    """``Prefer`` header value: ``IdType="ImmutableId"`` first, then the caller's other
    preferences (comma-separated, RFC 7240 §2), a caller's own IdType dropped."""
    parts = [IMMUTABLE_ID]
    for item in (value or "").split(","):
        item = item.strip()
        if item and not item.lower().startswith("idtype="):
            parts.append(item)
    return ", ".join(parts)


def _merged_headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    prefer = None
    for key, value in (extra or {}).items():
        if key.lower() == "prefer":
            prefer = value if prefer is None else f"{prefer}, {value}"
        elif key.lower() != "authorization":
            headers[key] = value
    headers["Prefer"] = merge_prefer(prefer)
    return headers


def _decode(resp: requests.Response) -> dict | None:
    if not resp.content:
        return None
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class GraphClient:
    """Calls Microsoft Graph as an app (client-credentials token) for many mailboxes.

    Thread-safe: one instance serves all threads. Every call carries
    ``Prefer: IdType="ImmutableId"``, a fresh ``client-request-id`` (uuid4), a bearer token
    and ``User-Agent: radicale-graph/<version>``; waits at most ``settings.timeout`` seconds
    per HTTP exchange; is retried on 429/503/504 within ``max_retries`` and
    ``max_retry_wait``; and keeps at most ``max_concurrency`` requests in flight per mailbox.
    Errors: GraphError subclasses (see ``errors``) for Graph failures and network failures
    (status 0), AuthError when no token can be obtained.

    ``metrics``: the gateway's :class:`radicale_graph.metrics.GatewayMetrics` that counts
    this client's requests (set by the application; None counts into the current ones).
    """

    metrics = None

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        self._base = settings.graph_url.rstrip("/")
        self._origin = settings.graph_origin
        self._tokens = TokenProvider(settings)
        self._session, self._retry = build_session(settings, USER_AGENT)
        self._limiter = MailboxLimiter(settings.max_concurrency)
        self._shared = False

    def with_tokens(self, tokens) -> GraphClient:
        """A view of this client that sends ``tokens.get_token()`` (e.g. one person's delegated
        token, :class:`~.delegated.PersonTokens`) instead of the app-only token, and calls
        ``tokens.invalidate()`` when Graph refuses it. It shares the HTTP session, the retry
        policy and the per-mailbox limits; this client is unchanged. ``close()`` on the view
        does nothing (close the client itself). ``tokens.get_token()`` may raise AuthError
        (``SignInRequired``): then no request is sent."""
        view = copy.copy(self)
        view._tokens = tokens
        view._shared = True
        return view

    # -- lifecycle -----------------------------------------------------------------------
    def check_credentials(self) -> None:
        """Acquire a token now (start-up check). Raises AuthError whose str() is one line
        naming the cause and the fix, without the secret."""
        self._tokens.get_token()

    def close(self) -> None:
        """Close the HTTP sessions (Graph and identity platform); a no-op on a view made by
        :meth:`with_tokens`."""
        if self._shared:
            return
        self._session.close()
        self._tokens.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- single calls --------------------------------------------------------------------
    def request(self, method: str, path: str, *, mailbox: str | None, operation: str,
                params: dict | None = None, json: Any = None,
                headers: dict | None = None) -> GraphResponse:
        """One Graph call. ``path`` is relative to ``graph_url`` (``/users/a@b.com/calendars``)
        or an absolute URL on the Graph host (a nextLink). ``operation`` is a short phrase
        for messages ("list calendars"). Returns GraphResponse for 1xx-3xx. Raises the
        GraphError subclass for the status (after retries), NetworkError, AuthError."""
        return self._send(method, path, mailbox=mailbox, operation=operation, params=params,
                          json=json, headers=headers)

    def get_json(self, path: str, *, mailbox: str | None, operation: str,
                 params: dict | None = None, headers: dict | None = None) -> dict:
        """GET returning the JSON object body. Raises GraphError (code ``InvalidResponse``
        when the body isn't a JSON object) and the errors of ``request``."""
        resp = self.request("GET", path, mailbox=mailbox, operation=operation, params=params,
                            headers=headers)
        if resp.body is None:
            raise GraphError(resp.status, "InvalidResponse", "expected a JSON object body",
                             mailbox, operation, resp.headers.get("request-id"))
        return resp.body

    def iter_page_bodies(self, path: str, *, mailbox: str | None, operation: str,
                         params: dict | None = None,
                         headers: dict | None = None) -> Iterator[dict]:
        """Yield each page's whole body, following ``@odata.nextLink`` (an absolute URL,
        requested as is: the first request's ``params`` are not sent again). The last page
        carries ``@odata.deltaLink`` for delta queries."""
        body = self.get_json(path, mailbox=mailbox, operation=operation, params=params,
                             headers=headers)
        while True:
            yield body
            link = body.get("@odata.nextLink")
            if not link:
                return
            body = self.get_json(link, mailbox=mailbox, operation=operation, headers=headers)

    def iter_pages(self, path: str, *, mailbox: str | None, operation: str,
                   params: dict | None = None, headers: dict | None = None) -> Iterator[dict]:
        """Yield every item of ``value`` across all pages (see ``iter_page_bodies``)."""
        for body in self.iter_page_bodies(path, mailbox=mailbox, operation=operation,
                                          params=params, headers=headers):
            yield from body.get("value") or []

    # -- batching ------------------------------------------------------------------------
    def batch(self, requests: list[dict], *, mailbox: str | None,
              operation: str) -> list[dict]:
        """Run ``requests`` through JSON ``$batch`` (POST ``{graph_url}/$batch``), 20 per POST.

        Each request is ``{"id", "method", "url" (relative, e.g. "/users/x/events"),
        optional "headers", "body", "dependsOn"}``; ids must be unique and a ``dependsOn``
        must name a request within the same chunk of 20. ``Prefer: IdType="ImmutableId"``
        and, with a body, ``Content-Type: application/json`` are added to each request.
        Returns one ``{"id", "status", "headers", "body"}`` per request, in input order.
        Items answered 429/503/504 (and the 424s that depended on them) are sent again after
        their ``Retry-After`` (or backoff), within ``max_retries`` and ``max_retry_wait`` per
        chunk; what is still failing then is returned as is. Raises ValueError for
        malformed input, GraphError when the ``$batch`` POST itself fails.
        """
        ids = [str(r.get("id", "")) for r in requests]
        if any(not i for i in ids) or len(set(ids)) != len(ids):
            raise ValueError("batch requests need unique, non-empty ids")
        done: dict[str, dict] = {}
        for start in range(0, len(requests), BATCH_LIMIT):
            chunk = [self._batch_item(r) for r in requests[start:start + BATCH_LIMIT]]
            chunk_ids = {r["id"] for r in chunk}
            for r in chunk:
                outside = set(r.get("dependsOn") or []) - chunk_ids
                if outside:
                    raise ValueError(f"batch request {r['id']} depends on {sorted(outside)}, "
                                     "which is not in its chunk of 20")
            done.update(self._run_chunk(chunk, mailbox, operation))
        return [done[i] for i in ids]

    def _batch_item(self, request: dict) -> dict:
        item = {k: v for k, v in request.items() if k in ("method", "url", "body", "dependsOn")}
        item["id"] = str(request["id"])
        headers = _merged_headers(request.get("headers"))
        if "body" in item and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        item["headers"] = headers
        if "dependsOn" in item:
            item["dependsOn"] = [str(d) for d in item["dependsOn"]]
        return item

    def _run_chunk(self, chunk: list[dict], mailbox: str | None,
                   operation: str) -> dict[str, dict]:
        done: dict[str, dict] = {}
        pending = chunk
        waited, attempt = 0.0, 0
        while pending:
            # Outlook runs up to 4 requests of a batch in parallel: hold as many slots.
            resp = self._send("POST", "/$batch", mailbox=mailbox, operation=operation,
                              json={"requests": pending}, slots=len(pending))
            items = {}
            for raw in (resp.body or {}).get("responses") or []:
                item = {"id": str(raw.get("id")), "status": int(raw.get("status", 0)),
                        "headers": raw.get("headers") or {}, "body": raw.get("body")}
                items[item["id"]] = item
            missing = [r["id"] for r in pending if r["id"] not in items]
            if missing:
                raise GraphError(resp.status, "InvalidResponse",
                                 f"$batch response lacks ids {missing}", mailbox, operation,
                                 resp.headers.get("request-id"))
            request_log.batch_throttled(items.values(), self.metrics)
            retry_ids = self._retryable(pending, items)
            done.update({i: it for i, it in items.items() if i not in retry_ids})
            if not retry_ids:
                break
            wait = self._batch_wait(items, retry_ids, attempt + 1)
            if attempt >= self.settings.max_retries or waited + wait > self.settings.max_retry_wait:
                log.info("Graph $batch %s: %d requests still throttled; giving up after %.1f s",
                         operation, len(retry_ids), waited)
                done.update({i: items[i] for i in retry_ids})
                break
            log.info("Graph $batch %s: %d requests throttled, retry %d in %.1f s",
                     operation, len(retry_ids), attempt + 1, wait)
            if wait > 0:
                self._retry.wait(wait)
            waited += wait
            attempt += 1
            pending = [dict(r, dependsOn=[d for d in r["dependsOn"] if d in retry_ids])
                       if "dependsOn" in r else r
                       for r in pending if r["id"] in retry_ids]
            for r in pending:
                if "dependsOn" in r and not r["dependsOn"]:
                    del r["dependsOn"]
        return done

    @staticmethod
    def _retryable(pending: list[dict], items: dict[str, dict]) -> set[str]:
        retry = {i for i, it in items.items() if it["status"] in RETRY_STATUSES}
        changed = True
        while changed:  # 424 Failed Dependency on a request we are going to retry
            changed = False
            for r in pending:
                if (r["id"] not in retry and items[r["id"]]["status"] == 424
                        and retry.intersection(r.get("dependsOn") or [])):
                    retry.add(r["id"])
                    changed = True
        return retry

    def _batch_wait(self, items: dict[str, dict], retry_ids: set[str], n: int) -> float:
        waits = []
        for i in retry_ids:
            headers = items[i]["headers"]
            value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
            seconds = parse_retry_after(str(value)) if value is not None else None
            if seconds is not None:
                waits.append(seconds)
        return max(waits) if waits else self._retry.backoff_seconds(n)

    # -- the one place that talks HTTP ---------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            parts = urlsplit(path)
            if f"{parts.scheme}://{parts.netloc}".lower() != self._origin.lower():
                raise ValueError(f"refusing to send the Graph token to {parts.netloc}: "
                                 f"absolute URLs must be on {self._origin}")
            return path
        return f"{self._base}/{path.lstrip('/')}"

    def _send(self, method: str, path: str, *, mailbox: str | None, operation: str,
              params: dict | None = None, json: Any = None, headers: dict | None = None,
              slots: int = 1) -> GraphResponse:
        url = self._url(path)
        base_headers = _merged_headers(headers)
        base_headers["client-request-id"] = str(uuid.uuid4())
        for attempt in (1, 2):
            token = self._tokens.get_token()
            call_headers = dict(base_headers, Authorization=f"Bearer {token}")
            with self._limiter.slots(mailbox, slots), request_log.graph_call(
                    method, url, operation, base_headers["client-request-id"], self.metrics):
                try:
                    resp = self._session.request(method, url, params=params, json=json,
                                                 verify=self._session.verify,
                                                 headers=call_headers,
                                                 timeout=self.settings.timeout)
                except requests.RequestException as exc:
                    request_log.graph_exchange(type(exc).__name__)
                    raise self._network_error(exc, url, mailbox, operation) from None
                # One debug line and count per exchange: urllib3's retries reported theirs
                # from GraphRetry.increment (radicale_graph.request_log).
                request_log.graph_exchange(resp.status_code, resp.headers,
                                           resp.headers.get("request-id"))
            body = _decode(resp)
            if resp.status_code == 401 and attempt == 1 and _error_code(body) in (
                    "InvalidAuthenticationToken", "TokenExpired"):
                log.info("Graph refused the access token (%s); fetching a new one",
                         _error_code(body))
                self._tokens.invalidate()
                continue
            break
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, resp.headers, body,
                                      "" if body is not None else resp.text,
                                      mailbox=mailbox, operation=operation)
        return GraphResponse(resp.status_code, resp.headers, body)

    def _network_error(self, exc: requests.RequestException, url: str,
                       mailbox: str | None, operation: str) -> NetworkError:
        host = urlsplit(url).netloc
        s = self.settings
        if isinstance(exc, requests.exceptions.SSLError):
            trust = f"ca_file {s.ca_file}" if s.ca_file else "the system CA store (ca_file unset)"
            return NetworkError(f"TLS certificate verification failed for {host} using {trust}; "
                                "set ca_file to the CA that signed Graph's certificate",
                                mailbox, operation, code="TLSError")
        if isinstance(exc, requests.exceptions.Timeout):
            return NetworkError(f"no answer from {host} within {s.timeout:g} s; check graph_url, "
                                "the network and proxy settings", mailbox, operation)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return NetworkError(f"cannot connect to {host}; check graph_url, the network, DNS "
                                "and proxy settings", mailbox, operation)
        return NetworkError(f"request to {host} failed ({type(exc).__name__})", mailbox,
                            operation)


def _error_code(body: dict | None) -> str:
    error = (body or {}).get("error")
    return str(error.get("code") or "") if isinstance(error, dict) else ""
