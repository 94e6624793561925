"""Tests of the Graph client layer (radicale_graph.graph) against mocked HTTP (`responses`).

The identity endpoints msal calls are mocked too: msal fetches
``{authority}/v2.0/.well-known/openid-configuration`` when the application is built, then
POSTs the client-credentials grant to the ``token_endpoint`` named there.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import logging
import threading
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from responses import matchers

from radicale_graph.graph import (
    AccessDenied,
    AuthError,
    GraphClient,
    GraphError,
    GraphSettings,
    NetworkError,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
)
from radicale_graph.graph.http import GraphRetry

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
SECRET = "Zx8Q~not-a-real-secret.Value_42"
LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"
TOKEN_URL = f"{LOGIN}/{TENANT}/oauth2/v2.0/token"
MAILBOX = "alice@contoso.com"
IMMUTABLE = 'IdType="ImmutableId"'


def openid_config(base: str, tenant: str = TENANT) -> dict:
    return {
        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
        "issuer": f"{base}/{tenant}/v2.0",
    }


def add_discovery(rsps, base: str = LOGIN, tenant: str = TENANT):
    """Mock the OpenID configuration of the tenant, and Microsoft's instance discovery, which
    msal asks for host aliases after a token request failed (Microsoft clouds only)."""
    rsps.get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
             json=openid_config(base, tenant))
    rsps.get(f"{LOGIN}/common/discovery/instance", json={
        "tenant_discovery_endpoint": f"{LOGIN}/common/v2.0/.well-known/openid-configuration",
        "metadata": [{"preferred_network": "login.microsoftonline.com",
                      "preferred_cache": "login.windows.net",
                      "aliases": ["login.microsoftonline.com", "login.windows.net",
                                  "login.microsoft.com", "sts.windows.net"]}]})


def add_identity(rsps, base: str = LOGIN, token: str = "token-1", tenant: str = TENANT):
    """Mock the identity endpoints and a token endpoint issuing ``token``; returns the
    token endpoint's registered response (its ``.calls`` are the token requests)."""
    add_discovery(rsps, base, tenant)
    return rsps.post(f"{base}/{tenant}/oauth2/v2.0/token",
                     json={"token_type": "Bearer", "expires_in": 3599, "access_token": token})


def make_settings(**overrides) -> GraphSettings:
    values = dict(tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET)
    values.update(overrides)
    return GraphSettings(**values)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits(monkeypatch):
    """Record the retry waits instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(GraphRetry, "wait", lambda self, seconds: recorded.append(seconds))
    return recorded


@pytest.fixture
def client(rsps, waits):
    add_identity(rsps)
    graph = GraphClient(make_settings())
    yield graph
    graph.close()


def graph_calls(rsps):
    return [c for c in rsps.calls if c.request.url.startswith(GRAPH)]


def error_body(code: str, message: str, request_id: str = "rid-1") -> dict:
    return {"error": {"code": code, "message": message,
                      "innerError": {"request-id": request_id, "date": "2025-05-01T10:00:00"}}}


# -- paging and headers ---------------------------------------------------------------------

def test_iter_pages_follows_next_link_across_three_pages_without_resending_params(
        client, rsps):
    url = f"{GRAPH}/users/{MAILBOX}/calendars/cal1/events"
    page2 = f"{url}?$top=2&$skiptoken=page2"
    page3 = f"{url}?$top=2&$skiptoken=page3"
    rsps.get(url, match=[matchers.query_string_matcher("$top=2&$select=subject")],
             json={"value": [{"id": "e1"}, {"id": "e2"}], "@odata.nextLink": page2})
    rsps.get(url, match=[matchers.query_string_matcher("$top=2&$skiptoken=page2")],
             json={"value": [{"id": "e3"}, {"id": "e4"}], "@odata.nextLink": page3})
    rsps.get(url, match=[matchers.query_string_matcher("$top=2&$skiptoken=page3")],
             json={"value": [{"id": "e5"}]})

    items = list(client.iter_pages(f"/users/{MAILBOX}/calendars/cal1/events",
                                   mailbox=MAILBOX, operation="list events",
                                   params={"$top": "2", "$select": "subject"},
                                   headers={"Prefer": 'outlook.timezone="UTC"'}))

    assert [i["id"] for i in items] == ["e1", "e2", "e3", "e4", "e5"]
    calls = graph_calls(rsps)
    assert len(calls) == 3
    assert "$select" not in calls[1].request.url and "$select" not in calls[2].request.url
    for call in calls:
        assert call.request.headers["Prefer"] == f'{IMMUTABLE}, outlook.timezone="UTC"'
        assert call.request.headers["Authorization"] == "Bearer token-1"
        assert call.request.headers["User-Agent"].startswith("radicale-graph/")
    ids = {c.request.headers["client-request-id"] for c in calls}
    assert len(ids) == 3  # a fresh client-request-id per call


def test_prefer_immutable_id_is_sent_without_caller_preferences_and_replaces_theirs(
        client, rsps):
    rsps.get(f"{GRAPH}/users/{MAILBOX}/calendar", json={"id": "c"})
    rsps.patch(f"{GRAPH}/users/{MAILBOX}/events/e1", json={"id": "e1"})
    client.get_json(f"/users/{MAILBOX}/calendar", mailbox=MAILBOX, operation="get calendar")
    client.request("PATCH", f"/users/{MAILBOX}/events/e1", mailbox=MAILBOX,
                   operation="update event", json={"subject": "x"},
                   headers={"prefer": 'IdType="RestId", outlook.body-content-type="text"',
                            "If-Match": 'W/"abc"'})
    first, second = graph_calls(rsps)
    assert first.request.headers["Prefer"] == IMMUTABLE
    assert second.request.headers["Prefer"] == f'{IMMUTABLE}, outlook.body-content-type="text"'
    assert second.request.headers["If-Match"] == 'W/"abc"'
    assert json.loads(second.request.body) == {"subject": "x"}


def test_absolute_url_on_another_host_is_refused(client):
    with pytest.raises(ValueError, match="evil.example"):
        client.request("GET", "https://evil.example/v1.0/users", mailbox=None,
                       operation="list users")


def test_response_object_carries_status_headers_and_body(client, rsps):
    rsps.delete(f"{GRAPH}/users/{MAILBOX}/events/e1", status=204,
                headers={"request-id": "r-204"})
    resp = client.request("DELETE", f"/users/{MAILBOX}/events/e1", mailbox=MAILBOX,
                          operation="delete event")
    assert (resp.status, resp.body, resp.headers["request-id"]) == (204, None, "r-204")


# -- retries -------------------------------------------------------------------------------

def test_429_waits_for_retry_after_then_succeeds(client, rsps, waits):
    url = f"{GRAPH}/users/{MAILBOX}/events"
    rsps.get(url, status=429, headers={"Retry-After": "1"},
             json=error_body("ApplicationThrottled",
                             "Application is over its MailboxConcurrency limit."))
    rsps.get(url, json={"value": [{"id": "e1"}]})

    body = client.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")

    assert body["value"] == [{"id": "e1"}]
    assert waits == [1.0]
    first, second = graph_calls(rsps)
    # A retry is the same call: same client-request-id, still with the Prefer header.
    assert first.request.headers["client-request-id"] == second.request.headers["client-request-id"]
    assert second.request.headers["Prefer"] == IMMUTABLE


def test_503_without_retry_after_is_retried_after_a_backoff(client, rsps, waits):
    url = f"{GRAPH}/users/{MAILBOX}/events"
    rsps.post(url, status=503, body="Service Unavailable")
    rsps.post(url, status=201, json={"id": "new"})

    resp = client.request("POST", f"/users/{MAILBOX}/events", mailbox=MAILBOX,
                          operation="create event", json={"transactionId": "t1"})

    assert resp.status == 201 and resp.body == {"id": "new"}
    assert len(graph_calls(rsps)) == 2
    assert len(waits) == 1 and 1.0 <= waits[0] <= 2.0  # backoff_factor 1 s + jitter < 1 s


def test_retry_after_longer_than_the_budget_raises_throttled_without_waiting(client, rsps,
                                                                           waits):
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events", status=429, headers={"Retry-After": "1000"},
             json=error_body("ApplicationThrottled", "Application is over its request limit."))

    with pytest.raises(Throttled) as info:
        client.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")

    assert waits == []
    assert len(graph_calls(rsps)) == 1
    err = info.value
    assert (err.status, err.code, err.retry_after) == (429, "ApplicationThrottled", 1000.0)
    assert MAILBOX in str(err) and "1000 s" in str(err)


def test_total_wait_of_one_call_never_exceeds_max_retry_wait(rsps, waits):
    add_identity(rsps)
    graph = GraphClient(make_settings(max_retry_wait=5, max_retries=10))
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events", status=503, headers={"Retry-After": "2"},
             json=error_body("ServiceUnavailable", "busy"))

    with pytest.raises(ServiceUnavailable):
        graph.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")

    assert waits == [2.0, 2.0]  # a third wait of 2 s would make 6 s > 5 s
    assert len(graph_calls(rsps)) == 3


def test_retries_stop_after_max_retries(rsps, waits):
    add_identity(rsps)
    graph = GraphClient(make_settings(max_retries=2))
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events", status=429, headers={"Retry-After": "0"},
             json=error_body("ApplicationThrottled", "slow down"))
    with pytest.raises(Throttled):
        graph.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")
    assert len(graph_calls(rsps)) == 3


class _ThrottleOnceHandler(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self):
        self.seen.append(dict(self.headers))
        if len(self.seen) == 1:
            payload = json.dumps(error_body("ApplicationThrottled", "wait")).encode()
            self.send_response(429)
            self.send_header("Retry-After", "1")
        else:
            payload = json.dumps({"value": [{"id": "real"}]}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_real_urllib3_transport_honours_retry_after_once(rsps, waits, monkeypatch):
    """Through a real socket: urllib3 itself drives GraphRetry (increment, then sleep)."""
    stray_sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", stray_sleeps.append)  # urllib3's own Retry.sleep
    _ThrottleOnceHandler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ThrottleOnceHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        rsps.add_passthru(base)
        add_identity(rsps)
        graph = GraphClient(make_settings(graph_url=f"{base}/v1.0"))
        items = list(graph.iter_pages(f"/users/{MAILBOX}/events", mailbox=MAILBOX,
                                      operation="list events"))
        graph.close()
    finally:
        server.shutdown()
        server.server_close()
    assert items == [{"id": "real"}]
    assert waits == [1.0] and stray_sleeps == []  # waited once, in GraphRetry.wait only
    assert len(_ThrottleOnceHandler.seen) == 2
    assert all(h["Prefer"] == IMMUTABLE for h in _ThrottleOnceHandler.seen)
    token_request = [c for c in rsps.calls if c.request.url == TOKEN_URL][0]
    assert parse_qs(token_request.request.body)["scope"] == [f"{base}/.default"]


# -- error mapping -------------------------------------------------------------------------

def test_403_access_denied_names_the_mailbox_and_the_access_policy(client, rsps):
    rsps.get(f"{GRAPH}/users/bob@contoso.com/calendars", status=403,
             json=error_body("ErrorAccessDenied",
                             "Access is denied. Check credentials and try again.", "req-403"))
    with pytest.raises(AccessDenied) as info:
        client.get_json("/users/bob@contoso.com/calendars", mailbox="bob@contoso.com",
                        operation="list calendars")
    err = info.value
    text = str(err)
    assert (err.status, err.code, err.request_id) == (403, "ErrorAccessDenied", "req-403")
    assert "bob@contoso.com" in text and "ApplicationAccessPolicy" in text
    assert "Calendars.ReadWrite" in text and "request-id req-403" in text
    assert "\n" not in text


def test_404_and_412_map_to_their_exceptions(client, rsps):
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events/gone", status=404,
             json=error_body("ErrorItemNotFound",
                             "The specified object was not found in the store."))
    rsps.patch(f"{GRAPH}/users/{MAILBOX}/events/e1", status=412,
               json=error_body("ErrorIrresolvableConflict",
                               "The send or update operation could not be performed because the "
                               "change key passed in the request does not match the current "
                               "change key for the item."))
    with pytest.raises(NotFound) as missing:
        client.get_json(f"/users/{MAILBOX}/events/gone", mailbox=MAILBOX, operation="get event")
    assert str(missing.value) == (
        f"Graph refused get event for mailbox {MAILBOX}: 404 ErrorItemNotFound: "
        "The specified object was not found in the store. (request-id rid-1)")
    with pytest.raises(PreconditionFailed) as stale:
        client.request("PATCH", f"/users/{MAILBOX}/events/e1", mailbox=MAILBOX,
                       operation="update event", json={}, headers={"If-Match": 'W/"old"'})
    assert stale.value.status == 412 and stale.value.code == "ErrorIrresolvableConflict"


def test_non_json_error_body_still_gives_a_graph_error(client, rsps):
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events", status=502,
             body="<html><body>Bad Gateway\r\n</body></html>",
             headers={"request-id": "gw-1"})
    with pytest.raises(GraphError) as info:
        client.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")
    err = info.value
    assert type(err) is GraphError
    assert (err.status, err.code, err.request_id) == (502, "HTTP502", "gw-1")
    assert "Bad Gateway" in str(err) and "\n" not in str(err)


def test_network_failure_becomes_network_error_naming_the_host(client, rsps):
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events",
             body=requests.ConnectionError("connection refused"))
    with pytest.raises(NetworkError) as info:
        client.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")
    assert info.value.status == 0 and info.value.code == "NetworkError"
    assert "graph.microsoft.com" in str(info.value)


def test_401_invalid_token_fetches_a_new_token_once_and_retries(rsps, waits):
    token_endpoint = add_identity(rsps)
    graph = GraphClient(make_settings())
    url = f"{GRAPH}/users/{MAILBOX}/events"
    rsps.get(url, status=401, json=error_body("InvalidAuthenticationToken", "Token is expired."))
    rsps.get(url, json={"value": []})
    assert graph.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX,
                          operation="list events") == {"value": []}
    assert len(token_endpoint.calls) == 2
    # A second refusal is not retried again.
    rsps.replace(responses.GET, url, status=401,
                 json=error_body("InvalidAuthenticationToken", "Access token validation failure."))
    with pytest.raises(Unauthorized):
        graph.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events")
    assert len(token_endpoint.calls) == 3


# -- tokens --------------------------------------------------------------------------------

def test_client_secret_token_is_requested_once_and_cached(rsps):
    token_endpoint = add_identity(rsps, token="secret-token")
    graph = GraphClient(make_settings())
    rsps.get(f"{GRAPH}/users/{MAILBOX}/calendar", json={"id": "c"})
    graph.check_credentials()
    graph.get_json(f"/users/{MAILBOX}/calendar", mailbox=MAILBOX, operation="get calendar")
    graph.get_json(f"/users/{MAILBOX}/calendar", mailbox=MAILBOX, operation="get calendar")
    assert len(token_endpoint.calls) == 1
    form = parse_qs(token_endpoint.calls[0].request.body)
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["https://graph.microsoft.com/.default"]
    assert form["client_id"] == [CLIENT]
    assert all(c.request.headers["Authorization"] == "Bearer secret-token"
               for c in graph_calls(rsps))


def _self_signed(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "radicale-graph test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    key_file = tmp_path / "key.pem"
    cert_file = tmp_path / "cert.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, key_file, cert_file


def test_certificate_token_request_carries_a_client_assertion_with_the_thumbprint(
        rsps, tmp_path):
    key, cert, key_file, cert_file = _self_signed(tmp_path)
    token_endpoint = add_identity(rsps, token="cert-token")
    graph = GraphClient(GraphSettings(tenant_id=TENANT, client_id=CLIENT,
                                      certificate_key_file=str(key_file),
                                      certificate_file=str(cert_file)))
    graph.check_credentials()

    form = parse_qs(token_endpoint.calls[0].request.body)
    assert "client_secret" not in form
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assertion = form["client_assertion"][0]
    header = jwt.get_unverified_header(assertion)
    expected = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).decode()
    assert header["x5t#S256"].rstrip("=") == expected.rstrip("=")
    claims = jwt.decode(assertion, key.public_key(), algorithms=[header["alg"]],
                        audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == CLIENT


def test_wrong_secret_gives_one_line_auth_error_without_the_secret(rsps, caplog):
    caplog.set_level(logging.DEBUG)
    add_discovery(rsps)
    rsps.post(TOKEN_URL, status=401, json={
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                             "being sent in the request is the client secret value, not the "
                             f"client secret ID, for a secret added to app '{CLIENT}'.\r\n"
                             "Trace ID: 60c018fb\r\nCorrelation ID: 512eafbc\r\n"
                             "Timestamp: 2025-05-01 10:55:12Z",
        "error_codes": [7000215]})
    graph = GraphClient(make_settings())
    with pytest.raises(AuthError) as info:
        graph.check_credentials()
    text = str(info.value)
    assert info.value.code == "AADSTS7000215"
    assert "AADSTS7000215" in text and CLIENT in text and TENANT in text
    assert "client_secret" in text and "Certificates & secrets" in text
    assert "\n" not in text and "\r" not in text
    assert SECRET not in text
    assert SECRET not in caplog.text


def test_missing_certificate_file_names_the_path_and_option(tmp_path):
    _, _, _, cert_file = _self_signed(tmp_path)
    missing = tmp_path / "nope" / "key.pem"
    graph = GraphClient(GraphSettings(tenant_id=TENANT, client_id=CLIENT,
                                      certificate_key_file=str(missing),
                                      certificate_file=str(cert_file)))
    with pytest.raises(AuthError) as info:
        graph.check_credentials()
    assert str(missing) in str(info.value) and "certificate_key_file" in str(info.value)


def test_key_not_matching_the_certificate_is_reported(tmp_path):
    (tmp_path / "a").mkdir()
    _, _, key_file, _ = _self_signed(tmp_path / "a")
    _, _, _, other_cert = _self_signed(tmp_path)
    graph = GraphClient(GraphSettings(tenant_id=TENANT, client_id=CLIENT,
                                      certificate_key_file=str(key_file),
                                      certificate_file=str(other_cert)))
    with pytest.raises(AuthError, match="is not the private key of certificate_file"):
        graph.check_credentials()


def test_unreachable_authority_gives_auth_error_naming_authority_host(rsps):
    rsps.get(f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration",
             body=requests.ConnectionError("Name or service not known"))
    graph = GraphClient(make_settings())
    with pytest.raises(AuthError) as info:
        graph.check_credentials()
    assert info.value.code == "NetworkError"
    assert LOGIN in str(info.value) and "authority_host" in str(info.value)


def test_unknown_tenant_names_tenant_id(rsps):
    rsps.get(f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration", status=400,
             json={"error": "invalid_tenant",
                   "error_description": f"AADSTS90002: Tenant '{TENANT}' not found. Check to "
                                        "make sure you have the correct tenant ID."})
    graph = GraphClient(make_settings())
    with pytest.raises(AuthError) as info:
        graph.check_credentials()
    assert info.value.code == "AADSTS90002" and "tenant_id" in str(info.value)


def test_unknown_app_names_client_id(rsps):
    add_discovery(rsps)
    rsps.post(TOKEN_URL, status=400, json={
        "error": "unauthorized_client",
        "error_description": f"AADSTS700016: Application with identifier '{CLIENT}' was not "
                             f"found in the directory '{TENANT}'.", "error_codes": [700016]})
    with pytest.raises(AuthError) as info:
        GraphClient(make_settings()).check_credentials()
    assert info.value.code == "AADSTS700016" and "client_id" in str(info.value)


def test_emulator_authority_skips_instance_discovery_and_uses_the_emulator_resource(rsps):
    emulator = "https://login.emulator.test:8443"
    token_endpoint = add_identity(rsps, base=emulator, token="emu-token")
    graph_url = "https://graph.emulator.test:8443/v1.0"
    rsps.get(f"{graph_url}/users/{MAILBOX}/calendar", json={"id": "c"})
    graph = GraphClient(make_settings(authority_host=emulator, graph_url=graph_url))
    graph.get_json(f"/users/{MAILBOX}/calendar", mailbox=MAILBOX, operation="get calendar")
    assert all(urlsplit(c.request.url).hostname != "login.microsoftonline.com"
               for c in rsps.calls)
    form = parse_qs(token_endpoint.calls[0].request.body)
    assert form["scope"] == ["https://graph.emulator.test:8443/.default"]


def test_settings_hide_the_secret_and_reject_contradictions():
    assert SECRET not in repr(make_settings())
    with pytest.raises(ValueError):
        make_settings(certificate_key_file="k.pem", certificate_file="c.pem")
    with pytest.raises(ValueError):
        GraphSettings(tenant_id=TENANT, client_id=CLIENT)
    with pytest.raises(ValueError):
        make_settings(graph_url="http://graph.example.com/v1.0")


def test_debug_log_has_method_path_status_but_no_token(client, rsps, caplog):
    caplog.set_level(logging.DEBUG, logger="radicale_graph.graph")
    rsps.get(f"{GRAPH}/users/{MAILBOX}/events", json={"value": []})
    client.get_json(f"/users/{MAILBOX}/events", mailbox=MAILBOX, operation="list events",
                    params={"$filter": "subject eq 'x'"})
    lines = [r.getMessage() for r in caplog.records if r.name == "radicale_graph.graph"]
    # The path is a template: no mailbox address or id in a log line.
    assert any("GET /v1.0/users/{user}/events -> 200" in line for line in lines), lines
    assert MAILBOX not in caplog.text
    assert "token-1" not in caplog.text and "$filter" not in caplog.text


# -- concurrency ---------------------------------------------------------------------------

def test_ten_threads_on_one_mailbox_never_exceed_four_in_flight(client, rsps):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return 200, {}, json.dumps({"id": "c"})

    rsps.add_callback(responses.GET, f"{GRAPH}/users/{MAILBOX}/calendar", callback=slow)
    client.check_credentials()
    errors = []

    def worker():
        try:
            for _ in range(3):
                client.get_json(f"/users/{MAILBOX}/calendar", mailbox=MAILBOX.upper(),
                                operation="get calendar")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(graph_calls(rsps)) == 30
    assert state["peak"] == 4


# -- batching ------------------------------------------------------------------------------

def test_batch_splits_45_requests_into_three_posts_and_keeps_input_order(client, rsps):
    def answer(request):
        sent = json.loads(request.body)["requests"]
        # Graph may answer in any order.
        responses_ = [{"id": r["id"], "status": 200, "headers": {},
                       "body": {"echo": r["url"]}} for r in reversed(sent)]
        return 200, {}, json.dumps({"responses": responses_})

    rsps.add_callback(responses.POST, f"{GRAPH}/$batch", callback=answer)
    reqs = [{"id": f"r{i}", "method": "GET", "url": f"/users/{MAILBOX}/events/e{i}"}
            for i in range(45)]
    reqs[3] = {"id": "r3", "method": "PATCH", "url": f"/users/{MAILBOX}/events/e3",
               "body": {"subject": "s"}}

    results = client.batch(reqs, mailbox=MAILBOX, operation="get events")

    posts = graph_calls(rsps)
    sizes = [len(json.loads(c.request.body)["requests"]) for c in posts]
    assert sizes == [20, 20, 5]
    assert [r["id"] for r in results] == [f"r{i}" for i in range(45)]
    assert results[44]["body"] == {"echo": f"/users/{MAILBOX}/events/e44"}
    first = json.loads(posts[0].request.body)["requests"]
    assert all(r["headers"]["Prefer"] == IMMUTABLE for r in first)
    assert first[3]["headers"]["Content-Type"] == "application/json"
    assert all(c.request.headers["Prefer"] == IMMUTABLE for c in posts)


def test_batch_retries_throttled_items_after_their_retry_after(client, rsps, waits):
    rounds = []

    def answer(request):
        sent = json.loads(request.body)["requests"]
        rounds.append([r["id"] for r in sent])
        out = []
        for r in sent:
            if r["id"] == "b" and len(rounds) == 1:
                out.append({"id": "b", "status": 429, "headers": {"Retry-After": "3"},
                            "body": error_body("ApplicationThrottled", "slow down")})
            elif r["id"] == "c" and len(rounds) == 1:
                out.append({"id": "c", "status": 424, "headers": {}, "body": {}})
            else:
                out.append({"id": r["id"], "status": 200, "headers": {}, "body": {"ok": r["id"]}})
        return 200, {}, json.dumps({"responses": out})

    rsps.add_callback(responses.POST, f"{GRAPH}/$batch", callback=answer)
    reqs = [{"id": "a", "method": "GET", "url": "/x/a"},
            {"id": "b", "method": "GET", "url": "/x/b"},
            {"id": "c", "method": "GET", "url": "/x/c", "dependsOn": ["b"]}]

    results = client.batch(reqs, mailbox=MAILBOX, operation="get events")

    assert rounds == [["a", "b", "c"], ["b", "c"]]
    assert waits == [3.0]
    assert [(r["id"], r["status"]) for r in results] == [("a", 200), ("b", 200), ("c", 200)]


def test_batch_gives_up_on_items_whose_retry_after_exceeds_the_budget(client, rsps, waits):
    rsps.post(f"{GRAPH}/$batch", json={"responses": [
        {"id": "a", "status": 429, "headers": {"Retry-After": "900"},
         "body": error_body("ApplicationThrottled", "slow down")}]})
    results = client.batch([{"id": "a", "method": "GET", "url": "/x/a"}], mailbox=MAILBOX,
                           operation="get events")
    assert waits == [] and results[0]["status"] == 429
    assert len(graph_calls(rsps)) == 1
