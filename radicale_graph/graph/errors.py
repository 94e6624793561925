"""Exceptions of the Graph client, and the mapping from Graph error responses to them.

Graph's error body is ``{"error": {"code", "message", "innerError": {"request-id", ...}}}``
(learn.microsoft.com/graph/errors). Every message here is one line and never contains a
secret or a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACCESS_HINT = (
    "the app's access policy (ApplicationAccessPolicy or RBAC for Applications) does not "
    "cover mailbox {mailbox}, or the app lacks the Calendars.ReadWrite application "
    "permission with admin consent (policy changes can take an hour or more to apply); "
    "see docs/admin.md"
)


def one_line(text: str, limit: int = 500) -> str:
    """Collapse whitespace (CR/LF included) to single spaces and cut to ``limit`` chars."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class AuthError(Exception):
    """A token could not be obtained from the Microsoft identity platform.

    ``str()`` is one line naming the cause and the fix, without any secret. ``code`` is the
    AADSTS code (``"AADSTS7000215"``) when the identity platform gave one, else a short
    word: ``"NetworkError"``, ``"TLSError"``, ``"CertificateFile"``, ``"InvalidResponse"``.
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(one_line(message, 1000))
        self.code = code


class SignInRequired(AuthError):
    """A person's delegated token cannot be had without a new sign-in: they never signed in
    through the gateway, or their refresh token was revoked, expired or needs new consent
    (``invalid_grant``, e.g. AADSTS50173, AADSTS70008, AADSTS700082, AADSTS65001).

    ``str()`` names the person and the sign-in page (``signin_url``), never a token.
    ``upn`` is the person's user principal name.
    """

    def __init__(self, upn: str, signin_url: str, reason: str, code: str = "") -> None:
        self.upn = upn
        self.signin_url = signin_url
        super().__init__(
            f"Microsoft 365 access for {upn} has ended ({reason}): sign in again at "
            f"{signin_url} and use the new app password shown there", code or "SignInRequired")


class GraphError(Exception):
    """Graph answered an error (or could not be reached: ``status`` 0, ``NetworkError``).

    Attributes: ``status`` (HTTP status, 0 for network failures), ``code`` (Graph's
    ``error.code``, e.g. ``ErrorItemNotFound``), ``message`` (Graph's ``error.message``),
    ``mailbox`` and ``operation`` (what we were doing, for the reader of the log) and
    ``request_id`` (Graph's ``request-id``, for Microsoft support).
    """

    hint = ""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        mailbox: str | None = None,
        operation: str = "request",
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = one_line(message)
        self.mailbox = mailbox
        self.operation = operation
        self.request_id = request_id
        super().__init__(self._render())

    def _detail(self) -> str:
        return ""

    def _render(self) -> str:
        where = f" for mailbox {self.mailbox}" if self.mailbox else ""
        head = f"{self.status} {self.code}" if self.status else self.code
        text = f"Graph refused {self.operation}{where}: {head}: {self.message}"
        if self.status == 0:
            text = f"Graph call {self.operation}{where} failed: {head}: {self.message}"
        hint = self.hint.format(mailbox=self.mailbox or "(none)") if self.hint else ""
        if hint:
            text += f"; likely cause: {hint}"
        extras = [x for x in (self._detail(), self.request_id and f"request-id {self.request_id}")
                  if x]
        if extras:
            text += f" ({'; '.join(extras)})"
        return text

    def __str__(self) -> str:
        return self._render()


class BadRequest(GraphError):
    """400: Graph rejected the request (e.g. ``ErrorInvalidRequest``,
    ``ErrorOccurrenceCrossingBoundary``)."""


class Unauthorized(GraphError):
    """401: the token was refused even after fetching a fresh one."""


class AccessDenied(GraphError):
    """403 (``ErrorAccessDenied``): the app may not touch this mailbox.

    The message names the mailbox and the usual causes: an ApplicationAccessPolicy or RBAC
    for Applications scope that doesn't include it, or a missing Calendars.ReadWrite
    application permission.
    """

    hint = ACCESS_HINT


class NotFound(GraphError):
    """404 (``ErrorItemNotFound``, ``ResourceNotFound``, ``MailboxNotEnabledForRESTAPI``)."""


class Conflict(GraphError):
    """409 (``ErrorIrresolvableConflict``): a concurrent change won."""


class PreconditionFailed(GraphError):
    """412: the ``If-Match`` etag is stale (``ErrorIrresolvableConflict`` / precondition)."""


class Throttled(GraphError):
    """429 after the retry budget was spent. ``retry_after`` is Graph's last
    ``Retry-After`` in seconds (None if absent)."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)

    def _detail(self) -> str:
        if self.retry_after is None:
            return "gave up retrying"
        return f"gave up retrying; Graph's last Retry-After was {self.retry_after:g} s"


class ServiceUnavailable(GraphError):
    """503 or 504 after retries: Exchange Online is busy or down."""


class NetworkError(GraphError):
    """Graph could not be reached: connection failure, timeout, TLS failure (status 0)."""

    def __init__(self, message: str, mailbox: str | None = None, operation: str = "request",
                 code: str = "NetworkError") -> None:
        super().__init__(0, code, message, mailbox, operation, None)


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: AccessDenied,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    429: Throttled,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given as delta-seconds; None if absent or not
    a number (Graph sends delta-seconds; HTTP dates are left to urllib3's parser)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: Any,
    text: str = "",
    *,
    mailbox: str | None,
    operation: str,
) -> GraphError:
    """Build the GraphError subclass for one error response.

    ``body`` is the decoded JSON (or None when the body wasn't JSON, in which case the first
    part of ``text`` becomes the message). 403 → AccessDenied, 404 → NotFound, 412 →
    PreconditionFailed, 429 → Throttled, 503/504 → ServiceUnavailable, 400 → BadRequest,
    401 → Unauthorized, 409 → Conflict, anything else → GraphError.
    """
    code, message, request_id = "", "", _header(headers, "request-id")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict) and not request_id:
            request_id = inner.get("request-id")
    elif isinstance(error, str):
        message = error
    if not message:
        message = one_line(text, 200) if text.strip() else "(no error body)"
    if not code:
        code = f"HTTP{status}"
    cls = _BY_STATUS.get(status, GraphError)
    kwargs: dict[str, Any] = {}
    if cls is Throttled:
        kwargs["retry_after"] = parse_retry_after(_header(headers, "Retry-After"))
    return cls(status, code, message, mailbox, operation, request_id, **kwargs)
