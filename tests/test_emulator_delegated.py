"""Delegated access on the emulator: sign-in page, auth code flow with PKCE, refresh tokens, /me.

Driven with msal's ``ConfidentialClientApplication`` as the gateway uses it; the browser is
played by ``requests`` (GET the authorize URL, POST the form, read the 302 Location without
fetching it). Behaviour follows docs/emulator.md, "Delegated access".
"""

from __future__ import annotations

import base64
import json
import uuid
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import jwt
import msal
import pytest
import requests

from radicale_graph.emulator import demo

# msal recommends response_mode=form_post; the gateway and most tests use the default (query).
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
ALICE, BOB = demo.USERS
ADAMS = demo.ROOMS[0]
SCOPES = ["Calendars.ReadWrite", "User.Read"]
REDIRECT = "http://localhost:8123/.signin/callback"


class _Form(HTMLParser):
    """The inputs of the sign-in page: name -> value, and the ids seen."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def _parse(page: str) -> _Form:
    form = _Form()
    form.feed(page)
    return form


def _app(emu, client_id=demo.CLIENT_ID, secret=demo.CLIENT_SECRET):
    return msal.ConfidentialClientApplication(
        client_id, client_credential=secret, authority=f"{emu.url}/{demo.TENANT_ID}",
        instance_discovery=False, validate_authority=False, verify=emu.ca_file)


def _browser_sign_in(emu, auth_uri, login=ALICE, password=None):
    """GET the authorize URL, fill the form, POST it; the answer (redirects not followed)."""
    page = requests.get(auth_uri, verify=emu.ca_file, timeout=30)
    assert page.status_code == 200, page.text
    form = _parse(page.text)
    assert {"i0116", "i0118", "idSIButton9"} <= form.ids
    data = dict(form.fields)
    data.update(loginfmt=login, passwd=demo.USER_PASSWORDS[ALICE] if password is None
                else password)
    return requests.post(auth_uri, data=data, verify=emu.ca_file, timeout=30,
                         allow_redirects=False)


def _sign_in(emu, app, scopes=SCOPES, redirect=REDIRECT, login=ALICE, password=None):
    """(flow, auth_response) after a successful sign-in."""
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=redirect)
    answer = _browser_sign_in(emu, flow["auth_uri"], login,
                              demo.USER_PASSWORDS[login] if password is None else password)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(redirect.split("?")[0] + "?")
    return flow, dict(parse_qsl(urlsplit(location).query))


def _tokens(emu, app=None, scopes=SCOPES, login=ALICE):
    app = app or _app(emu)
    flow, response = _sign_in(emu, app, scopes, login=login)
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    return app, result


def _token_post(emu, **form):
    form.setdefault("client_id", demo.CLIENT_ID)
    form.setdefault("client_secret", demo.CLIENT_SECRET)
    return requests.post(f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/token", data=form,
                         verify=emu.ca_file, timeout=30)


def _get(emu, token, path, headers=None, **kwargs):
    return requests.get(emu.graph_url + path, verify=emu.ca_file, timeout=30,
                        headers={"Authorization": f"Bearer {token}", **(headers or {})},
                        **kwargs)


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


# -- the whole flow ---------------------------------------------------------------------------


def test_auth_code_flow_with_msal_then_me_then_silent_refresh(emu):
    app = _app(emu)
    flow, response = _sign_in(emu, app)
    assert set(response) >= {"code", "state", "session_state", "client_info"}
    assert response["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer" and result["expires_in"] == 3599
    assert {"refresh_token", "id_token", "client_info"} <= set(result)
    assert set(result["scope"].split()) >= set(SCOPES)
    # msal checked the nonce; the id token is for the app and names Alice.
    idc = result["id_token_claims"]
    assert idc["aud"] == demo.CLIENT_ID and idc["tid"] == demo.TENANT_ID
    assert idc["iss"] == f"{emu.url}/{demo.TENANT_ID}/v2.0"
    assert idc["preferred_username"] == ALICE and idc["name"] == "Alice Archer"
    assert idc["nonce"]
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info == {"uid": idc["oid"], "utid": demo.TENANT_ID}
    # The access token: delegated, signed like the app-only ones.
    claims = emu.identity.check(f"Bearer {result['access_token']}")
    assert claims["aud"] == "https://graph.microsoft.com" and claims["appid"] == demo.CLIENT_ID
    assert claims["upn"] == ALICE == claims["preferred_username"] and claims["oid"] == idc["oid"]
    assert set(claims["scp"].split()) == {"Calendars.ReadWrite", "User.Read"}
    assert "roles" not in claims and claims["name"] == "Alice Archer"
    assert claims["oid"] == emu.store.mailbox(ALICE).guid

    emu.clear_log()
    me = _get(emu, result["access_token"], "/me")
    assert me.status_code == 200 and me.json()["userPrincipalName"] == ALICE
    cals = _get(emu, result["access_token"], "/me/calendars")
    assert cals.status_code == 200
    assert {"Calendar", "Project Falcon"} <= {c["name"] for c in cals.json()["value"]}
    assert cals.json()["@odata.context"].endswith(f"users('{claims['oid']}')/calendars")
    assert [(e.path, e.mailbox) for e in emu.request_log] == [
        ("/v1.0/me", ALICE), ("/v1.0/me/calendars", ALICE)]

    # Silent: the access token is dropped from msal's cache, the refresh token is used.
    account = app.get_accounts(username=ALICE)[0]
    for entry in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
        app.token_cache.remove_at(entry)
    before = len(emu.identity.token_log)
    silent = app.acquire_token_silent(SCOPES, account=account)
    assert silent and "access_token" in silent, silent
    assert [(t.grant_type, t.status, t.upn) for t in emu.identity.token_log[before:]] == [
        ("refresh_token", 200, ALICE)]
    assert _get(emu, silent["access_token"], "/me/calendar").status_code == 200
    # The first refresh token was replaced by the one msal now holds.
    old = _token_post(emu, grant_type="refresh_token", refresh_token=result["refresh_token"],
                      scope=" ".join(SCOPES))
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    assert old.json()["error_codes"] == [70008]


def test_port_is_ignored_for_loopback_redirect_uris(emu):
    app = _app(emu)
    for uri in ("http://127.0.0.1:5000/.signin/callback", "http://localhost/.signin/callback",
                "http://localhost:1/.signin/callback"):
        flow, response = _sign_in(emu, app, redirect=uri)
        assert "access_token" in app.acquire_token_by_auth_code_flow(flow, response)
    for uri in ("http://localhost:8123/other/callback", "http://localhost:8123/.SIGNIN/callback",
                "https://evil.example/.signin/callback", "http://127.0.0.2/.signin/callback"):
        flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=uri)
        page = requests.get(flow["auth_uri"], verify=emu.ca_file, timeout=30,
                            allow_redirects=False)
        assert page.status_code == 400 and "Location" not in page.headers
        assert "AADSTS50011" in page.text and "i0118" not in page.text


def test_unknown_client_and_missing_redirect_are_shown_on_the_page(emu):
    base = f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/authorize"
    page = requests.get(base, params={"client_id": str(uuid.uuid4()), "response_type": "code",
                                      "redirect_uri": REDIRECT, "scope": "openid"},
                        verify=emu.ca_file, timeout=30, allow_redirects=False)
    assert page.status_code == 400 and "AADSTS700016" in page.text
    page = requests.get(base, params={"client_id": demo.CLIENT_ID, "response_type": "code",
                                      "scope": "openid"},
                        verify=emu.ca_file, timeout=30, allow_redirects=False)
    assert page.status_code == 400 and "AADSTS900971" in page.text


def test_wrong_password_shows_the_page_again_with_aadsts50126(emu):
    flow = _app(emu).initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, login_hint=ALICE)
    page = requests.get(flow["auth_uri"], verify=emu.ca_file, timeout=30)
    assert _parse(page.text).fields["loginfmt"] == ALICE  # login_hint pre-fills the login
    answer = _browser_sign_in(emu, flow["auth_uri"], ALICE, "demo")
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert ("AADSTS50126: Error validating credentials due to invalid username or password."
            in answer.text)
    form = _parse(answer.text)
    assert {"i0116", "i0118", "idSIButton9"} <= form.ids and form.fields["loginfmt"] == ALICE
    assert "demo" not in form.fields.values()  # the password typed is not sent back
    unknown = _browser_sign_in(emu, flow["auth_uri"], "nobody@contoso.com", "x")
    assert unknown.status_code == 200 and "AADSTS50034" in unknown.text
    # Bob signs in with his own password.
    app = _app(emu)
    bob_flow, response = _sign_in(emu, app, login=BOB)
    result = app.acquire_token_by_auth_code_flow(bob_flow, response)
    assert _claims(result["access_token"])["upn"] == BOB


def test_unconsented_scope_redirects_with_consent_required(emu):
    app = _app(emu)
    flow = app.initiate_auth_code_flow(["Mail.Read", "Calendars.ReadWrite"],
                                       redirect_uri=REDIRECT)
    answer = _browser_sign_in(emu, flow["auth_uri"])
    assert answer.status_code == 302
    response = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert response["error"] == "consent_required" and response["state"] == flow["state"]
    assert response["error_description"].startswith(
        "AADSTS65001: The user or administrator has not consented to use the application")
    assert "code" not in response
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert result["error"] == "consent_required"


def test_prompt_none_is_login_required(emu):
    flow = _app(emu).initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, prompt="none")
    answer = requests.get(flow["auth_uri"], verify=emu.ca_file, timeout=30,
                          allow_redirects=False)
    assert answer.status_code == 302
    response = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert response["error"] == "login_required"


# -- the code: PKCE, single use, lifetime, redirect_uri ------------------------------------------


def test_wrong_code_verifier_is_refused_then_reused_code_is_refused(emu):
    app = _app(emu)
    flow, response = _sign_in(emu, app)
    wrong = dict(flow, code_verifier="x" * 43)
    result = app.acquire_token_by_auth_code_flow(wrong, response)
    assert result["error"] == "invalid_grant"
    assert result["error_description"].startswith(
        "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the "
        "authorization request.")
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, response)
    again = app.acquire_token_by_auth_code_flow(flow, response)
    assert again["error"] == "invalid_grant" and again["error_codes"] == [54005]
    assert again["error_description"].startswith(
        "AADSTS54005: OAuth2 Authorization code was already redeemed")


def test_code_expires_after_ten_minutes_and_needs_the_same_redirect_uri(emu):
    app = _app(emu)
    flow, response = _sign_in(emu, app)
    r = _token_post(emu, grant_type="authorization_code", code=response["code"],
                    redirect_uri="http://localhost/.signin/callback",
                    code_verifier=flow["code_verifier"], scope="User.Read")
    assert r.status_code == 400 and r.json()["error_codes"] == [50011]
    for grant in emu.identity.codes.values():
        grant.issued -= 601
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [70008]


def test_code_of_another_app_and_wrong_secret_are_refused(emu):
    app = _app(emu)
    flow, response = _sign_in(emu, app)
    other = str(uuid.uuid4())
    emu.register_app(other, secret="s3cret", redirect_uris=demo.REDIRECT_URIS,
                     delegated_scopes=demo.DELEGATED_SCOPES)
    r = _token_post(emu, client_id=other, client_secret="s3cret", grant_type="authorization_code",
                    code=response["code"], redirect_uri=REDIRECT,
                    code_verifier=flow["code_verifier"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = _token_post(emu, client_secret="wrong", grant_type="authorization_code",
                    code=response["code"], redirect_uri=REDIRECT,
                    code_verifier=flow["code_verifier"])
    assert r.status_code == 401 and r.json()["error_codes"] == [7000215]
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, response)


# -- refresh tokens -----------------------------------------------------------------------------


def test_refresh_token_rotation_new_works_old_refused(emu):
    _, result = _tokens(emu)
    first = _token_post(emu, grant_type="refresh_token", refresh_token=result["refresh_token"],
                        scope="Calendars.ReadWrite offline_access openid")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["refresh_token"] != result["refresh_token"]
    assert set(body) >= {"access_token", "refresh_token", "id_token", "client_info", "scope",
                         "expires_in", "ext_expires_in", "token_type"}
    assert _claims(body["access_token"])["scp"] == "Calendars.ReadWrite"
    assert _get(emu, body["access_token"], "/me/calendar").status_code == 200
    old = _token_post(emu, grant_type="refresh_token", refresh_token=result["refresh_token"])
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    assert old.json()["error_description"].startswith("AADSTS70008:")
    second = _token_post(emu, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert second.status_code == 200
    # Without a scope the grant keeps what was consented at sign-in.
    assert set(_claims(second.json()["access_token"])["scp"].split()) == set(SCOPES)
    # As Microsoft documents (old refresh tokens are not revoked), when switched off:
    emu.identity.refuse_replaced_refresh_tokens = False
    try:
        again = _token_post(emu, grant_type="refresh_token", refresh_token=body["refresh_token"])
        assert again.status_code == 200
    finally:
        emu.identity.refuse_replaced_refresh_tokens = True


def test_refresh_scope_must_be_consented(emu):
    _, result = _tokens(emu)
    r = _token_post(emu, grant_type="refresh_token", refresh_token=result["refresh_token"],
                    scope="Mail.Send")
    assert r.status_code == 400 and r.json()["error_codes"] == [65001]
    assert r.json()["suberror"] == "consent_required"
    # A refresh token is good for any consented permission (v2-oauth2-auth-code-flow.md).
    r = _token_post(emu, grant_type="refresh_token", refresh_token=result["refresh_token"],
                    scope="https://graph.microsoft.com/Place.Read.All")
    assert r.status_code == 200 and _claims(r.json()["access_token"])["scp"] == "Place.Read.All"
    assert r.json()["scope"] == "https://graph.microsoft.com/Place.Read.All"


def test_revoked_refresh_tokens_are_refused_access_tokens_live_on(emu):
    app, result = _tokens(emu)
    _, bobs = _tokens(emu, login=BOB)
    assert emu.revoke_refresh_tokens(ALICE) >= 1
    assert emu.identity.live_refresh_tokens(ALICE) == 0
    r = _token_post(emu, grant_type="refresh_token", refresh_token=result["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.json()["error_codes"] == [50173]
    assert r.json()["error_description"].startswith(
        "AADSTS50173: The provided grant has expired due to it being revoked")
    assert result["refresh_token"] not in r.text
    # msal's silent call reports the same once the access token is gone.
    account = app.get_accounts(username=ALICE)[0]
    for entry in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
        app.token_cache.remove_at(entry)
    silent = app.acquire_token_silent_with_error(SCOPES, account=account)
    assert silent["error"] == "invalid_grant" and silent["error_codes"] == [50173]
    # The access token already issued stays valid until it expires; Bob is not affected.
    assert _get(emu, result["access_token"], "/me/calendar").status_code == 200
    assert _token_post(emu, grant_type="refresh_token",
                       refresh_token=bobs["refresh_token"]).status_code == 200
    # A new sign-in works again.
    _, fresh = _tokens(emu)
    assert _token_post(emu, grant_type="refresh_token",
                       refresh_token=fresh["refresh_token"]).status_code == 200


def test_no_refresh_token_without_offline_access(emu):
    app = _app(emu)
    flow, response = _sign_in(emu, app)
    r = _token_post(emu, grant_type="authorization_code", code=response["code"],
                    redirect_uri=REDIRECT, code_verifier=flow["code_verifier"],
                    scope="Calendars.ReadWrite")
    # msal asked for offline_access at /authorize: the refresh token comes with the grant.
    assert r.status_code == 200 and "refresh_token" in r.json()
    base = f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/authorize"
    params = {"client_id": demo.CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT,
              "scope": "Calendars.ReadWrite", "state": "s1"}
    page = requests.get(base, params=params, verify=emu.ca_file, timeout=30)
    data = dict(_parse(page.text).fields, loginfmt=ALICE, passwd=demo.USER_PASSWORDS[ALICE])
    answer = requests.post(page.url, data=data, verify=emu.ca_file, timeout=30,
                           allow_redirects=False)
    response = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert "client_info" not in response and response["state"] == "s1"
    r = _token_post(emu, grant_type="authorization_code", code=response["code"],
                    redirect_uri=REDIRECT)
    assert r.status_code == 200
    assert "refresh_token" not in r.json() and "id_token" not in r.json()


# -- Graph with a delegated token ------------------------------------------------------------


def test_delegated_token_cannot_read_another_users_calendar(emu):
    _, result = _tokens(emu)
    token = result["access_token"]
    assert _get(emu, token, f"/users/{ALICE}/calendar").status_code == 200
    for path in (f"/users/{BOB}/calendar", f"/users/{BOB}/events", f"/users/{ADAMS}/calendar",
                 f"/users/{BOB}", f"/users/{emu.store.mailbox(BOB).guid}/calendars"):
        r = _get(emu, token, path)
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "ErrorAccessDenied"
        assert r.json()["error"]["message"] == "Access is denied. Check credentials and try again."


def test_me_routes_batch_view_and_delta(emu):
    _, result = _tokens(emu)
    token = result["access_token"]
    window = {"startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2040-01-01T00:00:00Z"}
    view = _get(emu, token, "/me/calendarView", params={**window, "$top": "2"})
    assert view.status_code == 200 and len(view.json()["value"]) == 2
    assert "/v1.0/me/calendarView?" in view.json()["@odata.nextLink"]
    delta = _get(emu, token, "/me/calendarView/delta", params=window,
                 headers={"Prefer": "odata.maxpagesize=50"})
    assert delta.status_code == 200
    link = delta.json().get("@odata.nextLink") or delta.json()["@odata.deltaLink"]
    assert "/v1.0/me/calendarView/delta?" in link
    created = requests.post(emu.graph_url + "/me/calendars/" + emu.store.mailbox(ALICE)
                            .default_calendar_id + "/events", verify=emu.ca_file, timeout=30,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"subject": "Delegated", "start": {
                                "dateTime": "2031-05-01T09:00:00", "timeZone": "UTC"},
                                "end": {"dateTime": "2031-05-01T10:00:00", "timeZone": "UTC"}})
    assert created.status_code == 201, created.text
    eid = created.json()["id"]
    assert _get(emu, token, f"/me/events/{eid}/instances", params=window).status_code == 200
    batch = requests.post(emu.graph_url + "/$batch", verify=emu.ca_file, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}, json={"requests": [
                              {"id": "1", "method": "GET", "url": "/me/calendar"},
                              {"id": "2", "method": "GET", "url": f"/me/events/{eid}"},
                              {"id": "3", "method": "DELETE", "url": f"/me/events/{eid}"},
                              {"id": "4", "method": "GET", "url": f"/users/{BOB}/calendar"}]})
    assert batch.status_code == 200
    statuses = {r["id"]: r["status"] for r in batch.json()["responses"]}
    assert statuses == {"1": 200, "2": 200, "3": 204, "4": 403}
    logged = [(e.path, e.mailbox, e.batched) for e in emu.request_log if e.batched][-4:]
    assert logged[0] == ("/v1.0/me/calendar", ALICE, True)
    assert logged[3] == (f"/v1.0/users/{BOB}/calendar", BOB, True)


def test_scp_decides_calendar_access(emu):
    client_id = str(uuid.uuid4())
    emu.register_app(client_id, secret="s3cret", redirect_uris=[REDIRECT],
                     delegated_scopes="openid profile offline_access User.Read Calendars.Read")
    app = _app(emu, client_id, "s3cret")
    _, profile = _tokens(emu, app, ["User.Read"])
    assert _get(emu, profile["access_token"], "/me").status_code == 200
    r = _get(emu, profile["access_token"], "/me/calendars")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    assert _get(emu, profile["access_token"], "/places/microsoft.graph.room").status_code == 403
    _, read = _tokens(emu, app, ["Calendars.Read"])
    assert _get(emu, read["access_token"], "/me/calendar/events").status_code == 200
    assert _get(emu, read["access_token"], "/me").status_code == 403  # no User.Read in scp
    write = requests.post(emu.graph_url + "/me/events", verify=emu.ca_file, timeout=30,
                          headers={"Authorization": f"Bearer {read['access_token']}"},
                          json={"subject": "x"})
    assert write.status_code == 403


def test_app_only_is_unchanged(emu, graph):
    r = graph("GET", "/me/calendars")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "/me request is only valid with delegated authentication flow.")
    assert graph("GET", f"/users/{BOB}/calendar").status_code == 200
    result = _app(emu).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    claims = _claims(result["access_token"])
    assert "scp" not in claims and set(claims["roles"]) == {"Calendars.ReadWrite",
                                                            "Place.Read.All"}
    # A delegated-only grant type needs its parameters; app-only needs /.default.
    r = _token_post(emu, grant_type="authorization_code", redirect_uri=REDIRECT)
    assert r.status_code == 400 and r.json()["error_codes"] == [900144]
    r = _token_post(emu, grant_type="client_credentials", scope="User.Read")
    assert r.status_code == 400 and r.json()["error_codes"] == [1002012]


@pytest.mark.parametrize("mode", ["fragment", "form_post"])
def test_response_modes(emu, mode):
    app = _app(emu)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, response_mode=mode)
    answer = _browser_sign_in(emu, flow["auth_uri"])
    if mode == "fragment":
        assert answer.status_code == 302
        response = dict(parse_qsl(urlsplit(answer.headers["Location"]).fragment))
    else:
        assert answer.status_code == 200
        form = _parse(answer.text)
        response = {k: v for k, v in form.fields.items() if k in ("code", "state",
                                                                 "client_info",
                                                                 "session_state")}
        assert f'action="{REDIRECT}"' in answer.text
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, response)
