"""Microsoft Graph client layer: app-only and delegated tokens, retries, paging, $batch."""

from .client import GraphClient, GraphResponse, merge_prefer
from .errors import (
    AccessDenied,
    AuthError,
    BadRequest,
    Conflict,
    GraphError,
    NetworkError,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    SignInRequired,
    Throttled,
    Unauthorized,
    error_from_response,
)
from .settings import GraphSettings

__all__ = [
    "AccessDenied",
    "AuthError",
    "BadRequest",
    "Conflict",
    "GraphClient",
    "GraphError",
    "GraphResponse",
    "GraphSettings",
    "NetworkError",
    "NotFound",
    "PreconditionFailed",
    "ServiceUnavailable",
    "SignInRequired",
    "Throttled",
    "Unauthorized",
    "error_from_response",
    "merge_prefer",
]
