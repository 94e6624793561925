"""The Microsoft identity platform parts a Graph client uses (app-only and delegated).

- OpenID discovery: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (what msal 1.39's
  ``authority.tenant_discovery`` fetches; it reads ``authorization_endpoint``,
  ``token_endpoint``, ``issuer`` and ``device_authorization_endpoint``).
- Token endpoint: ``POST /{tenant}/oauth2/v2.0/token`` with the client credentials grant and a
  client secret or a certificate-signed client assertion (RFC 7523; Entra "certificate
  credentials": ``aud`` = token endpoint, ``iss`` = ``sub`` = client id, header ``x5t#S256``
  (msal >= 1.35 with PS256) or ``x5t`` (SHA-1, RS256)).
- Refusals use Entra's body and AADSTS codes: 90002 unknown tenant, 700016 unknown client,
  7000215 wrong secret, 7000218 no credential, 700027 assertion key/signature, 700024 expired
  assertion, 700021 assertion issuer, 1002012 scope without ``/.default``.
- Delegated access (authorization code flow with PKCE, refresh tokens, sign-in page, consent
  errors): :mod:`.delegated`, mixed into :class:`Identity`.
Access tokens are JWTs (RS256) signed with a key made at start; :meth:`Identity.check` verifies
them for the Graph side. Secrets and tokens never appear in error text.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import threading
import time
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from .delegated import Delegated
from .errors import GraphError, entra_error_body

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ROLES = ["Calendars.ReadWrite", "Place.Read.All"]
LIFETIME = 3599  # seconds, as Entra answers for app tokens


@dataclass
class App:
    """An app registration: its secret, certificates and mailbox scope (None = every mailbox);
    for delegated access its redirect URIs and the delegated permissions consented (admin
    consent for the tenant: OIDC scopes and bare Graph permission names)."""

    client_id: str
    secret: str | None = None
    certificates: list = field(default_factory=list)  # cryptography x509.Certificate
    allowed_mailboxes: set | None = None  # lower-case UPNs
    redirect_uris: list = field(default_factory=list)
    delegated_scopes: list = field(default_factory=list)
    #: Graph application permissions with admin consent: the app-only token's ``roles`` claim
    #: (absent from the token when empty, as Entra issues it).
    roles: list = field(default_factory=lambda: list(ROLES))
    #: RBAC for Applications: Exchange role assignments of the app's service principal,
    #: role name (``"Application Calendars.ReadWrite"``, ``"Application Calendars.Read"``) ->
    #: lower-case UPNs of its management scope (None = the whole organization). They are
    #: independent of Entra consent and add to it (learn.microsoft.com/graph/
    #: auth-limit-mailbox-access; ../shared/notes/graph-calendar-facts.md).
    rbac: dict = field(default_factory=dict)

    def may_access(self, upn: str) -> bool:
        """False when an ApplicationAccessPolicy keeps the app out of the mailbox."""
        return self.allowed_mailboxes is None or upn.lower() in self.allowed_mailboxes

    def calendar_access(self, upn: str, write: bool) -> str | None:
        """None when an app-only token may read (``write``: write) ``upn``'s calendars, else
        why not: ``"policy"`` (the Entra permission is there but an ApplicationAccessPolicy
        excludes the mailbox) or ``"permission"`` (neither the token's roles nor an RBAC for
        Applications assignment in scope grant it)."""
        wanted = {"calendars.readwrite"} if write else {"calendars.read", "calendars.readwrite"}
        if wanted & {r.lower() for r in self.roles}:
            if self.may_access(upn):
                return None
            refused = "policy"
        else:
            refused = "permission"
        for role, scope in self.rbac.items():
            name = role.lower().removeprefix("application ")
            if name in wanted and (scope is None or upn.lower() in scope):
                return None
        return refused


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Identity(Delegated):
    """One Entra tenant: registered apps, users who sign in, discovery document, token issuance
    and checking. ``lifetime``: seconds a delegated access token lives (Entra answers 3599;
    app-only tokens always get 3599)."""

    def __init__(self, tenant_id: str, domains: tuple[str, ...] = ()):
        self.tenant_id = tenant_id
        self.domains = {d.lower() for d in domains}
        self.apps: dict[str, App] = {}
        self.lock = threading.Lock()
        self.lifetime = LIFETIME
        #: Seconds the tenant's clock is ahead of this machine's (negative: behind): token
        #: times (iat, nbf, exp) and Graph's ``Date`` header follow it, to test clock checks.
        self.clock_offset = 0.0
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self._init_delegated()

    # -- apps -----------------------------------------------------------------------------

    def register_app(self, client_id: str, *, secret: str | None = None,
                     certificate_pem: str | bytes | None = None,
                     allowed_mailboxes=None, redirect_uris=None,
                     delegated_scopes=None, roles=None, rbac=None) -> App:
        """Register (or replace) an app; ``allowed_mailboxes`` None means no access policy.
        ``redirect_uris``: where /authorize may send codes; ``delegated_scopes``: the delegated
        permissions consented (a space-separated string or a list; Graph permissions bare).
        ``roles``: application permissions consented (None: :data:`ROLES`); ``rbac``: RBAC for
        Applications assignments, role name -> mailboxes in scope (None: organization)."""
        certs = []
        if certificate_pem:
            pem = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
            certs.append(x509.load_pem_x509_certificate(pem))
        scope = None if allowed_mailboxes is None else {m.lower() for m in allowed_mailboxes}
        if isinstance(delegated_scopes, str):
            delegated_scopes = delegated_scopes.split()
        app = App(client_id, secret, certs, scope, list(redirect_uris or []),
                  list(delegated_scopes or []), list(ROLES if roles is None else roles),
                  {name: None if box is None else {m.lower() for m in box}
                   for name, box in (rbac or {}).items()})
        with self.lock:
            self.apps[client_id.lower()] = app
        return app

    def app(self, client_id: str) -> App | None:
        """The registered app, or None."""
        with self.lock:
            return self.apps.get((client_id or "").lower())

    def knows_tenant(self, tenant: str) -> bool:
        """True for the tenant id or one of its domains."""
        return tenant.lower() == self.tenant_id.lower() or tenant.lower() in self.domains

    # -- discovery --------------------------------------------------------------------------

    def openid_configuration(self, base: str, tenant: str) -> tuple[int, dict]:
        """(status, body) of the v2.0 OpenID Provider Metadata for ``tenant``."""
        if not self.knows_tenant(tenant):
            return 400, self._tenant_not_found(tenant, "invalid_tenant")
        root = f"{base}/{self.tenant_id}"
        return 200, {
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                                 "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                                 "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": f"{base}/{tenant}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def jwks(self) -> dict:
        """The JSON Web Key Set holding the access-token signing key."""
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self._kid, "use": "sig"})
        return {"keys": [jwk]}

    # -- token endpoint -----------------------------------------------------------------------

    def _tenant_not_found(self, tenant: str, error: str) -> dict:
        return entra_error_body(
            error, 90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud. Check with your subscription administrator, this "
            "may happen if there are no active subscriptions for the tenant.",
        )

    def token(self, base: str, tenant: str, form: dict[str, str]) -> tuple[int, dict]:
        """(status, body) for a token request; ``form`` is the decoded request body."""
        if not self.knows_tenant(tenant):
            return 400, self._tenant_not_found(tenant, "invalid_request")
        grant = form.get("grant_type", "")
        status, body = self._token(base, tenant, form, grant)
        if grant in ("authorization_code", "refresh_token"):
            self._log_token(grant, form.get("client_id", ""), body.pop("_upn", None), status, body)
        body.pop("_upn", None)
        return status, body

    def _token(self, base: str, tenant: str, form: dict, grant: str) -> tuple[int, dict]:
        if grant not in ("client_credentials", "authorization_code", "refresh_token"):
            return 400, entra_error_body(
                "unsupported_grant_type", 70003,
                f"The app requested an unsupported grant type '{grant}'.")
        client_id = form.get("client_id", "")
        if not client_id:
            return 400, entra_error_body(
                "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_id'.")
        app = self.app(client_id)
        if app is None:
            return 400, entra_error_body(
                "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.")
        if form.get("client_assertion"):
            refused = self._check_assertion(app, form, f"{base}/{tenant}/oauth2/v2.0/token")
            method = "2"
        elif form.get("client_secret") is not None:
            refused = None
            if app.secret is None or not hmac.compare_digest(
                    form["client_secret"].encode(), app.secret.encode()):
                refused = (401, entra_error_body(
                    "invalid_client", 7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{app.client_id}'."))
            method = "1"
        else:
            refused = (401, entra_error_body(
                "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'."))
            method = ""
        if refused:
            return refused
        if grant == "authorization_code":
            return self.authorization_code_grant(base, app, form)
        if grant == "refresh_token":
            return self.refresh_token_grant(base, app, form)
        scopes = form.get("scope", "").split()
        if not scopes or any(not s.endswith("/.default") for s in scopes):
            return 400, entra_error_body(
                "invalid_scope", 1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).")
        resource = scopes[0][: -len("/.default")].rstrip("/")
        # The emulator is also the Graph resource at its own origin (as a national cloud's
        # Graph host is, e.g. https://graph.microsoft.us/.default).
        if resource not in (GRAPH_RESOURCE, GRAPH_APP_ID, base.rstrip("/")):
            return 400, entra_error_body(
                "invalid_resource", 500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.tenant_id}. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You "
                "might have sent your authentication request to the wrong tenant.")
        return 200, {
            "token_type": "Bearer",
            "expires_in": LIFETIME,
            "ext_expires_in": LIFETIME,
            "access_token": self.issue(app.client_id, method),
        }

    def _check_assertion(self, app: App, form: dict, audience: str):
        def refuse(code, text, status=401):
            return status, entra_error_body("invalid_client", code, text)

        if form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return refuse(
                700025, "Client is public so neither 'client_assertion' nor 'client_secret' "
                "should be presented.", 400)
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return refuse(50027, "JWT token is invalid or malformed.", 400)
        if header.get("alg") not in ("RS256", "PS256"):
            return refuse(5002738, f"Invalid JWT token. '{header.get('alg')}' is not a supported "
                                   "signature algorithm.", 400)
        thumb = None
        cert = None
        try:
            if header.get("x5t#S256"):
                thumb = _b64url_decode(header["x5t#S256"]).hex().upper()
                cert = next((c for c in app.certificates
                             if c.fingerprint(hashes.SHA256()).hex().upper() == thumb), None)
            elif header.get("x5t"):
                thumb = _b64url_decode(header["x5t"]).hex().upper()
                cert = next((c for c in app.certificates
                             if c.fingerprint(hashes.SHA1()).hex().upper() == thumb), None)
        except (ValueError, TypeError):
            cert = None
        portal = (
            "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see "
            f"configured keys for app Id '{app.client_id}'. Review the documentation at "
            "https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding "
            "service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?"
            "view=graph-rest-1.0&tabs=http to build a query request URL, such as "
            f"'https://graph.microsoft.com/beta/applications/{app.client_id}'"
        )
        if cert is None:
            return refuse(700027, "Client assertion contains an invalid signature. [Reason - The "
                                  f"key was not found., Thumbprint of key used by client: "
                                  f"'{thumb or ''}', {portal}].")
        found = (f"Found key 'Start={cert.not_valid_before_utc:%m/%d/%Y %H:%M:%S}, "
                 f"End={cert.not_valid_after_utc:%m/%d/%Y %H:%M:%S}'")
        now = dt.datetime.now(dt.UTC)
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            return refuse(700027, "Client assertion contains an invalid signature. [Reason - The "
                                  f"key used is expired., Thumbprint of key used by client: "
                                  f"'{thumb}', {found}].")
        try:
            claims = jwt.decode(
                assertion, cert.public_key(), algorithms=["RS256", "PS256"], audience=audience,
                options={"require": ["exp", "aud", "iss", "sub"]}, leeway=300,
            )
        except jwt.ExpiredSignatureError:
            return refuse(700024, "Client assertion is not within its valid time range. Current "
                                  f"time: {now:%Y-%m-%dT%H:%M:%S.%fZ}.")
        except jwt.InvalidAudienceError:
            return refuse(700027, "Client assertion failed signature validation. [Reason - The "
                                  f"audience is not the token endpoint '{audience}'.]")
        except jwt.InvalidSignatureError:
            return refuse(700027, "Client assertion contains an invalid signature. [Reason - Key "
                                  "was found, but use of the key to verify the signature "
                                  f"failed., Thumbprint of key used by client: '{thumb}', "
                                  f"{found}].")
        except jwt.PyJWTError:
            return refuse(50027, "JWT token is invalid or malformed.", 400)
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id \
                or form.get("client_id", "").lower() != app.client_id.lower():
            return refuse(700021, "Client assertion application identifier doesn't match "
                                  "'client_id' parameter. Review the documentation at "
                                  "https://docs.microsoft.com/en-us/azure/active-directory/"
                                  "develop/active-directory-certificate-credentials .")
        return None

    # -- access tokens ---------------------------------------------------------------------

    def issue(self, client_id: str, method: str = "1", lifetime: int = LIFETIME) -> str:
        """A signed app-only access token for Graph (v1.0 token claims); ``roles`` holds the
        app's consented application permissions and is left out when there are none."""
        now = int(self.now())
        app = self.app(client_id)
        roles = list(ROLES) if app is None else list(app.roles)
        issuer = f"https://sts.windows.net/{self.tenant_id}/"
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id.lower()}"))
        claims = {
            "aud": GRAPH_RESOURCE, "iss": issuer, "iat": now, "nbf": now, "exp": now + lifetime,
            "aio": base64.b64encode(uuid.uuid4().bytes).decode(), "app_displayname": "emulated app",
            "appid": client_id, "appidacr": method, "idp": issuer, "idtyp": "app", "oid": oid,
            "rh": "0.emulated.", "roles": roles, "sub": oid, "tenant_region_scope": "EU",
            "tid": self.tenant_id, "uti": uuid.uuid4().hex[:22], "ver": "1.0",
        }
        if not roles:
            del claims["roles"]
        return self._sign(claims)

    def now(self) -> float:
        """The tenant's clock: local time plus :attr:`clock_offset`."""
        return time.time() + self.clock_offset

    def _sign(self, claims: dict) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256",
                          headers={"kid": self._kid, "x5t": self._kid})

    def check(self, authorization: str | None) -> dict:
        """Claims of the bearer token in an Authorization header.

        Raises GraphError 401 InvalidAuthenticationToken for a missing, malformed, foreign,
        wrongly signed or expired token (the token itself is never echoed).
        """
        def refuse(message):
            return GraphError(401, "InvalidAuthenticationToken", message)

        if not authorization or not authorization.strip():
            raise refuse("Access token is empty.")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise refuse("Access token is empty.")
        try:
            claims = jwt.decode(
                token.strip(), self._key.public_key(), algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, GRAPH_APP_ID],
                options={"require": ["exp", "tid"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
            # Times are checked against the tenant's clock (clock_offset), not this machine's.
            if float(claims["exp"]) <= self.now():
                raise jwt.ExpiredSignatureError
        except jwt.ExpiredSignatureError:
            raise refuse("Lifetime validation failed, the token is expired.") from None
        except jwt.InvalidAudienceError:
            raise refuse("Access token validation failure. Invalid audience.") from None
        except jwt.InvalidSignatureError:
            raise refuse("Access token validation failure. Invalid signature.") from None
        except jwt.DecodeError:
            raise refuse("IDX14100: JWT is not well formed, there are no dots (.).\nThe token "
                         "needs to be in JWS or JWE Compact Serialization Format.") from None
        except jwt.PyJWTError:
            raise refuse("Access token validation failure.") from None
        if claims.get("tid") != self.tenant_id:
            raise refuse("Access token validation failure. Invalid audience.")
        return claims
