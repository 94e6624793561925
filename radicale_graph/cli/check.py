"""``radicale-graph check --config FILE``: is the tenant set up for this configuration?

One line per check, ``ok``, ``warn`` or ``FAIL`` then the subject and what was found; on a
failure the cause and the command that fixes it. A summary line ends the report. Exit status 0
when nothing failed (warnings pass), 1 otherwise. Nothing secret is printed: no secret, no
token, no key.

Checks, in order:

* ``config``: the file loads and the ``[storage]`` options are complete
  (:func:`radicale_graph.storage.config.read`).
* ``state folder``: exists (or can be made) and a file can be written in it: the sync state
  and, in delegated mode, the encrypted token cache and app passwords live there.
* ``token cache`` (delegated mode): the cache file decrypts with the configured key.
* ``token``: an app-only token is granted (client-credentials flow) and its application
  permissions are listed: the ``roles`` claim of the access token (Entra "access token claims
  reference", claim ``roles``: "the set of permissions exposed by your application that the
  requesting application ... has been given permission to call"; for app-only tokens these
  are the application permissions with admin consent). The token is decoded without verifying
  it, for diagnosis only: Microsoft documents Graph tokens as opaque to clients, so a token
  that does not decode is a warning, not a failure.
* ``mailbox M`` / ``room M`` (mode app or both): reading ``GET /users/{M}/calendar``
  (api/calendar-get.md) and writing. Graph has no dry-run for writes, so the write probe
  creates an event and deletes it again: ``POST /users/{M}/calendar/events`` (api/user-post-
  events.md) of a private, free, one-minute event on 2000-01-01 without attendees (no
  invitation is sent, nothing shows in any current view, a room's booking is untouched), with
  a fresh ``transactionId`` so a retried POST cannot create a second one (resources/event.md,
  ``transactionId``), then ``DELETE /users/{M}/events/{id}`` (api/event-delete.md; Exchange
  moves it to Deleted Items). The output says so. On ``403 ErrorAccessDenied`` the line names
  what is missing, from the token's roles: with a tenant-wide ``Calendars.*`` permission the
  mailbox is outside an ApplicationAccessPolicy (Graph says "Access to OData is disabled";
  concepts/auth-limit-mailbox-access.md); without one, no RBAC for Applications assignment
  covers it (learn.microsoft.com/exchange/permissions-exo/application-rbac). The fix is the
  Exchange Online PowerShell command, and the cmdlet that confirms it
  (``Test-ApplicationAccessPolicy``, ``Test-ServicePrincipalAuthorization``).
* ``clock``: this machine's clock against Graph's ``Date`` response header (RFC 9110 section
  6.6.1) and the token's ``iat``/``nbf``/``exp``. Over five minutes fails: that is the clock
  skew Microsoft's token validation tolerates by default (Microsoft.IdentityModel
  ``TokenValidationParameters.DefaultClockSkew``), beyond it certificate client assertions,
  which carry this machine's time, are refused (AADSTS700024), and calendar windows computed
  here are off. Over 30 seconds warns.
* ``redirect URI`` (mode delegated or both): ``<public_url>/.signin/callback`` is registered
  on the app. The authorize endpoint is asked with ``prompt=none`` (v2-oauth2-auth-code-flow.md):
  for a registered URI the identity platform redirects back to it with ``login_required``
  (no one is signed in); an unregistered one is refused on its own page with AADSTS50011
  (reference-error-codes.md) and never redirected to.
* ``delegated scopes``: the configured scopes include a calendar permission and
  ``offline_access`` (refresh tokens, v2-permissions-and-consent.md). Whether an admin
  consented to them is only known after a sign-in (AADSTS65001 there), so the line says how
  to grant it.

* ``notifications`` (when ``[storage] notification_url`` is set): the validation handshake
  Graph makes when a subscription is created: ``POST <notification_url>?validationToken=...``
  must answer 200 ``text/plain`` with the decoded token within 10 seconds
  (concepts/change-notifications-delivery-webhooks.md, "Notification endpoint validation").
  The running gateway answers it, so start ``serve`` first; this machine reaching the URL does
  not prove that Microsoft's cloud can.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests

#: Skew (seconds) beyond which tokens and assertions are refused: Microsoft.IdentityModel's
#: default clock skew of five minutes.
MAX_SKEW = 300.0
WARN_SKEW = 30.0
CALENDAR_ROLES = ("Calendars.Read", "Calendars.ReadWrite")
PROBE_DAY = "2000-01-01"
CALLBACK = "/.signin/callback"


@dataclass(frozen=True)
class Result:
    """One check: ``level`` ``ok``, ``warn`` or ``FAIL``; ``subject`` (``token``, ``mailbox
    alice@contoso.com``) and ``text``."""

    level: str
    subject: str
    text: str

    @property
    def failed(self) -> bool:
        return self.level == "FAIL"

    def line(self) -> str:
        return f"{self.level:<4} {self.subject}: {self.text}"


class Checker:
    """Runs the checks of one configuration, printing each line to ``out`` as it is known."""

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.results: list[Result] = []
        self.graph_dates: list[tuple[float, float]] = []  # (Date header, local time)

    def add(self, level: str, subject: str, text: str) -> Result:
        result = Result(level, subject, text)
        self.results.append(result)
        print(result.line(), file=self.out, flush=True)
        return result

    def summary(self) -> int:
        failed = sum(r.failed for r in self.results)
        warned = sum(r.level == "warn" for r in self.results)
        ok = len(self.results) - failed - warned
        verdict = "all checks passed" if not failed else f"{failed} failed"
        print(f"summary: {len(self.results)} checks, {ok} ok, {warned} warnings, {failed} "
              f"failed: {verdict}", file=self.out, flush=True)
        return 1 if failed else 0

    # -- the run ----------------------------------------------------------------------------

    def run(self, path: str) -> int:
        from ..graph import GraphClient
        from .gateway import StartupError, load_configuration, read_options

        try:
            settings, options = read_options(load_configuration(path))
        except StartupError as exc:
            self.add("FAIL", "config", str(exc))
            return self.summary()
        served = f"{len(options.mailboxes) - len(options.rooms)} mailboxes, " \
                 f"{len(options.rooms)} rooms" if options.app_only else "no app-only mailboxes"
        self.add("ok", "config", f"{path} (mode {options.mode}, {served})")
        self.check_state_folder(options)
        if options.delegated:
            self.check_token_cache(options)
        client = GraphClient(settings)
        try:
            claims = self.check_token(client, settings, options)
            if claims is not None and options.app_only:
                for mailbox in options.mailboxes:
                    self.check_mailbox(client, settings, mailbox, mailbox in options.rooms,
                                       claims)
            if claims is not None:
                self.check_clock(claims)
        finally:
            client.close()
        if options.delegated:
            self.check_redirect_uri(settings, options)
            self.check_delegated_scopes(options)
        if options.notification_url:
            self.check_notifications(options.notification_url, settings)
        return self.summary()

    # -- local checks -----------------------------------------------------------------------

    def check_state_folder(self, options) -> None:
        folder = options.state_folder
        if not folder:
            self.add("ok", "state folder", "not set: sync state is kept in memory and lost at "
                     "each restart (clients then resynchronize)")
            return
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-"):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.add("FAIL", "state folder", f"{folder} is not writable ({reason}); fix: create "
                     "it and give the gateway's user write access (chown/chmod), or set "
                     "[storage] state_folder to a writable folder")
            return
        self.add("ok", "state folder", f"{folder} is writable")

    def check_token_cache(self, options) -> None:
        from ..graph.delegated import EncryptedTokenCache
        from ..storage.storage import TOKEN_CACHE_FILE

        path = os.path.join(options.state_folder, TOKEN_CACHE_FILE)
        try:
            EncryptedTokenCache(path, options.token_cache_key).load()
        except ValueError as exc:
            self.add("FAIL", "token cache", str(exc))
            return
        except OSError as exc:
            self.add("FAIL", "token cache", f"cannot read {path}: {exc.strerror}")
            return
        state = "decrypts with the configured key" if os.path.exists(path) else \
            "not created yet (no one has signed in)"
        self.add("ok", "token cache", f"{path} {state}")

    # -- the token --------------------------------------------------------------------------

    def check_token(self, client, settings, options) -> dict | None:
        from ..graph import AuthError

        before = time.time()
        try:
            token = client._tokens.get_token()
        except AuthError as exc:
            self.add("FAIL", "token", str(exc))
            return None
        after = time.time()
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            self.add("warn", "token", "granted, but the access token is not a readable JWT: its "
                     "roles and times cannot be shown (Graph tokens are opaque to clients)")
            return None
        claims = dict(claims, _before=before, _after=after)
        roles = [str(r) for r in claims.get("roles") or []]
        listed = " ".join(roles) if roles else "none"
        granted = {r.lower() for r in roles}
        if not options.app_only:
            self.add("ok", "token", f"client credentials accepted (roles {listed}; mode "
                     f"{options.mode} reads calendars with the people's own tokens)")
        elif "calendars.readwrite" in granted:
            self.add("ok", "token", f"roles {listed}")
        elif "calendars.read" in granted:
            self.add("ok", "token", f"roles {listed}: read-only (Calendars.Read without "
                     "Calendars.ReadWrite); writes need Calendars.ReadWrite or an RBAC for "
                     "Applications assignment (checked per mailbox below)")
        else:
            self.add("ok", "token", f"roles {listed}: no tenant-wide Calendars application "
                     "permission, as intended with RBAC for Applications; the mailbox checks "
                     "below show whether role assignments cover each mailbox")
        return claims

    # -- mailboxes --------------------------------------------------------------------------

    def check_mailbox(self, client, settings, mailbox: str, room: bool, claims: dict) -> None:
        from ..graph import GraphError

        subject = f"{'room' if room else 'mailbox'} {mailbox}"
        try:
            resp = client.request("GET", f"/users/{mailbox}/calendar", mailbox=mailbox,
                                  operation="read default calendar",
                                  params={"$select": "id,name,canEdit"})
            self._note_date(resp.headers)
        except GraphError as exc:
            self.add("FAIL", subject, self._explain(exc, mailbox, room, claims, False, settings))
            return
        transaction = f"radicale-graph-check-{uuid.uuid4()}"
        probe = {
            "subject": "radicale-graph check (safe to delete)",
            "body": {"contentType": "text",
                     "content": "Created and deleted by 'radicale-graph check' to test write "
                                "access."},
            "start": {"dateTime": f"{PROBE_DAY}T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{PROBE_DAY}T00:01:00", "timeZone": "UTC"},
            "showAs": "free", "sensitivity": "private", "isReminderOn": False,
            "responseRequested": False, "transactionId": transaction,
        }
        try:
            created = client.request("POST", f"/users/{mailbox}/calendar/events",
                                     mailbox=mailbox, operation="create the check's test event",
                                     json=probe)
            self._note_date(created.headers)
        except GraphError as exc:
            self.add("FAIL", subject, "read ok, write refused: "
                     + self._explain(exc, mailbox, room, claims, True, settings))
            return
        event_id = (created.body or {}).get("id", "")
        try:
            client.request("DELETE", f"/users/{mailbox}/events/{event_id}", mailbox=mailbox,
                           operation="delete the check's test event")
        except GraphError as exc:
            self.add("FAIL", subject, f"read ok, created a test event on {PROBE_DAY} but could "
                     f"not delete it ({exc}); delete 'radicale-graph check (safe to delete)' "
                     "by hand")
            return
        self.add("ok", subject, f"read and write (write test: created and deleted a private "
                 f"one-minute event on {PROBE_DAY}, transactionId {transaction}; it stays in "
                 "Deleted Items)")

    def _explain(self, exc, mailbox: str, room: bool, claims: dict, write: bool,
                 settings) -> str:
        """The cause of a refused mailbox call and the command that fixes it."""
        head = f"{exc.status} {exc.code}" if exc.status else exc.code
        if exc.status == 404:
            return (f"{head}: no Exchange Online mailbox {mailbox} in the tenant "
                    "(Graph: " + exc.message + "); fix: correct the address in [storage] "
                    f"{'rooms' if room else 'mailboxes'}")
        if exc.status != 403:
            return str(exc)
        app = settings.client_id
        roles = {str(r).lower() for r in claims.get("roles") or []}
        needed = "Calendars.ReadWrite" if write else "Calendars.Read or Calendars.ReadWrite"
        has_role = ("calendars.readwrite" in roles) if write else bool(
            roles & {r.lower() for r in CALENDAR_ROLES})
        role = "Application Calendars.ReadWrite"
        scope = "<scope holding the mailbox>"
        make_scope = ""
        if room:
            scope = "radicale-graph-rooms"
            make_scope = (f"New-ManagementScope -Name {scope} -RecipientRestrictionFilter "
                          "\"RecipientTypeDetails -eq 'RoomMailbox'\"; ")
        principal = (f"New-ServicePrincipal -AppId {app} -ObjectId "
                     f"{claims.get('oid') or '<enterprise app object id>'} (once); ")
        rbac_fix = (f"fix: {principal}{make_scope}New-ManagementRoleAssignment -App {app} "
                    f"-Role \"{role}\" -CustomResourceScope {scope}; confirm: "
                    f"Test-ServicePrincipalAuthorization -Identity {app} -Resource {mailbox}")
        if has_role or "odata is disabled" in exc.message.lower():
            return (f"{head} — the app's access policy excludes it (the token has tenant-wide "
                    f"{needed}, and an ApplicationAccessPolicy restricts the app to a group "
                    "without this mailbox); fix: add it to the policy's group "
                    f"(Add-DistributionGroupMember -Identity <policy group> -Member {mailbox}) "
                    f"or New-ApplicationAccessPolicy -AppId {app} -PolicyScopeGroupId <group "
                    "holding the mailbox> -AccessRight RestrictAccess; confirm: "
                    f"Test-ApplicationAccessPolicy -Identity {mailbox} -AppId {app} (Granted); "
                    "policy changes can take an hour or more to apply")
        if write and roles & {"calendars.read"}:
            return (f"{head} — the token has Calendars.Read but not Calendars.ReadWrite, and no "
                    f"RBAC for Applications assignment grants writes here; grant the "
                    "application permission Calendars.ReadWrite with admin consent, or "
                    + rbac_fix)
        return (f"{head} — no {needed} in the token and no RBAC for Applications "
                f"assignment of \"{role}\" whose scope holds this mailbox; " + rbac_fix
                + " (assignments can take up to an hour to apply)")

    def _note_date(self, headers) -> None:
        value = headers.get("Date") if headers is not None else None
        if not value:
            return
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        self.graph_dates.append((when.timestamp(), time.time()))

    # -- clock ------------------------------------------------------------------------------

    def check_clock(self, claims: dict) -> None:
        before, after = claims["_before"], claims["_after"]
        seen = []
        if self.graph_dates:
            # Date has whole seconds, truncated: up to one second early.
            skews = [date + 0.5 - local for date, local in self.graph_dates]
            skew = sorted(skews)[len(skews) // 2]
            seen.append(("Graph's Date header", skew))
        iat, nbf = claims.get("iat"), claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > after:
            seen.append(("the token's nbf", nbf - after))
        elif isinstance(iat, (int, float)) and iat > after:
            seen.append(("the token's iat", iat - after))
        elif isinstance(iat, (int, float)) and iat < before - MAX_SKEW:
            seen.append(("the token's iat", iat - before))
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp < before:
            seen.append(("the token's exp (already expired by this clock)", exp - before))
        if not seen:
            self.add("ok", "clock", "no Graph Date header seen; the token's iat/nbf/exp agree "
                     "with this machine's clock")
            return
        source, skew = max(seen, key=lambda item: abs(item[1]))
        way = "behind" if skew > 0 else "ahead of"
        amount = _duration(abs(skew))
        if abs(skew) > MAX_SKEW:
            self.add("FAIL", "clock", f"this machine's clock is {amount} {way} Microsoft's "
                     f"({source}; local {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC); over "
                     "5 minutes, tokens and certificate assertions are refused and time "
                     "windows are off; fix: synchronize the clock with NTP (timedatectl "
                     "set-ntp true, or chrony/ntpd)")
        elif abs(skew) > WARN_SKEW:
            self.add("warn", "clock", f"this machine's clock is {amount} {way} Microsoft's "
                     f"({source}); synchronize it with NTP before it passes 5 minutes")
        else:
            self.add("ok", "clock", f"within {max(1, round(abs(skew)))} s of Microsoft's "
                     f"({source} and the token's iat/nbf)")

    # -- delegated mode ---------------------------------------------------------------------

    def check_redirect_uri(self, settings, options) -> None:
        if not options.public_url:
            self.add("FAIL", "redirect URI", "[storage] public_url is not set, so there is no "
                     f"sign-in redirect URI; fix: set it to the gateway's URL as browsers "
                     f"reach it and register <public_url>{CALLBACK} on the app (Authentication "
                     "> Web)")
            return
        redirect = options.public_url + CALLBACK
        scope = " ".join(["openid", "profile", "offline_access",
                          *[s for s in options.delegated_scopes
                            if s.lower() not in ("openid", "profile", "offline_access")]])
        query = urlencode({"client_id": settings.client_id, "response_type": "code",
                           "redirect_uri": redirect, "response_mode": "query",
                           "scope": scope, "state": "radicale-graph-check", "prompt": "none"})
        url = f"{settings.authority}/oauth2/v2.0/authorize?{query}"
        try:
            resp = requests.get(url, allow_redirects=False, timeout=settings.timeout,
                                verify=settings.ca_file or True)
        except requests.RequestException as exc:
            self.add("FAIL", "redirect URI", f"cannot reach {urlsplit(url).netloc} "
                     f"({type(exc).__name__}); check authority_host, ca_file and the network")
            return
        location = resp.headers.get("Location", "")
        if resp.is_redirect and location.split("?")[0].split("#")[0].rstrip("/") == \
                redirect.rstrip("/"):
            error = parse_qs(urlsplit(location).query).get("error", [""])[0]
            note = f" (answered {error}, as expected with prompt=none)" if error else ""
            self.add("ok", "redirect URI", f"{redirect} is registered on the app{note}")
            return
        text = resp.text
        if "AADSTS50011" in text:
            self.add("FAIL", "redirect URI", f"AADSTS50011 — {redirect} is not a redirect URI "
                     "of the app; fix: Entra admin center > App registrations > "
                     f"{settings.client_id} > Authentication > Add a platform > Web, add "
                     f"{redirect} (exactly; or correct [storage] public_url)")
        elif "AADSTS700016" in text:
            self.add("FAIL", "redirect URI", f"AADSTS700016 — no app {settings.client_id} in "
                     f"tenant {settings.tenant_id}; fix: client_id and tenant_id")
        else:
            code = next((w for w in text.replace("<", " ").replace(":", " ").split()
                         if w.startswith("AADSTS")), f"HTTP {resp.status_code}")
            self.add("FAIL", "redirect URI", f"the authorize endpoint refused {redirect}: "
                     f"{code}")

    def check_delegated_scopes(self, options) -> None:
        scopes = list(options.delegated_scopes)
        low = {s.lower().rsplit("/", 1)[-1] for s in scopes}
        missing = []
        if not low & {"calendars.read", "calendars.readwrite", "calendars.read.shared",
                      "calendars.readwrite.shared"}:
            missing.append("a calendar permission (Calendars.ReadWrite.Shared)")
        if "offline_access" not in low:
            missing.append("offline_access (without it no refresh token: people sign in again "
                           "every hour)")
        listed = " ".join(scopes) or "none"
        if missing:
            self.add("FAIL", "delegated scopes", f"{listed} lacks {' and '.join(missing)}; fix: "
                     "add them to [storage] delegated_scopes and to the app's API permissions "
                     "(Delegated), then Grant admin consent")
            return
        self.add("ok", "delegated scopes", f"{listed} (consent is checked at sign-in: "
                 "AADSTS65001 there means API permissions > Grant admin consent is missing)")


    def check_notifications(self, url: str, settings) -> None:
        token = f"radicale-graph check {uuid.uuid4()}"
        try:
            resp = requests.post(url, params={"validationToken": token}, timeout=10,
                                 headers={"Content-Type": "text/plain; charset=utf-8"},
                                 verify=settings.ca_file or True)
        except requests.RequestException as exc:
            self.add("FAIL", "notifications", f"no answer from {url} within 10 s "
                     f"({type(exc).__name__}); fix: start the gateway (serve) and make "
                     "notification_url reach its /.notifications endpoint over https")
            return
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if resp.status_code == 200 and kind == "text/plain" and resp.text == token:
            self.add("ok", "notifications", f"{url} answers Graph's validation handshake "
                     "(validationToken echoed as text/plain)")
            return
        self.add("FAIL", "notifications", f"{url} answered the validation handshake with "
                 f"{resp.status_code} {kind or 'no Content-Type'}"
                 f"{'' if resp.text == token else ', not the validationToken'}; Graph then "
                 "refuses the subscription; fix: point notification_url at the gateway's "
                 "/.notifications endpoint")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def run_check(path: str, out=None) -> int:
    """``radicale-graph check --config FILE``: print the checks and a summary; return the exit
    status (0 when no check failed)."""
    return Checker(out).run(path)
