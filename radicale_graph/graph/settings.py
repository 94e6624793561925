"""Connection settings of the Graph client: tenant, app credentials, endpoints, limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class GraphSettings:
    """How to reach Microsoft Graph as an app (client-credentials flow).

    Exactly one credential: ``client_secret``, or ``certificate_key_file`` plus
    ``certificate_file`` (PEM private key and PEM certificate; msal derives the thumbprint
    from the certificate). ``authority_host`` is the identity platform's origin
    (``https://login.microsoftonline.com``, a national cloud, or the emulator); the authority
    is ``{authority_host}/{tenant_id}``. ``graph_url`` is the Graph service root including
    the version (``https://graph.microsoft.com/v1.0``); the token's resource is its scheme and
    host. ``ca_file`` adds a CA bundle to trust (emulator); TLS verification is never turned
    off. ``timeout`` is seconds per HTTP call (connect and read, each). ``max_retry_wait``
    bounds, in seconds, the total time spent waiting between retries of one call;
    ``max_retries`` bounds their number. ``max_concurrency`` is the number of Graph requests
    in flight per mailbox across all threads (Outlook allows 4: "MailboxConcurrency",
    learn.microsoft.com/graph/throttling-limits#outlook-service-limits).

    Raises ValueError when the settings contradict each other (both or no credentials, a
    certificate without its key, plain http to a host other than loopback, limits < 1).
    """

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_key_file: str | None = None
    certificate_file: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_file: str | None = None
    timeout: float = 30.0
    max_retry_wait: float = 120.0
    max_retries: int = 5
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.client_id:
            raise ValueError("tenant_id and client_id are required")
        has_secret = bool(self.client_secret)
        has_cert = bool(self.certificate_key_file or self.certificate_file)
        if has_secret == has_cert:
            raise ValueError(
                "configure exactly one credential: client_secret, or certificate_key_file "
                "together with certificate_file"
            )
        if has_cert and not (self.certificate_key_file and self.certificate_file):
            raise ValueError(
                "certificate_key_file and certificate_file must be set together "
                "(the PEM private key and the PEM certificate uploaded to the app registration)"
            )
        for name in ("authority_host", "graph_url"):
            value = getattr(self, name)
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError(f"{name} must be an absolute https URL, got {value!r}")
            if parts.scheme == "http" and not _is_loopback(parts.hostname):
                raise ValueError(
                    f"{name} uses plain http to {parts.hostname}: only loopback hosts may "
                    "use http, since the access token would travel in clear text"
                )
        if self.timeout <= 0 or self.max_retry_wait < 0:
            raise ValueError("timeout must be > 0 and max_retry_wait >= 0 (seconds)")
        if self.max_retries < 0 or self.max_concurrency < 1:
            raise ValueError("max_retries must be >= 0 and max_concurrency >= 1")

    @property
    def authority(self) -> str:
        """The msal authority URL, ``{authority_host}/{tenant_id}``."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def graph_origin(self) -> str:
        """Scheme and host (with port) of ``graph_url``, e.g. ``https://graph.microsoft.com``."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def scope(self) -> str:
        """The client-credentials scope: the Graph resource plus ``/.default``.

        Source: learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
        ("the value passed for the scope parameter ... should be the resource identifier
        (application ID URI) of the resource you want, affixed with the .default suffix").
        """
        return f"{self.graph_origin}/.default"
