"""App-only access tokens for Graph via msal's client-credentials flow.

Source: learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow and
msal's ``ConfidentialClientApplication`` (client secret, or a certificate given as
``{"private_key": PEM, "public_certificate": PEM}``, from which msal computes the SHA-256
thumbprint for the ``x5t#S256`` header of the client assertion).
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from ..metrics import count_token
from .errors import AuthError
from .settings import GraphSettings

log = logging.getLogger("radicale_graph.graph")

_AADSTS = re.compile(r"AADSTS(\d+)")
_PORTAL_SECRETS = "Entra ID > App registrations > Certificates & secrets"


class _IdentitySession(requests.Session):
    """The HTTP client msal uses: verifies TLS with ``ca_file`` (or the system store) and
    applies a timeout to every call."""

    def __init__(self, ca_file: str | None, timeout: float) -> None:
        super().__init__()
        self.verify = ca_file or True
        self._timeout = timeout
        adapter = requests.adapters.HTTPAdapter(max_retries=1)  # msal's own default
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        # Explicitly: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def _read_pem(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise AuthError(
            f"cannot read {option} {path}: {reason}; check the path in {option} and that the "
            "gateway's user may read it",
            "CertificateFile",
        ) from None


def load_certificate_credential(settings: GraphSettings) -> tuple[dict, str]:
    """Read and check the PEM key and certificate named by the settings.

    Returns ``(credential, sha1_thumbprint_hex)``: the msal client_credential dict and the
    certificate's SHA-1 thumbprint as Entra ID shows it (upper-case hex), for messages.
    Raises AuthError naming the file and the option when a file is missing, unreadable,
    not PEM, encrypted, or when the key doesn't belong to the certificate.
    """
    key_path, cert_path = settings.certificate_key_file, settings.certificate_file
    key_pem = _read_pem(key_path, "certificate_key_file")
    cert_pem = _read_pem(cert_path, "certificate_file")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise AuthError(
            f"certificate_key_file {key_path} is encrypted; give an unencrypted PEM key "
            "(e.g. openssl pkey -in key.pem -out key-plain.pem) readable only by the gateway",
            "CertificateFile",
        ) from None
    except ValueError:
        raise AuthError(
            f"certificate_key_file {key_path} is not a PEM private key; convert it "
            "(for a .pfx: openssl pkcs12 -in cert.pfx -nocerts -nodes -out key.pem)",
            "CertificateFile",
        ) from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise AuthError(
            f"certificate_file {cert_path} is not a PEM certificate; convert it "
            "(for a .cer in DER form: openssl x509 -inform der -in cert.cer -out cert.pem)",
            "CertificateFile",
        ) from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise AuthError(
            f"certificate_key_file {key_path} is not the private key of certificate_file "
            f"{cert_path}; give the key that belongs to the certificate",
            "CertificateFile",
        )
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    if cert.not_valid_after_utc < datetime.now(UTC):
        log.warning("certificate_file %s (SHA-1 thumbprint %s) expired on %s; Entra ID will "
                    "refuse it", cert_path, thumbprint, cert.not_valid_after_utc.date())
    credential = {"private_key": key_pem.decode("ascii"),
                  "public_certificate": cert_pem.decode("ascii")}
    return credential, thumbprint


class TokenProvider:
    """Gets (and caches, through msal's in-memory cache) app-only tokens for Graph.

    ``get_token()`` returns a bearer token string for ``settings.scope``; msal answers from
    its cache until five minutes before expiry. ``invalidate()`` drops cached tokens (after
    Graph refused one). Thread-safe. Raises AuthError (one line, no secret) on failure.
    """

    def __init__(self, settings: GraphSettings,
                 token_cache: msal.TokenCache | None = None) -> None:
        self._settings = settings
        # None: msal's own in-memory cache (app-only). The delegated token source passes its
        # encrypted, persisted SerializableTokenCache (see .delegated).
        self._token_cache = token_cache
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._http: _IdentitySession | None = None
        self._thumbprint: str | None = None

    # -- public -------------------------------------------------------------------------
    def get_token(self) -> str:
        """A valid access token for Graph (from msal's cache or a new client-credentials
        grant). Raises AuthError."""
        with self._lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[self._settings.scope])
            except Exception as exc:  # msal raises requests' and its own exceptions
                raise self._exception_error(exc) from None
        if not isinstance(result, dict) or "access_token" not in result:
            raise self._result_error(result if isinstance(result, dict) else {})
        count_token(result, "app")  # client credentials; counted when not from msal's cache
        return result["access_token"]

    def invalidate(self) -> None:
        """Forget cached tokens so the next get_token() asks the identity platform."""
        with self._lock:
            if self._app is None:
                return
            # The cache is this application's own in-memory cache, holding only its app-only
            # tokens. (remove_tokens_for_client() would first ask Microsoft's instance
            # discovery for host aliases: a network call we don't need.)
            cache = self._app.token_cache
            for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(entry)

    def close(self) -> None:
        """Close the identity HTTP session."""
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._app = None
            self._http = None

    # -- building the msal application ---------------------------------------------------
    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is not None:
            return self._app
        s = self._settings
        if s.client_secret:
            credential: str | dict = s.client_secret
        else:
            credential, self._thumbprint = load_certificate_credential(s)
        host = urlsplit(s.authority_host).hostname or ""
        microsoft_cloud = host.lower() in WELL_KNOWN_AUTHORITY_HOSTS
        http = _IdentitySession(s.ca_file, s.timeout)
        try:
            # The constructor already fetches {authority}/v2.0/.well-known/openid-configuration.
            app = msal.ConfidentialClientApplication(
                s.client_id,
                client_credential=credential,
                authority=s.authority,
                http_client=http,
                # Outside Microsoft's clouds (the emulator) don't ask Microsoft's instance
                # discovery about the host.
                validate_authority=microsoft_cloud,
                instance_discovery=None if microsoft_cloud else False,
                token_cache=self._token_cache,
            )
        except Exception as exc:
            http.close()
            raise self._exception_error(exc) from None
        self._app, self._http = app, http
        return app

    # -- error mapping -------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        secret = self._settings.client_secret
        return text.replace(secret, "***") if secret else text

    def _exception_error(self, exc: BaseException) -> AuthError:
        s = self._settings
        if isinstance(exc, AuthError):
            return exc
        where = f"the Microsoft identity platform at {s.authority}"
        if isinstance(exc, requests.exceptions.SSLError):
            trust = f"ca_file {s.ca_file}" if s.ca_file else "the system CA store (ca_file unset)"
            return AuthError(
                f"TLS certificate verification failed for {where} using {trust}; set ca_file "
                "to the CA bundle that signed the server's certificate, or fix authority_host",
                "TLSError",
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return AuthError(
                f"no answer from {where} within {s.timeout:g} s; check authority_host, the "
                "network, and proxy settings (HTTPS_PROXY)",
                "NetworkError",
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            return AuthError(
                f"cannot reach {where}; check authority_host, the network, DNS and proxy "
                "settings (HTTPS_PROXY)",
                "NetworkError",
            )
        text = self._redact(" ".join(str(e) for e in _chain(exc)))
        match = _AADSTS.search(text)
        if match:
            return self._by_code(int(match.group(1)), text)
        if isinstance(exc, ValueError) and "authority" in text.lower():
            return AuthError(
                f"cannot read the OpenID configuration of {s.authority}; check tenant_id and "
                "authority_host",
                "InvalidResponse",
            )
        return AuthError(
            f"cannot obtain a token from {where}: {type(exc).__name__}: {text}",
            "InvalidResponse",
        )

    def _result_error(self, result: dict) -> AuthError:
        description = self._redact(str(result.get("error_description") or ""))
        codes = result.get("error_codes") or []
        match = _AADSTS.search(description)
        if codes and isinstance(codes[0], int):
            return self._by_code(codes[0], description)
        if match:
            return self._by_code(int(match.group(1)), description)
        error = result.get("error") or "unknown_error"
        return AuthError(
            f"Microsoft identity platform refused a token for app {self._settings.client_id} "
            f"in tenant {self._settings.tenant_id} ({error}): {_first_sentence(description)}",
            str(error),
        )

    def _by_code(self, number: int, description: str) -> AuthError:
        s = self._settings
        code = f"AADSTS{number}"
        who = f"app {s.client_id} in tenant {s.tenant_id}"
        refused = "Microsoft identity platform refused"
        if number in (7000215, 7000222):
            text = (f"{refused} the client secret for {who} ({code}): the secret is wrong or "
                    "expired (or is the secret's ID instead of its value); create a new client "
                    f"secret in {_PORTAL_SECRETS} and update client_secret.")
        elif number == 700016:
            text = (f"{refused} {who} ({code}): no app with this client_id exists in the tenant; "
                    "check client_id (Application (client) ID in Entra ID > App registrations) "
                    "and tenant_id.")
        elif number in (90002, 900023, 90013):
            text = (f"{refused} tenant {s.tenant_id} ({code}): the tenant does not exist; check "
                    "tenant_id (Directory (tenant) ID in Entra ID > Overview) and "
                    "authority_host.")
        elif number in (700027, 700023, 7000274, 50012):
            thumb = f" (SHA-1 thumbprint {self._thumbprint})" if self._thumbprint else ""
            text = (f"{refused} the certificate for {who} ({code}): the certificate in "
                    f"certificate_file{thumb} is not registered on the app, has expired, or "
                    "doesn't match certificate_key_file; upload a valid certificate_file in "
                    f"{_PORTAL_SECRETS} > Certificates.")
        elif number == 700024:
            text = (f"{refused} the client assertion for {who} ({code}): it is outside its "
                    "validity window; check this host's clock (NTP).")
        elif number in (500011, 1002012, 70011):
            text = (f"{refused} the scope {s.scope} for {who} ({code}): check graph_url "
                    "(the Graph resource of this cloud).")
        elif number == 53003:
            text = (f"{refused} {who} ({code}): a Conditional Access policy blocks the app; "
                    "exclude the gateway's workload identity or allow its network location.")
        else:
            text = f"{refused} a token for {who} ({code}): {_first_sentence(description)}"
        return AuthError(text, code)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _first_sentence(description: str) -> str:
    """The identity platform's description without its Trace ID / Correlation ID tail."""
    head = re.split(r"\s*(?:\r?\n|Trace ID:)", description, maxsplit=1)[0]
    return head.strip() or "(no description)"
