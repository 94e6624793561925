"""Error values of the emulated services: Graph's OData error and Entra's OAuth error.

Graph error body (concepts/errors.md, "Error resource type"):
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``.
Entra token-endpoint error body (as returned by login.microsoftonline.com):
``{"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
"error_uri"}``.
"""

from __future__ import annotations

import datetime as dt
import uuid


class GraphError(Exception):
    """A Graph request refused with ``status`` (HTTP int), ``code`` and ``message``.

    ``headers`` holds extra response headers (for example ``Retry-After`` in seconds).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_found() -> GraphError:
    """404 ErrorItemNotFound, Exchange's answer for an item id it does not hold."""
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    """400 with ``code`` (default ``BadRequest``, OData's code for unusable query syntax)."""
    return GraphError(400, code, message)


def graph_error_body(code: str, message: str, request_id: str, client_request_id: str) -> dict:
    """The JSON body Graph sends with an error; ``date`` is UTC without offset, as Graph does."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def entra_error_body(error: str, code: int, description: str) -> dict:
    """Entra's token error body: ``AADSTS<code>: <description>`` plus trace ids and timestamp.

    The description never contains a secret: callers pass client ids and thumbprints only.
    """
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    text = (
        f"AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {now}"
    )
    return {
        "error": error,
        "error_description": text,
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
