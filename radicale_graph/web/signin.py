"""The sign-in page of delegated mode, served by the gateway's application under ``/.signin/``.

* ``GET /.signin/``: a page with a "Sign in with Microsoft" link (``id="signin"``).
* ``GET /.signin/start``: starts msal's authorization code flow (PKCE) and redirects (302) to
  the identity platform; the flow stays on the server, keyed by its ``state``.
* ``GET /.signin/callback?code=…&state=…``: redeems the code, creates an app password and
  shows it once (``id="app-password"``) with the CalDAV URL (``id="caldav-url"``) and the login
  (``id="login"``, the person's UPN); sets the session cookie.
* ``GET /.signin/passwords``: the person's app passwords (name, created, last used; one
  ``<tr id="pw-<id>">`` each), a form to create one (``id="new-name"``, ``id="create"``) and
  one to revoke each (``id="revoke-<id>"``). ``POST /.signin/passwords`` with
  ``action=create&name=…`` or ``action=revoke&id=…`` (and the session's ``csrf``).

Sessions: a random 256-bit id in an HttpOnly, SameSite=Lax cookie (Secure over https), mapped
on the server to the UPN for SESSION_LIFETIME seconds. Plain HTML, no script. Nothing here
logs a code, a token or a password.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from html import escape
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, quote

from ..graph import AuthError
from .app_passwords import AppPasswords

logger = logging.getLogger("radicale_graph.signin")

PREFIX = "/.signin"
COOKIE = "radicale_graph_session"
SESSION_LIFETIME = 3600.0
MAX_FORM = 10000  # bytes of a POSTed form

Response = tuple[int, dict[str, str], bytes]


class SignInPages:
    """The ``/.signin/`` routes. ``tokens`` is the storage's
    :class:`~radicale_graph.graph.delegated.DelegatedTokens`, ``passwords`` the
    :class:`AppPasswords`, ``public_url`` the gateway's URL as browsers reach it ("" = from
    the request's Host)."""

    def __init__(self, tokens, passwords: AppPasswords, public_url: str = "") -> None:
        self.tokens = tokens
        self.passwords = passwords
        self.public_url = public_url.rstrip("/")
        self._sessions: dict[str, tuple[str, str, float]] = {}  # id -> (upn, csrf, expiry)
        self._lock = threading.Lock()

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, environ) -> Response:
        """Answer one request whose path starts with ``/.signin``."""
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        sub = path[len(PREFIX):].rstrip("/") or "/"
        try:
            if sub == "/" and method == "GET":
                return self._index(environ)
            if sub == "/start" and method == "GET":
                return self._start(environ)
            if sub == "/callback" and method == "GET":
                return self._callback(environ)
            if sub == "/passwords" and method == "GET":
                return self._list(environ)
            if sub == "/passwords" and method == "POST":
                return self._post(environ)
            if sub in ("/", "/start", "/callback", "/passwords"):
                return _page(405, "Method not allowed", "<p>Method not allowed.</p>")
            return _page(404, "Not found", "<p>No such page.</p>")
        except AuthError as exc:
            logger.warning("sign-in failed: %s", exc)
            return _page(400, "Sign-in failed",
                         f'<p id="error">{escape(str(exc))}</p>'
                         f'<p><a id="signin" href="{self._base(environ)}{PREFIX}/start">'
                         "Sign in with Microsoft again</a></p>")

    # -- pages -----------------------------------------------------------------------------------
    def _index(self, environ) -> Response:
        base = self._base(environ)
        upn = self._session(environ)
        known = (f'<p>Signed in as <span id="login">{escape(upn)}</span>. '
                 f'<a id="passwords" href="{base}{PREFIX}/passwords">Your app passwords</a></p>'
                 if upn else "")
        return _page(200, "Sign in", f"""{known}
<p>Sign in with your Microsoft 365 account to get an app password for your calendar app
(Thunderbird, Apple Calendar, DAVx5, ...).</p>
<p><a id="signin" href="{base}{PREFIX}/start">Sign in with Microsoft</a></p>""")

    def _start(self, environ) -> Response:
        start = self.tokens.begin(self._redirect_uri(environ))
        return 302, {"Location": start.auth_uri, "Cache-Control": "no-store"}, b""

    def _callback(self, environ) -> Response:
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        upn = self.tokens.complete(query)
        session, csrf = self._new_session(upn)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        _, password = self.passwords.create(upn, f"signed in {stamp}")
        status, headers, body = self._show_password(environ, upn, password)
        headers["Set-Cookie"] = self._cookie(environ, session)
        return status, headers, body

    def _show_password(self, environ, upn: str, password: str) -> Response:
        base = self._base(environ)
        caldav = f"{base}/{quote(upn, safe='@')}/"
        return _page(200, "Your app password", f"""
<p>Use this in your calendar app. It is shown only once: copy it now.</p>
<dl>
<dt>CalDAV URL</dt><dd><code id="caldav-url">{escape(caldav)}</code></dd>
<dt>Login</dt><dd><code id="login">{escape(upn)}</code></dd>
<dt>App password</dt><dd><code id="app-password">{escape(password)}</code></dd>
</dl>
<p><a id="passwords" href="{base}{PREFIX}/passwords">Your app passwords</a></p>""")

    def _list(self, environ) -> Response:
        upn, csrf = self._require(environ)
        if upn is None:
            return self._login_needed(environ)
        base = self._base(environ)
        rows = []
        for p in self.passwords.list(upn):
            state = (f"revoked {_when(p.revoked)}" if p.revoked else
                     f'<form method="post" action="{base}{PREFIX}/passwords">'
                     f'<input type="hidden" name="csrf" value="{csrf}">'
                     f'<input type="hidden" name="action" value="revoke">'
                     f'<input type="hidden" name="id" value="{escape(p.id)}">'
                     f'<button id="revoke-{escape(p.id)}" type="submit">Revoke</button></form>')
            rows.append(f'<tr id="pw-{escape(p.id)}"><td class="name">{escape(p.name)}</td>'
                        f'<td class="created">{_when(p.created)}</td>'
                        f'<td class="last-used">{_when(p.last_used)}</td><td>{state}</td></tr>')
        return _page(200, "Your app passwords", f"""
<p>Signed in as <span id="login">{escape(upn)}</span>.</p>
<table id="app-passwords"><tr><th>Name</th><th>Created</th><th>Last used</th><th></th></tr>
{"".join(rows)}
</table>
<form method="post" action="{base}{PREFIX}/passwords">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="create">
<label>Name <input id="new-name" name="name" value="my phone"></label>
<button id="create" type="submit">Create an app password</button>
</form>""")

    def _post(self, environ) -> Response:
        upn, csrf = self._require(environ)
        if upn is None:
            return self._login_needed(environ)
        form = dict(parse_qsl(_read_body(environ), keep_blank_values=True))
        if not secrets.compare_digest(form.get("csrf", ""), csrf):
            return _page(403, "Refused", "<p>This form is out of date: reload the page.</p>")
        if form.get("action") == "create":
            _, password = self.passwords.create(upn, form.get("name") or "app password")
            logger.info("app password created for %s", upn)
            return self._show_password(environ, upn, password)
        if form.get("action") == "revoke":
            self.passwords.revoke(upn, form.get("id", ""))
            logger.info("app password revoked for %s", upn)
            return 303, {"Location": f"{self._base(environ)}{PREFIX}/passwords"}, b""
        return _page(400, "Bad request", "<p>Unknown action.</p>")

    def _login_needed(self, environ) -> Response:
        return _page(401, "Sign in first",
                     f'<p>Sign in first: <a id="signin" href="{self._base(environ)}{PREFIX}'
                     '/start">Sign in with Microsoft</a></p>')

    # -- sessions ------------------------------------------------------------------------------
    def _new_session(self, upn: str) -> tuple[str, str]:
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._sessions.items() if v[2] < now]:
                del self._sessions[key]
            self._sessions[session] = (upn, csrf, now + SESSION_LIFETIME)
        return session, csrf

    def _require(self, environ) -> tuple[str | None, str]:
        cookie = SimpleCookie()
        try:
            cookie.load(environ.get("HTTP_COOKIE", ""))
        except Exception:
            return None, ""
        morsel = cookie.get(COOKIE)
        if morsel is None:
            return None, ""
        with self._lock:
            entry = self._sessions.get(morsel.value)
        if entry is None or entry[2] < time.monotonic():
            return None, ""
        return entry[0], entry[1]

    def _session(self, environ) -> str | None:
        return self._require(environ)[0]

    def _cookie(self, environ, session: str) -> str:
        secure = "; Secure" if self._base(environ).startswith("https://") else ""
        return (f"{COOKIE}={session}; Path={PREFIX}/; HttpOnly; SameSite=Lax; "
                f"Max-Age={int(SESSION_LIFETIME)}{secure}")

    # -- URLs ----------------------------------------------------------------------------------
    def _base(self, environ) -> str:
        if self.public_url:
            return self.public_url
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or (
            f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}")
        return f"{scheme}://{host}{environ.get('SCRIPT_NAME', '').rstrip('/')}"

    def _redirect_uri(self, environ) -> str:
        return f"{self._base(environ)}{PREFIX}/callback"


def _read_body(environ) -> str:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length).decode("utf-8", "replace") if length else ""


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _page(status: int, title: str, content: str) -> Response:
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - radicale-graph</title>
<meta name="referrer" content="no-referrer"></head>
<body><h1>{escape(title)}</h1>
{content}
</body></html>
""".encode()
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
               "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; "
               "form-action 'self' https:; frame-ancestors 'none'"}
    return status, headers, body
