"""Delegated tokens: people sign in with Microsoft, the gateway then calls Graph as them.

The authorization code flow with PKCE is msal's (``initiate_auth_code_flow`` makes the
``state``, ``nonce`` and PKCE ``code_verifier``; ``acquire_token_by_auth_code_flow`` checks the
state, sends the verifier and validates the ID token), and so is refreshing
(``acquire_token_silent_with_error`` answers from the cache, or redeems the refresh token,
storing the rotated one). Sources: learn.microsoft.com/entra/identity-platform/
v2-oauth2-auth-code-flow, msal-python's ``ConfidentialClientApplication`` and
``SerializableTokenCache`` (token-cache-serialization).

The token cache of every person is one msal ``SerializableTokenCache``, persisted in one file
encrypted with Fernet (AES-128-CBC + HMAC-SHA256, ``cryptography``) under the admin's key, so the
file holds no token in clear. Nothing here logs a token, a code or a key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass

import msal
from cryptography.fernet import Fernet, InvalidToken

from ..metrics import count_token
from .auth import TokenProvider
from .errors import AuthError, SignInRequired
from .settings import GraphSettings

log = logging.getLogger("radicale_graph.graph")

# Added by msal to every user flow; msal refuses them in the scopes it is given.
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
DEFAULT_SCOPES = ("Calendars.ReadWrite.Shared", "Group.ReadWrite.All", "Place.Read.All",
                  "offline_access")
KEY_ENV = "RADICALE_GRAPH_TOKEN_KEY"
FLOW_LIFETIME = 600.0  # seconds a started sign-in may take


def generate_key() -> str:
    """A new Fernet key (url-safe base64 of 32 random bytes) for the token cache."""
    return Fernet.generate_key().decode("ascii")


def load_key(key_file: str | None, environ: dict | None = None) -> bytes:
    """The token cache key from ``key_file`` (the key alone, one line) or else the environment
    variable ``RADICALE_GRAPH_TOKEN_KEY``. Raises ValueError naming the source (never the key)
    when neither is given, the file cannot be read, or the value is not a Fernet key."""
    env = os.environ if environ is None else environ
    if key_file:
        try:
            with open(key_file, encoding="ascii") as handle:
                value, source = handle.read().strip(), f"token_cache_key_file {key_file}"
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ValueError(f"cannot read [storage] token_cache_key_file {key_file!r}: "
                             f"{reason}") from None
    elif env.get(KEY_ENV):
        value, source = env[KEY_ENV].strip(), f"the environment variable {KEY_ENV}"
    else:
        raise ValueError(
            f"delegated mode needs a key for the token cache: set [storage] "
            f"token_cache_key_file, or the environment variable {KEY_ENV}, to a Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')")
    try:
        if len(base64.urlsafe_b64decode(value.encode("ascii"))) != 32:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{source} does not hold a Fernet key (44 characters of url-safe "
                         "base64); generate one with Fernet.generate_key()") from None
    return value.encode("ascii")


def user_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes to give msal: ``scopes`` without the reserved ones msal adds itself
    (``openid``, ``profile``, ``offline_access``), order kept, duplicates dropped."""
    return [s for s in dict.fromkeys(scopes) if s.lower() not in RESERVED_SCOPES]


class EncryptedTokenCache(msal.SerializableTokenCache):
    """msal's serializable cache, kept in ``path`` encrypted with a Fernet ``key``.

    ``load()`` reads the file (missing: empty cache); ``save()`` writes it when msal changed
    it (atomically, mode 0600). Raises ValueError when the file does not decrypt with the key
    (a changed key: delete the file, and every person signs in again)."""

    def __init__(self, path: str, key: bytes) -> None:
        super().__init__()
        self.path = path
        self._fernet = Fernet(key)

    def load(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                blob = handle.read()
        except FileNotFoundError:
            return
        try:
            self.deserialize(self._fernet.decrypt(blob).decode("utf-8"))
        except InvalidToken:
            raise ValueError(
                f"the token cache {self.path} does not decrypt with the configured key (was "
                "the key changed?); restore the old key, or delete the file so that people "
                "sign in again") from None

    def save(self) -> None:
        if not self.has_state_changed:
            return
        blob = self._fernet.encrypt(self.serialize().encode("utf-8"))
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
        os.replace(tmp, self.path)
        self.has_state_changed = False


@dataclass(frozen=True)
class SignInStart:
    """A started sign-in: send the browser to ``auth_uri``; ``state`` keys the flow."""

    state: str
    auth_uri: str


class PersonTokens:
    """The token provider of one person for :meth:`GraphClient.with_tokens`:
    ``get_token()`` (a delegated access token, refreshed silently; raises SignInRequired)
    and ``invalidate()`` (after Graph refused the token)."""

    def __init__(self, source: DelegatedTokens, upn: str) -> None:
        self.source = source
        self.upn = upn

    def get_token(self) -> str:
        return self.source.token_for(self.upn)

    def invalidate(self) -> None:
        self.source.drop_access_tokens(self.upn)

    def close(self) -> None:
        """Nothing to close: the source is shared."""


class DelegatedTokens:
    """Delegated tokens of every person who signed in through the gateway.

    ``settings`` are the app's (its client secret or certificate authenticates the token
    requests: a confidential client); ``scopes`` the delegated Graph permissions asked for;
    ``cache_path`` the encrypted cache file (in ``state_folder``), ``key`` its Fernet key;
    ``signin_url`` the gateway's sign-in page, named in errors. Thread-safe (one lock around
    msal and the file). Raises ValueError at construction when the cache does not decrypt.
    """

    def __init__(self, settings: GraphSettings, scopes: list[str] | tuple[str, ...],
                 cache_path: str, key: bytes, signin_url: str) -> None:
        self.settings = settings
        self.scopes = user_scopes(scopes)
        self.signin_url = signin_url
        self.cache = EncryptedTokenCache(cache_path, key)
        self.cache.load()
        self._provider = TokenProvider(settings, token_cache=self.cache)
        self._lock = threading.RLock()
        self._flows: dict[str, tuple[float, dict]] = {}

    # -- signing in ------------------------------------------------------------------------
    def begin(self, redirect_uri: str, login_hint: str | None = None) -> SignInStart:
        """Start an authorization code flow with PKCE for ``redirect_uri``; the flow (with
        its code verifier) stays here, keyed by its ``state``, for FLOW_LIFETIME seconds.
        Raises AuthError when the identity platform cannot be reached."""
        with self._lock:
            app = self._application()
            now = time.monotonic()
            for state in [s for s, (t, _) in self._flows.items() if now - t > FLOW_LIFETIME]:
                del self._flows[state]
            flow = app.initiate_auth_code_flow(
                self.scopes, redirect_uri=redirect_uri, state=secrets.token_urlsafe(24),
                login_hint=login_hint, prompt="select_account")
            self._flows[flow["state"]] = (now, flow)
        return SignInStart(flow["state"], flow["auth_uri"])

    def complete(self, auth_response: dict[str, str]) -> str:
        """Finish the flow named by ``auth_response["state"]`` (the query parameters of the
        redirect): redeem the code (msal sends the PKCE verifier and checks state and nonce),
        store the tokens. Returns the person's UPN (lower case). Raises AuthError (unknown or
        expired state, an error from the identity platform, no UPN in the ID token)."""
        state = auth_response.get("state") or ""
        with self._lock:
            started = self._flows.pop(state, None)
            if started is None or time.monotonic() - started[0] > FLOW_LIFETIME:
                raise AuthError("this sign-in is unknown or took too long; start again",
                                "InvalidState")
            if auth_response.get("error"):
                description = str(auth_response.get("error_description") or "")
                raise AuthError(f"Microsoft refused the sign-in ({auth_response['error']}): "
                                f"{_first_line(description)}", str(auth_response["error"]))
            app = self._application()
            try:
                result = app.acquire_token_by_auth_code_flow(started[1], auth_response)
            except Exception as exc:
                raise self._provider._exception_error(exc) from None
            if "access_token" not in result:
                raise self._provider._result_error(result)
            claims = result.get("id_token_claims") or {}
            upn = str(claims.get("preferred_username") or claims.get("upn") or "").lower()
            if not upn:
                raise AuthError("the sign-in returned no user name (preferred_username) in its "
                                "ID token; the openid and profile scopes are needed",
                                "InvalidResponse")
            self.cache.save()
        log.info("delegated sign-in completed for %s", upn)
        return upn

    # -- tokens ------------------------------------------------------------------------------
    def provider(self, upn: str) -> PersonTokens:
        """The token provider of ``upn`` for ``GraphClient.with_tokens``."""
        return PersonTokens(self, upn.lower())

    def has_person(self, upn: str) -> bool:
        """Whether the cache holds an account for ``upn`` (signed in, not forgotten)."""
        with self._lock:
            return self._account(upn) is not None

    def token_for(self, upn: str) -> str:
        """A delegated access token of ``upn``: from the cache, or refreshed with the refresh
        token (msal stores the rotated one; the file is saved). Raises SignInRequired when
        there is no account or the refresh token is refused, AuthError for other failures."""
        with self._lock:
            if self._account(upn) is None:
                raise SignInRequired(upn, self.signin_url, "no sign-in through the gateway")
            app = self._application()
            try:
                accounts = app.get_accounts(username=upn)
                if not accounts:
                    raise SignInRequired(upn, self.signin_url, "no sign-in through the gateway")
                account = accounts[0]
                result = app.acquire_token_silent_with_error(self.scopes, account)
            except SignInRequired:
                raise
            except Exception as exc:
                raise self._provider._exception_error(exc) from None
            finally:
                self.cache.save()
        if result and "access_token" in result:
            count_token(result, "delegated")  # the refresh token was redeemed
            return result["access_token"]
        error = (result or {}).get("error") or "no refresh token"
        codes = (result or {}).get("error_codes") or []
        code = f"AADSTS{codes[0]}" if codes else ""
        log.warning("delegated token of %s could not be refreshed (%s%s)", upn, error,
                    f", {code}" if code else "")
        reason = {"invalid_grant": "the refresh token was revoked or has expired",
                  "interaction_required": "Microsoft asks for a new interactive sign-in",
                  "consent_required": "the app needs consent again"}.get(error, str(error))
        raise SignInRequired(upn, self.signin_url, f"{reason}{f', {code}' if code else ''}",
                             code)

    def drop_access_tokens(self, upn: str) -> None:
        """Forget the cached access tokens of ``upn`` (the next request refreshes)."""
        with self._lock:
            account = self._account(upn)
            if account is None:
                return
            for entry in list(self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                                query={"home_account_id":
                                                       account["home_account_id"]})):
                self.cache.remove_at(entry)
            self.cache.save()

    def forget(self, upn: str) -> bool:
        """Remove every token of ``upn`` from the cache (the person must sign in again).
        Returns whether the person had an account."""
        with self._lock:
            account = self._account(upn)
            if account is None:
                return False
            query = {"home_account_id": account["home_account_id"]}
            kind = msal.TokenCache.CredentialType
            for entry in list(self.cache.search(kind.ACCESS_TOKEN, query=query)):
                self.cache.remove_at(entry)
            for entry in list(self.cache.search(kind.REFRESH_TOKEN, query=query)):
                self.cache.remove_rt(entry)
            for entry in list(self.cache.search(kind.ID_TOKEN, query=query)):
                self.cache.remove_idt(entry)
            self.cache.remove_account(account)
            self.cache.save()
            return True

    def close(self) -> None:
        self._provider.close()

    # -- internals ---------------------------------------------------------------------------
    def _application(self) -> msal.ConfidentialClientApplication:
        return self._provider._application()

    def _account(self, upn: str) -> dict | None:
        wanted = upn.lower()
        for account in self.cache.search(msal.TokenCache.CredentialType.ACCOUNT):
            if str(account.get("username") or "").lower() == wanted:
                return account
        return None


def _first_line(text: str) -> str:
    head = text.strip().splitlines()[0] if text.strip() else "(no description)"
    return head.split(" Trace ID:")[0][:300]
