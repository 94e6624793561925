"""Delegated (signed-in user) access on the emulated Microsoft identity platform (v2.0).

What a confidential web app using msal's ``initiate_auth_code_flow`` /
``acquire_token_by_auth_code_flow`` / ``acquire_token_silent`` (or a browser) meets. Sources are
pages of ``MicrosoftDocs/entra-docs`` (``docs/identity-platform/``), as published on
learn.microsoft.com/entra/identity-platform/:

- ``GET /{tenant}/oauth2/v2.0/authorize`` answers an HTML sign-in page (login field ``i0116``
  named ``loginfmt``, password ``i0118`` named ``passwd``, button ``idSIButton9``, the request in
  hidden fields); ``POST`` of that form checks the password and redirects to ``redirect_uri``
  with ``code``, ``state``, ``session_state`` and, when asked with ``client_info=1``,
  ``client_info`` (v2-oauth2-auth-code-flow.md, "Request an authorization code"; ``response_mode``
  ``query`` (default), ``fragment`` or ``form_post``). No single sign-on session is kept:
  ``prompt=none`` answers ``login_required`` (AADSTS50058).
- Errors that must not be sent to an unverified address are shown on the page: unknown tenant
  (AADSTS90002), unknown client (AADSTS700016), missing (AADSTS900971) or unregistered
  (AADSTS50011) redirect URI. Redirect URIs match exactly (paths are case-sensitive), except that
  for ``localhost`` and ``127.0.0.1`` the port is ignored (reply-url.md, "Localhost
  exceptions"); a URI without a path comes back with a trailing slash (reply-url.md).
- Wrong password: the page again with AADSTS50126; unknown user: AADSTS50034
  (reference-error-codes.md). Scopes the app has no consent for: a redirect with
  ``error=consent_required`` and AADSTS65001 (reference-error-codes.md, "DelegationDoesNotExist";
  v2-oauth2-auth-code-flow.md, error codes).
- ``grant_type=authorization_code``: single-use codes (AADSTS54005 on reuse), valid 10 minutes
  ("Authorization codes are short lived. Typically, they expire after about 10 minutes";
  AADSTS70008 afterwards), ``redirect_uri`` equal to the authorize one (AADSTS50011), PKCE
  ``code_verifier`` checked against the ``S256`` or ``plain`` ``code_challenge`` (AADSTS501481).
  ``refresh_token`` only when ``offline_access`` was granted, ``id_token`` only with ``openid``
  (v2-oauth2-auth-code-flow.md, "Successful response").
- ``grant_type=refresh_token``: a new access token and a new refresh token ("Refresh tokens
  replace themselves with a fresh token upon every use", refresh-tokens.md). Microsoft does NOT
  revoke the old one ("Refresh tokens aren't revoked when used to acquire new access tokens. You're
  expected to discard the old refresh token", v2-oauth2-auth-code-flow.md); the emulator does by
  default, to test that the client keeps the replacement (AADSTS70008, "ExpiredOrRevokedGrant");
  ``Identity.refuse_replaced_refresh_tokens = False`` behaves as Microsoft documents.
  Revoked grants (``revoke_refresh_tokens``, as an admin's "revoke sessions" or a password reset
  does) answer AADSTS50173 ("FreshTokenNeeded"); access tokens already issued stay valid until
  they expire (refresh-tokens.md, access-tokens.md).
- Scopes: a Graph permission may be written bare (``Calendars.ReadWrite``) or with the resource
  (``https://graph.microsoft.com/Calendars.ReadWrite``); ``https://graph.microsoft.com/.default``
  asks for every consented Graph permission (scopes-oidc.md). ``openid``, ``profile``, ``email``
  and ``offline_access`` are OpenID Connect scopes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import entra_error_body

OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
CODE_LIFETIME = 600  # seconds (v2-oauth2-auth-code-flow.md: "expire after about 10 minutes")
REFRESH_INACTIVITY = 90 * 86400  # refresh-tokens.md: "90 days for all other scenarios"
GRAPH_PREFIXES = ("https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000/")
#: Graph permissions that open calendar paths (permissions-reference; api/user-list-events.md).
CALENDAR_READ = {"calendars.read", "calendars.readwrite", "calendars.read.shared",
                 "calendars.readwrite.shared", "calendars.readbasic"}
CALENDAR_WRITE = {"calendars.readwrite", "calendars.readwrite.shared"}
USER_READ = {"user.read", "user.readwrite", "user.readbasic.all", "user.read.all",
             "user.readwrite.all", "directory.read.all", "directory.readwrite.all"}
OTHER_USERS_READ = USER_READ - {"user.read", "user.readwrite"}
PLACE_READ = {"place.read.all", "place.readwrite.all"}


@dataclass
class User:
    """A user who can sign in: UPN, object id (the Graph user id), names and password."""

    upn: str
    oid: str
    name: str
    password: str
    given_name: str | None = None
    surname: str | None = None
    tokens_valid_from: float = 0.0  # grants issued before are revoked (AADSTS50173)


@dataclass
class AuthCode:
    """One authorization code between /authorize and its redemption."""

    client_id: str
    upn: str
    redirect_uri: str
    scopes: list
    nonce: str | None
    challenge: str | None
    method: str
    issued: float
    redeemed: bool = False


@dataclass
class RefreshGrant:
    """What a refresh token stands for (the token itself is kept only as a SHA-256)."""

    client_id: str
    upn: str
    scopes: list
    issued: float
    last_used: float
    replaced: bool = False
    revoked: bool = False


@dataclass
class TokenRequest:
    """One token-endpoint answer, for tests: grant, client, user (delegated), status, AADSTS."""

    grant_type: str
    client_id: str
    upn: str | None
    status: int
    error_code: int | None


@dataclass
class Scopes:
    """A parsed ``scope`` parameter: Graph permissions (as written and bare), OIDC, foreign."""

    graph: list = field(default_factory=list)  # bare permission names, as written
    written: dict = field(default_factory=dict)  # bare lower-case -> as the client wrote it
    oidc: list = field(default_factory=list)
    default: bool = False
    foreign: list = field(default_factory=list)


def parse_scopes(text: str, own_origin: str = "") -> Scopes:
    """Split a space-separated ``scope`` into Graph permissions, OIDC scopes and others."""
    out = Scopes()
    prefixes = GRAPH_PREFIXES + ((own_origin.rstrip("/") + "/",) if own_origin else ())
    for item in (text or "").split():
        low = item.lower()
        if low in OIDC_SCOPES:
            if low not in out.oidc:
                out.oidc.append(low)
            continue
        bare = None
        for prefix in prefixes:
            if low.startswith(prefix.lower()):
                bare = item[len(prefix):]
                break
        if bare is None and "/" not in item and ":" not in item:
            bare = item  # a bare name is a Microsoft Graph permission (scopes-oidc.md)
        if bare is None:
            out.foreign.append(item)
        elif bare == ".default":
            out.default = True
        elif bare.lower() not in out.written:
            out.graph.append(bare)
            out.written[bare.lower()] = item
    return out


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def client_info(oid: str, tenant_id: str) -> str:
    """``client_info`` as Entra returns it: base64url JSON ``{"uid", "utid"}``."""
    return _b64url(json.dumps({"uid": oid, "utid": tenant_id}, separators=(",", ":")).encode())


def redirect_matches(registered: str, requested: str) -> bool:
    """reply-url.md: exact match (case-sensitive), but for ``localhost`` and ``127.0.0.1`` the
    port component is ignored ("Localhost exceptions"); ``[::1]`` is not supported."""
    if registered == requested:
        return True
    a, b = urlsplit(registered), urlsplit(requested)
    try:
        b.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError:
        return False
    return (a.hostname in ("localhost", "127.0.0.1") and b.hostname == a.hostname
            and not b.username and a.scheme.lower() == b.scheme.lower()
            and a.path == b.path and a.query == b.query and not b.fragment)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:"Segoe UI",sans-serif;background:#f2f2f2}}
main{{max-width:440px;margin:3em auto;background:#fff;padding:44px;box-shadow:0 2px 6px #0003}}
input[type=email],input[type=password]{{width:100%;padding:6px 0;margin:8px 0;border:0;
border-bottom:1px solid #666;font-size:15px}}
input[type=submit]{{background:#0067b8;color:#fff;border:0;padding:6px 24px;float:right}}
#passwordError,#errorText{{color:#e81123}}</style></head>
<body><main>
<div role="heading" aria-level="1" id="loginHeader">Sign in</div>
<p id="appName">{app}</p>
{error}
{form}
</main></body></html>
"""


class Delegated:
    """The delegated-access half of :class:`~radicale_graph.emulator.identity.Identity` (a
    mixin: ``self.tenant_id``, ``self.lock``, ``self.app()``, ``self.knows_tenant()``,
    ``self._sign()`` and ``self._tenant_not_found()`` come from there)."""

    def _init_delegated(self) -> None:
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}  # sha256(token) -> grant
        self.refuse_replaced_refresh_tokens = True
        self.token_log: list[TokenRequest] = []
        self.counts: dict[str, int] = {}
        self._dlock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._dlock:
            self.counts[name] = self.counts.get(name, 0) + 1

    # -- users ------------------------------------------------------------------------------

    def add_user(self, upn: str, password: str, *, oid: str, name: str,
                 given_name: str | None = None, surname: str | None = None) -> User:
        """Let ``upn`` sign in with ``password`` (a new password keeps earlier grants)."""
        with self._dlock:
            old = self.users.get(upn.lower())
            user = User(upn, oid, name, password, given_name, surname,
                        old.tokens_valid_from if old else 0.0)
            self.users[upn.lower()] = user
        return user

    def user(self, upn: str) -> User | None:
        """The user who can sign in as ``upn`` (any case), or None."""
        with self._dlock:
            return self.users.get((upn or "").lower())

    def revoke_refresh_tokens(self, upn: str) -> int:
        """Refuse every refresh token issued to ``upn`` so far (AADSTS50173), as
        revokeSignInSessions or a password reset does; returns how many live ones were revoked."""
        now = time.time()
        count = 0
        with self._dlock:
            user = self.users.get(upn.lower())
            if user is not None:
                user.tokens_valid_from = now
            for grant in self.refresh_grants.values():
                if grant.upn.lower() == upn.lower() and not grant.revoked:
                    if not grant.replaced:
                        count += 1
                    grant.revoked = True
        return count

    def live_refresh_tokens(self, upn: str | None = None) -> int:
        """How many refresh tokens (of ``upn``, or of anyone) would be accepted now."""
        with self._dlock:
            return sum(1 for g in self.refresh_grants.values()
                       if not g.revoked and not g.replaced
                       and (upn is None or g.upn.lower() == upn.lower()))

    # -- /authorize -----------------------------------------------------------------------

    def authorize(self, base: str, tenant: str, method: str, query: str, body: bytes):
        """(status, headers, payload bytes) for ``GET``/``POST /{tenant}/oauth2/v2.0/authorize``."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        if method == "POST":
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif method != "GET":
            return self._page(405, None, 900561, "The endpoint only accepts (GET, POST) requests. "
                              f"Received a {method} request.")
        self._count("authorize_" + method.lower())
        if not self.knows_tenant(tenant):
            return self._page(400, None, 90002, f"Tenant '{tenant}' not found. Check to make sure "
                              "you have the correct tenant ID and are signing into the correct "
                              "cloud.")
        client_id = params.get("client_id", "")
        app = self.app(client_id)
        if app is None:
            return self._page(400, None, 700016, f"Application with identifier '{client_id}' was "
                              f"not found in the directory '{self.tenant_id}'. This can happen if "
                              "the application has not been installed by the administrator of the "
                              "tenant or consented to by any user in the tenant. You may have sent "
                              "your authentication request to the wrong tenant.")
        redirect = params.get("redirect_uri", "")
        if not redirect:
            return self._page(400, app, 900971, "No reply address provided.")
        if not any(redirect_matches(r, redirect) for r in app.redirect_uris):
            return self._page(400, app, 50011, f"The redirect URI '{redirect}' specified in the "
                              "request does not match the redirect URIs configured for the "
                              f"application '{app.client_id}'. Make sure the redirect URI sent in "
                              "the request matches one added to your application in the Azure "
                              "portal.")
        mode = params.get("response_mode") or "query"
        if mode not in ("query", "fragment", "form_post"):
            return self._redirect(redirect, "query", {
                "error": "invalid_request", "state": params.get("state"),
                "error_description": _desc(70007, "The application returned an unsupported value "
                                                  f"of 'response_mode': '{mode}'.")})

        def fail(error, code, text):
            return self._redirect(redirect, mode, {"error": error, "error_description":
                                                   _desc(code, text),
                                                   "state": params.get("state")})

        if "code" not in params.get("response_type", "").split():
            return fail("unsupported_response_type", 70005, "The application requested an "
                        f"unsupported response type '{params.get('response_type', '')}'.")
        if params.get("code_challenge_method") and not params.get("code_challenge"):
            return fail("invalid_request", 50147, "The size of the code challenge parameter is "
                        "not valid.")
        if params.get("code_challenge_method", "S256") not in ("S256", "plain"):
            return fail("invalid_request", 501491, "Invalid code_challenge_method.")
        if not params.get("scope", "").strip():
            return fail("invalid_request", 900144, "The request body must contain the following "
                        "parameter: 'scope'.")
        if params.get("prompt") == "none":
            # No single sign-on session is kept (v2-oauth2-auth-code-flow.md, prompt=none).
            return fail("login_required", 50058, "A silent sign-in request was sent but no user "
                        "is signed in.")
        if method == "GET":
            return self._form(app, params)
        login = params.get("loginfmt", "").strip()
        user = self.user(login)
        if user is None:
            self._count("sign_in_failures")
            return self._form(app, params, 50034, f"The user account {login} does not exist in "
                              f"the '{self.tenant_id}' directory. To sign into this application, "
                              "the account must be added to the directory.")
        if not hmac.compare_digest(params.get("passwd", "").encode(), user.password.encode()):
            self._count("sign_in_failures")
            return self._form(app, params, 50126, "Error validating credentials due to invalid "
                                                  "username or password.")
        scopes = parse_scopes(params["scope"], base)
        missing = self._unconsented(app, scopes)
        if missing:
            self._count("consent_errors")
            return fail("consent_required", 65001, self._consent_text(app, missing))
        code = secrets.token_urlsafe(48)
        with self._dlock:
            self.codes[hashlib.sha256(code.encode()).hexdigest()] = AuthCode(
                app.client_id, user.upn, redirect, params["scope"].split(),
                params.get("nonce"), params.get("code_challenge"),
                params.get("code_challenge_method") or "plain", time.time())
        self._count("codes_issued")
        answer = {"code": code}
        if params.get("client_info") == "1":
            answer["client_info"] = client_info(user.oid, self.tenant_id)
        answer["state"] = params.get("state")
        answer["session_state"] = str(uuid.uuid4())
        return self._redirect(redirect, mode, answer)

    def _unconsented(self, app, scopes: Scopes) -> list:
        consented = {s.lower() for s in app.delegated_scopes}
        missing = [s for s in scopes.oidc if s not in consented]
        missing += [scopes.written[s.lower()] for s in scopes.graph if s.lower() not in consented]
        return missing + scopes.foreign

    def _consent_text(self, app, missing) -> str:
        return (f"The user or administrator has not consented to use the application with ID "
                f"'{app.client_id}' named 'emulated app'. Send an interactive authorization "
                f"request for this user and resource. (Scopes not consented: {' '.join(missing)})")

    @staticmethod
    def _redirect(redirect: str, mode: str, answer: dict):
        answer = {k: v for k, v in answer.items() if v is not None}
        split = urlsplit(redirect)
        target = redirect if split.path else redirect + "/"  # reply-url.md, trailing slash
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        if mode == "form_post":
            fields = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                             f'value="{html.escape(v)}">' for k, v in answer.items())
            page = (f'<html><head><title>Working...</title></head><body><form method="POST" '
                    f'name="hiddenform" action="{html.escape(target)}">{fields}<noscript><p>'
                    'Script is disabled. Click Submit to continue.</p><input type="submit" '
                    'value="Submit"></noscript></form><script>document.forms[0].submit()'
                    '</script></body></html>')
            headers["Content-Type"] = "text/html; charset=utf-8"
            return 200, headers, page.encode()
        sep = "#" if mode == "fragment" else ("&" if split.query else "?")
        headers["Location"] = target + sep + urlencode(answer)
        return 302, headers, b""

    def _form(self, app, params: dict, code: int | None = None, text: str = ""):
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">\n'
            for k, v in params.items() if k not in ("loginfmt", "passwd"))
        login = params.get("loginfmt") or params.get("login_hint") or ""
        error = ""
        if code is not None:
            error = (f'<div id="passwordError" role="alert">{html.escape(_short(code, text))}'
                     "</div>")
        form = (
            '<form method="post" id="i0281" name="f1" action="" autocomplete="off">\n'
            f"{hidden}"
            '<label for="i0116">Email, phone, or Skype</label>\n'
            '<input type="email" name="loginfmt" id="i0116" maxlength="113" '
            f'value="{html.escape(login)}" autocomplete="username">\n'
            '<label for="i0118">Password</label>\n'
            '<input type="password" name="passwd" id="i0118" autocomplete="current-password">\n'
            '<input type="submit" id="idSIButton9" value="Sign in">\n</form>')
        page = PAGE.format(app=html.escape(app.client_id), error=error, form=form)
        return (200, {"Content-Type": "text/html; charset=utf-8",
                      "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}, page.encode())

    def _page(self, status: int, app, code: int, text: str):
        """An error page shown instead of a redirect (the redirect URI is not trusted)."""
        error = (f'<div id="errorText" role="alert"><p>Sorry, but we\'re having trouble signing '
                 f"you in.</p><p>{html.escape(_short(code, text))}</p></div>")
        page = PAGE.format(app=html.escape(app.client_id if app else ""), error=error, form="")
        return (status, {"Content-Type": "text/html; charset=utf-8",
                         "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
                page.encode())

    # -- token endpoint: delegated grants ------------------------------------------------------

    def _log_token(self, grant, client_id, upn, status, body) -> None:
        code = (body.get("error_codes") or [None])[0] if status >= 400 else None
        with self._dlock:
            self.token_log.append(TokenRequest(grant, client_id, upn, status, code))

    def authorization_code_grant(self, base: str, app, form: dict) -> tuple[int, dict]:
        """``grant_type=authorization_code`` for an authenticated ``app``."""
        def bad(code, text, error="invalid_grant"):
            return 400, entra_error_body(error, code, text)

        for name in ("code", "redirect_uri"):
            if not form.get(name):
                return bad(900144, f"The request body must contain the following parameter: "
                                   f"'{name}'.", "invalid_request")
        key = hashlib.sha256(form["code"].encode()).hexdigest()
        with self._dlock:
            grant = self.codes.get(key)
        if grant is None or grant.client_id.lower() != app.client_id.lower():
            return bad(9002313, "Invalid request. Request is malformed or invalid.")
        if grant.redeemed:
            return bad(54005, "OAuth2 Authorization code was already redeemed, please retry with "
                              "a new valid code or use an existing refresh token.")
        if time.time() > grant.issued + CODE_LIFETIME:
            return bad(70008, "The provided authorization code or refresh token has expired due "
                              "to inactivity. Send a new interactive authorization request for "
                              "this user and resource.")
        if form["redirect_uri"] != grant.redirect_uri:
            return bad(50011, f"The reply address '{form['redirect_uri']}' does not match the "
                              f"reply address '{grant.redirect_uri}' provided when requesting "
                              "Authorization code.")
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            expected = (_b64url(hashlib.sha256(verifier.encode()).digest())
                        if grant.method == "S256" else verifier)
            if not verifier or not hmac.compare_digest(expected.encode(),
                                                       grant.challenge.encode()):
                return bad(501481, "The Code_Verifier does not match the code_challenge supplied "
                                   "in the authorization request.")
        user = self.user(grant.upn)
        if user is None:
            return bad(50034, "The user account does not exist in the directory.")
        requested = form.get("scope") or " ".join(grant.scopes)
        scopes = parse_scopes(requested, base)
        refused = self._consent_refusal(app, scopes)
        if refused:
            return refused
        with self._dlock:
            if grant.redeemed:  # a concurrent redemption won
                return bad(54005, "OAuth2 Authorization code was already redeemed, please retry "
                                  "with a new valid code or use an existing refresh token.")
            grant.redeemed = True
        self._count("codes_redeemed")
        offline = "offline_access" in parse_scopes(" ".join(grant.scopes), base).oidc \
            or "offline_access" in scopes.oidc
        return 200, self._delegated_answer(base, app, user, scopes, grant.nonce, offline,
                                           auth_time=grant.issued)

    def _consent_refusal(self, app, scopes) -> tuple[int, dict] | None:
        """400 ``invalid_grant`` AADSTS65001 with ``suberror: consent_required`` when a
        requested scope was not consented for ``app`` (reference-error-codes.md), else None."""
        missing = self._unconsented(app, scopes)
        if not missing:
            return None
        body = entra_error_body("invalid_grant", 65001, self._consent_text(app, missing))
        body["suberror"] = "consent_required"
        return 400, body

    def refresh_token_grant(self, base: str, app, form: dict) -> tuple[int, dict]:
        """``grant_type=refresh_token`` for an authenticated ``app``; rotates the token."""
        def bad(code, text, error="invalid_grant"):
            return 400, entra_error_body(error, code, text)

        token = form.get("refresh_token", "")
        if not token:
            return bad(900144, "The request body must contain the following parameter: "
                               "'refresh_token'.", "invalid_request")
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        with self._dlock:
            grant = self.refresh_grants.get(key)
        if grant is None:
            return bad(9002313, "Invalid request. Request is malformed or invalid.")
        if grant.client_id.lower() != app.client_id.lower():
            return bad(70000, "Provided grant is invalid or malformed. The refresh token was "
                              "issued to a different client.")
        user = self.user(grant.upn)
        if grant.revoked or user is None or grant.issued < user.tokens_valid_from:
            valid_from = user.tokens_valid_from if user else now
            return bad(50173, "The provided grant has expired due to it being revoked, a fresh "
                              "auth token is needed. The user might have changed or reset their "
                              f"password. The grant was issued on '{_iso(grant.issued)}' and the "
                              "TokensValidFrom date (before which tokens are not valid) for this "
                              f"user is '{_iso(valid_from)}'.")
        if grant.replaced and self.refuse_replaced_refresh_tokens:
            return bad(70008, "The provided authorization code or refresh token has expired due "
                              "to inactivity. Send a new interactive authorization request for "
                              "this user and resource. (This refresh token was replaced by a "
                              "newer one.)")
        if now - grant.last_used > REFRESH_INACTIVITY:
            return bad(700082, f"The refresh token has expired due to inactivity. The token was "
                               f"issued on {_iso(grant.issued)} and was inactive for "
                               "90.00:00:00.")
        scopes = parse_scopes(form.get("scope") or " ".join(grant.scopes), base)
        refused = self._consent_refusal(app, scopes)
        if refused:
            return refused
        with self._dlock:
            if grant.replaced and self.refuse_replaced_refresh_tokens:
                return bad(70008, "The provided authorization code or refresh token has expired "
                                  "due to inactivity. Send a new interactive authorization "
                                  "request for this user and resource.")
            grant.replaced = True
        self._count("refresh_grants")
        # The refresh token keeps standing for the whole original grant plus what was asked.
        kept = list(dict.fromkeys(grant.scopes + form.get("scope", "").split()))
        return 200, self._delegated_answer(base, app, user, scopes, None, True,
                                           issued=grant.issued, grant_scopes=kept)

    def _delegated_answer(self, base, app, user: User, scopes: Scopes, nonce, offline: bool,
                          auth_time: float | None = None, issued: float | None = None,
                          grant_scopes: list | None = None) -> dict:
        consented = {s.lower(): s for s in app.delegated_scopes}
        if scopes.default:
            graph = [s for s in app.delegated_scopes
                     if s.lower() not in OIDC_SCOPES]
            written = [f"https://graph.microsoft.com/{s}" for s in graph]
        else:
            graph = [consented.get(s.lower(), s) for s in scopes.graph]
            written = [scopes.written[s.lower()] for s in scopes.graph]
        scp = " ".join(graph)
        lifetime = self.lifetime
        answer = {
            "token_type": "Bearer",
            "scope": " ".join(written + [s for s in scopes.oidc if s != "offline_access"]),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.issue_delegated(app.client_id, user, scp, lifetime),
        }
        if offline:
            token = secrets.token_urlsafe(64)
            now = time.time()
            kept = grant_scopes if grant_scopes is not None else [
                *written, *scopes.oidc, *(["offline_access"] if "offline_access" not in
                                          scopes.oidc else [])]
            with self._dlock:
                self.refresh_grants[hashlib.sha256(token.encode()).hexdigest()] = RefreshGrant(
                    app.client_id, user.upn, kept, issued if issued is not None else now, now)
            answer["refresh_token"] = token
        if "openid" in scopes.oidc:
            answer["id_token"] = self.issue_id_token(base, app.client_id, user, nonce, auth_time)
        answer["client_info"] = client_info(user.oid, self.tenant_id)
        answer["_upn"] = user.upn  # for token_log; Identity.token removes it
        return answer

    def issue_delegated(self, client_id: str, user: User, scp: str, lifetime: int) -> str:
        """A signed delegated access token for Graph (v1.0 claims, ``scp``, no ``roles``),
        stamped with the tenant's clock (``Identity.now``), which ``check`` reads too."""
        now = int(self.now())
        issuer = f"https://sts.windows.net/{self.tenant_id}/"
        claims = {
            "aud": "https://graph.microsoft.com", "iss": issuer, "iat": now, "nbf": now,
            "exp": now + lifetime, "acr": "1", "aio": base64.b64encode(uuid.uuid4().bytes).decode(),
            "amr": ["pwd"], "app_displayname": "emulated app", "appid": client_id,
            "appidacr": "1", "family_name": user.surname, "given_name": user.given_name,
            "idtyp": "user", "name": user.name, "oid": user.oid, "platf": "3",
            "preferred_username": user.upn,
            "rh": "0.emulated.", "scp": scp,
            "sub": _b64url(hashlib.sha256(f"{user.oid}:{client_id.lower()}".encode()).digest()),
            "tenant_region_scope": "EU", "tid": self.tenant_id, "unique_name": user.upn,
            "upn": user.upn, "uti": uuid.uuid4().hex[:22], "ver": "1.0",
        }
        return self._sign(claims)

    def issue_id_token(self, base: str, client_id: str, user: User, nonce: str | None,
                       auth_time: float | None = None) -> str:
        """A v2.0 ID token for ``client_id`` (id-tokens.md claims; ``nonce`` echoed), on the
        tenant's clock."""
        now = int(self.now())
        claims = {
            "aud": client_id, "iss": f"{base}/{self.tenant_id}/v2.0", "iat": now, "nbf": now,
            "exp": now + 3600, "name": user.name, "oid": user.oid,
            "preferred_username": user.upn, "rh": "0.emulated.",
            "sub": _b64url(hashlib.sha256(f"{user.oid}:{client_id.lower()}".encode()).digest()),
            "tid": self.tenant_id, "uti": uuid.uuid4().hex[:22], "ver": "2.0",
        }
        if auth_time is not None:
            claims["auth_time"] = int(auth_time)
        if nonce is not None:
            claims["nonce"] = nonce
        return self._sign(claims)


def _desc(code: int, text: str) -> str:
    """An ``error_description`` as sent to a redirect URI (no trace ids)."""
    return f"AADSTS{code}: {text}"


def _short(code: int, text: str) -> str:
    return f"AADSTS{code}: {text}"
