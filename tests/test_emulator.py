"""The Graph emulator behaves like Graph v1.0 and Entra for an app-only client.

One emulator (demo tenant) serves the whole module; tests that write use Bob's or room-baker's
mailbox, or make their own series, so the demo data the read tests check stays as loaded.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
import uuid

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from radicale_graph.emulator import demo

ALICE, BOB = demo.USERS
ADAMS, BAKER = demo.ROOMS
SCOPE = ["https://graph.microsoft.com/.default"]
EXT_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name X-CALDAV-UID"


def _app(emu, client_id, credential):
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=f"{emu.url}/{demo.TENANT_ID}",
        instance_discovery=False, validate_authority=False, verify=emu.ca_file)


def _cert(common_name="app"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert


def _event(subject, day="2026-12-01", start="09:00", end="10:00", zone="UTC", **extra):
    return {"subject": subject,
            "start": {"dateTime": f"{day}T{start}:00", "timeZone": zone},
            "end": {"dateTime": f"{day}T{end}:00", "timeZone": zone}, **extra}


def _all_pages(graph, path, **kwargs):
    items, pages = [], 0
    body = graph("GET", path, **kwargs).json()
    while True:
        pages += 1
        items += body["value"]
        if "@odata.nextLink" not in body:
            return items, pages
        body = graph("GET", body["@odata.nextLink"],
                     headers=kwargs.get("headers")).json()


# -- identity ------------------------------------------------------------------------------


def test_client_secret_gets_a_graph_token(emu, token):
    result = _app(emu, demo.CLIENT_ID, demo.CLIENT_SECRET).acquire_token_for_client(SCOPE)
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    claims = emu.identity.check(f"Bearer {token}")
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == demo.TENANT_ID and claims["appid"] == demo.CLIENT_ID
    assert set(claims["roles"]) == {"Calendars.ReadWrite", "Place.Read.All"}


def test_discovery_document_names_the_token_endpoint(emu):
    r = requests.get(f"{emu.url}/{demo.TENANT_ID}/v2.0/.well-known/openid-configuration",
                     verify=emu.ca_file, timeout=30)
    assert r.status_code == 200
    assert r.json()["token_endpoint"] == f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/token"


def test_wrong_secret_is_aadsts7000215(emu):
    result = _app(emu, demo.CLIENT_ID, "not-the-secret").acquire_token_for_client(SCOPE)
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert result["error_codes"] == [7000215]
    assert "not-the-secret" not in result["error_description"]
    r = requests.post(f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/token", verify=emu.ca_file,
                      timeout=30, data={"grant_type": "client_credentials",
                                        "client_id": demo.CLIENT_ID, "client_secret": "x",
                                        "scope": SCOPE[0]})
    assert r.status_code == 401
    assert {"trace_id", "correlation_id", "timestamp"} <= set(r.json())


def test_unknown_client_and_unknown_tenant_are_refused(emu):
    result = _app(emu, str(uuid.uuid4()), "s").acquire_token_for_client(SCOPE)
    assert result["error"] == "unauthorized_client"
    assert result["error_description"].startswith("AADSTS700016:")
    r = requests.get(f"{emu.url}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration",
                     verify=emu.ca_file, timeout=30)
    assert r.status_code == 400
    assert r.json()["error_codes"] == [90002]


def test_certificate_credential(emu, graph):
    key_pem, cert_pem, cert = _cert()
    client_id = str(uuid.uuid4())
    emu.register_app(client_id, certificate_pem=cert_pem)
    # msal >= 1.35 computes the SHA-256 thumbprint itself (PS256, x5t#S256).
    ok = _app(emu, client_id, {"private_key": key_pem, "public_certificate": cert_pem})
    result = ok.acquire_token_for_client(SCOPE)
    assert "access_token" in result, result.get("error_description")
    r = requests.get(f"{emu.graph_url}/users/{ALICE}/calendar", verify=emu.ca_file, timeout=30,
                     headers={"Authorization": f"Bearer {result['access_token']}"})
    assert r.status_code == 200
    # SHA-1 thumbprint given explicitly: RS256 with x5t.
    sha1 = cert.fingerprint(hashes.SHA1()).hex()
    assert "access_token" in _app(emu, client_id, {"private_key": key_pem, "thumbprint": sha1}
                                  ).acquire_token_for_client(SCOPE)


def test_unregistered_certificate_and_wrong_key_are_refused(emu):
    key_pem, cert_pem, _ = _cert()
    other_key, other_cert, _ = _cert("other")
    client_id = str(uuid.uuid4())
    emu.register_app(client_id, certificate_pem=cert_pem)
    unknown = _app(emu, client_id, {"private_key": other_key, "public_certificate": other_cert})
    result = unknown.acquire_token_for_client(SCOPE)
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith(
        "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was "
        "not found.")
    forged = _app(emu, client_id, {"private_key": other_key, "public_certificate": cert_pem})
    result = forged.acquire_token_for_client(SCOPE)
    assert result["error_codes"] == [700027]
    assert "use of the key to verify the signature failed" in result["error_description"]


# -- Graph authentication and access ------------------------------------------------------


def test_missing_or_bad_token_is_401(emu):
    url = f"{emu.graph_url}/users/{ALICE}/events"
    r = requests.get(url, verify=emu.ca_file, timeout=30, headers={"client-request-id": "abc"})
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken"
    assert err["message"] == "Access token is empty."
    assert err["innerError"]["client-request-id"] == "abc"
    assert r.headers["client-request-id"] == "abc" and r.headers["request-id"]
    r = requests.get(url, verify=emu.ca_file, timeout=30,
                     headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    expired = emu.identity.issue(demo.CLIENT_ID, lifetime=-600)
    r = requests.get(url, verify=emu.ca_file, timeout=30,
                     headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401


def test_access_policy_limits_mailboxes(emu):
    client_id = str(uuid.uuid4())
    emu.register_app(client_id, secret="s3cret", allowed_mailboxes={BOB})
    token = _app(emu, client_id, "s3cret").acquire_token_for_client(SCOPE)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    denied = requests.get(f"{emu.graph_url}/users/{ALICE}/calendar", headers=headers,
                          verify=emu.ca_file, timeout=30)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"
    allowed = requests.get(f"{emu.graph_url}/users/{BOB.upper()}/calendar", headers=headers,
                           verify=emu.ca_file, timeout=30)
    assert allowed.status_code == 200


def test_unknown_user_and_item(graph):
    r = graph("GET", "/users/nobody@contoso.com/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ErrorInvalidUser"
    r = graph("GET", f"/users/{ALICE}/events/AAMkAGnotthere=")
    assert r.status_code == 404
    assert r.json()["error"] == {**r.json()["error"], "code": "ErrorItemNotFound",
                                 "message": "The specified object was not found in the store."}


# -- events ----------------------------------------------------------------------------------


def test_event_crud_and_change_keys(graph):
    body = _event("Budget", zone="Pacific Standard Time", attendees=[{
        "emailAddress": {"address": "x@fabrikam.com", "name": "X"}, "type": "Required"}],
        body={"contentType": "HTML", "content": "Numbers"}, location={"displayName": "Cafe"})
    r = graph("POST", f"/users/{BOB}/events", json=body)
    assert r.status_code == 201
    assert r.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    ev = r.json()
    assert ev["@odata.etag"] == f'W/"{ev["changeKey"]}"'
    assert ev["type"] == "singleInstance" and ev["isOrganizer"] is True
    assert ev["organizer"]["emailAddress"]["address"] == BOB
    assert ev["responseStatus"]["response"] == "organizer"
    assert ev["attendees"][0]["type"] == "required"
    assert ev["attendees"][0]["status"] == {"response": "none", "time": "0001-01-01T00:00:00Z"}
    assert ev["start"] == {"dateTime": "2026-12-01T17:00:00.0000000", "timeZone": "UTC"}
    assert ev["originalStartTimeZone"] == "Pacific Standard Time"
    assert ev["location"]["uniqueId"] == "Cafe" and ev["locations"][0]["displayName"] == "Cafe"
    assert ev["body"]["contentType"] == "html" and "Numbers" in ev["body"]["content"]
    assert ev["iCalUId"].startswith("040000008200E00074C5B7101A82E008")
    first_key = ev["changeKey"]

    got = graph("GET", f"/users/{BOB}/events/{ev['id']}").json()
    assert got["changeKey"] == first_key and got["subject"] == "Budget"
    patched = graph("PATCH", f"/users/{BOB}/events/{ev['id']}", json={"subject": "Budget v2"})
    assert patched.status_code == 200
    assert patched.json()["subject"] == "Budget v2"
    assert patched.json()["changeKey"] != first_key
    assert patched.json()["lastModifiedDateTime"] >= ev["lastModifiedDateTime"]
    assert graph("DELETE", f"/users/{BOB}/events/{ev['id']}").status_code == 204
    # Was 404 at once; now a deleted event stays readable by id from Deleted Items
    # (concepts/outlook-immutable-id.md) but is gone from the list and cannot be patched.
    assert graph("GET", f"/users/{BOB}/events/{ev['id']}").status_code == 200
    assert ev["id"] not in [e["id"] for e in _all_pages(graph, f"/users/{BOB}/events")[0]]
    assert graph("PATCH", f"/users/{BOB}/events/{ev['id']}",
                 json={"subject": "x"}).status_code == 404


def test_if_match_with_stale_etag_is_412(graph):
    ev = graph("POST", f"/users/{BOB}/events", json=_event("Etag test")).json()
    stale = ev["@odata.etag"]
    fresh = graph("PATCH", f"/users/{BOB}/events/{ev['id']}", json={"subject": "A"},
                  headers={"If-Match": stale}).json()
    r = graph("PATCH", f"/users/{BOB}/events/{ev['id']}", json={"subject": "B"},
              headers={"If-Match": stale})
    assert r.status_code == 412
    assert r.json()["error"]["code"] == "ErrorIrresolvableConflict"
    r = graph("DELETE", f"/users/{BOB}/events/{ev['id']}", headers={"If-Match": stale})
    assert r.status_code == 412
    r = graph("DELETE", f"/users/{BOB}/events/{ev['id']}",
              headers={"If-Match": fresh["@odata.etag"]})
    assert r.status_code == 204


def test_schema_refusals_use_graph_wording(graph):
    r = graph("POST", f"/users/{BOB}/events", json={**_event("S"), "subjekt": "typo"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "RequestBodyRead"
    assert r.json()["error"]["message"] == (
        "The property 'subjekt' does not exist on type 'microsoft.graph.event'. Make sure to "
        "only use property names that are defined by the type or mark the type as open type.")
    r = graph("POST", f"/users/{BOB}/events", json={**_event("S"), "showAs": "away"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "RequestBodyRead"
    assert "'away'" in r.json()["error"]["message"]
    r = graph("POST", f"/users/{BOB}/events", json={**_event("S"), "isAllDay": "yes"})
    assert r.json()["error"]["message"] == (
        "Cannot convert the literal 'yes' to the expected type 'Edm.Boolean'.")
    r = graph("POST", f"/users/{BOB}/events", data=b"{not json",
              headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    subjects = [e["subject"] for e in _all_pages(graph, f"/users/{BOB}/events")[0]]
    assert "S" not in subjects


def test_all_day_needs_midnights(graph):
    r = graph("POST", f"/users/{BOB}/events",
              json=_event("Half day", start="09:00", end="12:00", isAllDay=True))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ErrorPropertyValidationFailure"
    r = graph("POST", f"/users/{BOB}/events", json={
        "subject": "Whole day", "isAllDay": True,
        "start": {"dateTime": "2026-12-02T00:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-12-03T00:00:00", "timeZone": "W. Europe Standard Time"}})
    assert r.status_code == 201
    assert r.json()["start"]["dateTime"] == "2026-12-02T00:00:00.0000000"


def test_transaction_id_does_not_duplicate(graph):
    body = _event("Retried POST", transactionId=str(uuid.uuid4()))
    first = graph("POST", f"/users/{BOB}/events", json=body)
    second = graph("POST", f"/users/{BOB}/events", json=body)
    # The repeat used to answer 201 with the first event; Graph answers 400
    # ErrorDuplicateTransactionId (tests/test_emulator_v1.py has the details).
    assert first.status_code == 201 and second.status_code == 400
    assert second.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    assert first.json()["transactionId"] == body["transactionId"]
    events, _ = _all_pages(graph, f"/users/{BOB}/events")
    assert [e["subject"] for e in events].count("Retried POST") == 1


def test_paging_with_next_links(graph):
    for n in range(5):
        graph("POST", f"/users/{BAKER}/events", json=_event(f"Booking {n}", start=f"1{n}:00",
                                                          end=f"1{n}:30"))
    everything = graph("GET", f"/users/{BAKER}/events", params={"$top": "100"}).json()["value"]
    paged, pages = _all_pages(graph, f"/users/{BAKER}/events",
                              params={"$top": "2", "$select": "subject"})
    assert pages >= 3
    assert [e["id"] for e in paged] == [e["id"] for e in everything]
    assert all(set(e) == {"@odata.etag", "id", "subject"} for e in paged)
    first = graph("GET", f"/users/{BAKER}/events", headers={"Prefer": "odata.maxpagesize=3"})
    assert len(first.json()["value"]) == 3
    assert "$skiptoken=" in first.json()["@odata.nextLink"]


def test_extended_property_filter_and_expand(graph):
    uid = f"uid-{uuid.uuid4()}"
    body = _event("With UID", singleValueExtendedProperties=[{"id": EXT_ID, "value": uid}])
    ev = graph("POST", f"/users/{BOB}/events", json=body).json()
    assert "singleValueExtendedProperties" not in ev
    graph("POST", f"/users/{BOB}/events", json=_event("Other UID", singleValueExtendedProperties=[
        {"id": EXT_ID, "value": "uid-other"}]))
    flt = (f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXT_ID}' and ep/value eq '{uid}')")
    found = graph("GET", f"/users/{BOB}/events", params={"$filter": flt}).json()["value"]
    assert [e["id"] for e in found] == [ev["id"]]
    expanded = graph("GET", f"/users/{BOB}/events/{ev['id']}", params={
        "$expand": f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"}).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": EXT_ID, "value": uid}]
    graph("PATCH", f"/users/{BOB}/events/{ev['id']}", json={
        "singleValueExtendedProperties": [{"id": EXT_ID, "value": "uid-new"}]})
    again = graph("GET", f"/users/{BOB}/events/{ev['id']}", params={
        "$expand": f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"}).json()
    assert again["singleValueExtendedProperties"][0]["value"] == "uid-new"
    bad = graph("GET", f"/users/{BOB}/events", params={"$filter": "subject eq"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    only = graph("GET", f"/users/{BOB}/events", params={"$filter": "subject eq 'Other UID'"})
    assert [e["subject"] for e in only.json()["value"]] == ["Other UID"]


def test_instances_cancellation_and_exception(graph):
    body = _event("Standup", day="2027-01-04", start="09:00", end="09:15",
                  zone="W. Europe Standard Time", recurrence={
                      "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["Monday"]},
                      "range": {"type": "numbered", "startDate": "2027-01-04",
                                "numberOfOccurrences": 4}})
    master = graph("POST", f"/users/{BOB}/events", json=body).json()
    assert master["type"] == "seriesMaster"
    window = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-02-01T00:00:00Z"}
    path = f"/users/{BOB}/events/{master['id']}/instances"
    inst = graph("GET", path, params=window).json()["value"]
    assert [i["start"]["dateTime"][:16] for i in inst] == [
        "2027-01-04T08:00", "2027-01-11T08:00", "2027-01-18T08:00", "2027-01-25T08:00"]
    assert {i["type"] for i in inst} == {"occurrence"}
    assert {i["seriesMasterId"] for i in inst} == {master["id"]}
    assert inst[1]["originalStart"] == "2027-01-11T08:00:00Z"
    assert graph("GET", path, params=window).json()["value"][1]["id"] == inst[1]["id"]
    assert graph("GET", path).status_code == 400

    assert graph("DELETE", f"/users/{BOB}/events/{inst[1]['id']}").status_code == 204
    after = graph("GET", path, params=window).json()["value"]
    assert inst[1]["id"] not in [i["id"] for i in after] and len(after) == 3
    got = graph("GET", f"/users/{BOB}/events/{master['id']}",
                params={"$select": "cancelledOccurrences"}).json()
    assert got["cancelledOccurrences"] == [f"OID.{master['id']}.2027-01-11"]

    master_tag = graph("GET", f"/users/{BOB}/events/{master['id']}").json()["@odata.etag"]
    exc = graph("PATCH", f"/users/{BOB}/events/{inst[2]['id']}", json={
        "subject": "Standup (late)",
        "start": {"dateTime": "2027-01-19T10:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2027-01-19T10:15:00", "timeZone": "W. Europe Standard Time"}})
    assert exc.status_code == 200
    assert exc.json()["type"] == "exception" and exc.json()["id"] == inst[2]["id"]
    assert exc.json()["@odata.etag"] != master_tag
    assert graph("GET", f"/users/{BOB}/events/{master['id']}").json()["@odata.etag"] == \
        exc.json()["@odata.etag"]
    assert graph("GET", f"/users/{BOB}/events/{inst[2]['id']}").json()["subject"] == \
        "Standup (late)"
    cross = graph("PATCH", f"/users/{BOB}/events/{inst[3]['id']}", json={
        "start": {"dateTime": "2027-01-19T11:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2027-01-19T11:15:00", "timeZone": "W. Europe Standard Time"}})
    assert cross.status_code == 400
    assert cross.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"
    with_exc = graph("GET", f"/users/{BOB}/events/{master['id']}",
                     params={"$expand": "exceptionOccurrences"}).json()
    assert [e["subject"] for e in with_exc["exceptionOccurrences"]] == ["Standup (late)"]
    listed = [e["id"] for e in _all_pages(graph, f"/users/{BOB}/events")[0]]
    assert master["id"] in listed and inst[2]["id"] not in listed


def test_calendar_view_expands_the_demo_series(graph):
    mon = demo.anchor()
    window = {"startDateTime": f"{mon - dt.timedelta(7)}T00:00:00Z",
              "endDateTime": f"{mon + dt.timedelta(14)}T00:00:00Z"}
    items, _ = _all_pages(graph, f"/users/{ALICE}/calendarView", params=window,
                          headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    lunches = [(i["subject"], i["type"], i["start"]["dateTime"][:10]) for i in items
               if i["subject"].startswith("Team lunch")]
    assert lunches == [
        ("Team lunch", "occurrence", str(mon - dt.timedelta(7))),
        ("Team lunch (moved to Tuesday)", "exception", str(mon + dt.timedelta(1))),
    ]
    assert all(i["start"]["timeZone"] == "Pacific Standard Time" for i in items)
    subjects = {i["subject"] for i in items}
    assert {"Company holiday", "Project review", "Dentist"} <= subjects
    room = graph("GET", f"/users/{ADAMS}/calendarView", params=window).json()["value"]
    assert [i["subject"] for i in room] == ["Project review"]
    assert room[0]["organizer"]["emailAddress"]["address"] == ALICE
    meeting = next(i for i in items if i["subject"] == "Project review")
    assert {a["type"] for a in meeting["attendees"]} == {"required", "resource"}
    r = graph("GET", f"/users/{ALICE}/calendarView", params={"startDateTime": window[
        "startDateTime"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidParameter"


def test_prefer_headers_are_applied(graph):
    ev = graph("POST", f"/users/{BOB}/events", json=_event(
        "Zones", body={"contentType": "html", "content": "<p>Hello <b>there</b></p>"})).json()
    r = graph("GET", f"/users/{BOB}/events/{ev['id']}", headers={
        "Prefer": 'outlook.timezone="Pacific Standard Time", outlook.body-content-type="text"'})
    assert r.json()["start"] == {"dateTime": "2026-12-01T01:00:00.0000000",
                                 "timeZone": "Pacific Standard Time"}
    assert r.json()["body"] == {"contentType": "text", "content": "Hello there"}
    assert 'outlook.timezone="Pacific Standard Time"' in r.headers["Preference-Applied"]


def test_meeting_reply(graph):
    mine = [e for e in _all_pages(graph, f"/users/{BOB}/events")[0]
            if e["subject"] == "Project review"]
    assert mine[0]["isOrganizer"] is False
    r = graph("POST", f"/users/{BOB}/events/{mine[0]['id']}/accept",
              json={"comment": "ok", "sendResponse": True})
    assert r.status_code == 202 and r.content == b""
    status = graph("GET", f"/users/{BOB}/events/{mine[0]['id']}").json()["responseStatus"]
    assert status["response"] == "accepted"


def test_rooms_are_listed(graph):
    rooms = graph("GET", "/places/microsoft.graph.room").json()["value"]
    assert [r["emailAddress"] for r in rooms] == list(demo.ROOMS)


def test_batch(graph):
    r = graph("POST", "/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{ALICE}/calendar"},
        {"id": "2", "method": "POST", "url": f"/users/{BOB}/events",
         "headers": {"Content-Type": "application/json"}, "body": _event("Batched")},
        {"id": "3", "method": "GET", "url": f"/users/{ALICE}/events/nope"},
    ]})
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["isDefaultCalendar"] is True
    assert by_id["2"]["status"] == 201 and by_id["2"]["body"]["subject"] == "Batched"
    assert by_id["3"]["status"] == 404
    too_many = [{"id": str(n), "method": "GET", "url": "/places/microsoft.graph.room"}
                for n in range(21)]
    assert graph("POST", "/$batch", json={"requests": too_many}).status_code == 400


def test_delta_rounds(graph):
    window = {"startDateTime": "2027-03-01T00:00:00Z", "endDateTime": "2027-04-01T00:00:00Z"}
    keep = graph("POST", f"/users/{BOB}/events", json=_event("Delta keep", day="2027-03-02")).json()
    gone = graph("POST", f"/users/{BOB}/events", json=_event("Delta gone", day="2027-03-03")).json()
    for n in range(3):
        graph("POST", f"/users/{BOB}/events", json=_event(f"Delta {n}", day="2027-03-1" + str(n)))
    prefer = {"Prefer": "odata.maxpagesize=2"}
    body = graph("GET", f"/users/{BOB}/calendarView/delta", params=window, headers=prefer).json()
    seen, pages = [], 0
    while "@odata.nextLink" in body:
        pages += 1
        seen += body["value"]
        body = graph("GET", body["@odata.nextLink"], headers=prefer).json()
    seen += body["value"]
    assert pages >= 2 and len({e["id"] for e in seen}) == 5
    delta_link = body["@odata.deltaLink"]
    graph("PATCH", f"/users/{BOB}/events/{keep['id']}", json={"subject": "Delta kept"})
    graph("DELETE", f"/users/{BOB}/events/{gone['id']}")
    nxt = graph("GET", delta_link).json()
    assert [e["subject"] for e in nxt["value"] if "@removed" not in e] == ["Delta kept"]
    assert [e["id"] for e in nxt["value"] if "@removed" in e] == [gone["id"]]
    assert graph("GET", nxt["@odata.deltaLink"]).json()["value"] == []
    r = graph("GET", f"/users/{BOB}/calendarView/delta", params={"$deltatoken": "garbage"})
    assert r.status_code == 410


# -- throttling, faults, latency, log ---------------------------------------------------------


def test_injected_429_has_retry_after(emu, graph):
    emu.inject_fault(status=429, count=1, retry_after=2, path_contains="/calendars")
    r = graph("GET", f"/users/{ALICE}/calendars")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    assert r.json()["error"]["code"] == "ApplicationThrottled"
    assert r.json()["error"]["message"] == "Application is over its MailboxConcurrency limit."
    assert graph("GET", f"/users/{ALICE}/calendars").status_code == 200
    emu.inject_fault(status=503, count=1, retry_after=None)
    r = graph("GET", f"/users/{ALICE}/calendars")
    assert r.status_code == 503 and "Retry-After" not in r.headers


def test_fifth_concurrent_request_is_throttled(emu, token):
    emu.latency = 1.0
    results = []
    barrier = threading.Barrier(6)

    def call():
        barrier.wait()
        r = requests.get(f"{emu.graph_url}/users/{ALICE}/calendar", verify=emu.ca_file,
                         timeout=30, headers={"Authorization": f"Bearer {token}"})
        results.append((r.status_code, r.headers.get("Retry-After")))

    try:
        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        emu.latency = 0.0
    assert sorted(s for s, _ in results).count(200) == 4
    assert sorted(results)[-1] == (429, "1")


def test_latency_is_added(emu, graph):
    emu.latency = 0.3
    try:
        began = time.monotonic()
        graph("GET", f"/users/{ALICE}/calendar")
        took = time.monotonic() - began
    finally:
        emu.latency = 0.0
    assert took >= 0.3


def test_request_log_records_graph_calls(emu, graph):
    emu.clear_log()
    graph("GET", f"/users/{ALICE.upper()}/calendars", params={"$top": "1"})
    assert [tuple(r)[:5] for r in emu.request_log] == [
        (  # LoggedRequest(method, path, query, status, mailbox)
            "GET", f"/v1.0/users/{ALICE.upper()}/calendars", "%24top=1", 200, ALICE)
    ]
    assert emu.request_log[0].mailbox == ALICE


def test_store_api_acts_as_outlook(emu, graph):
    made = emu.store.create_event(BAKER, None, _event("Booked in Outlook", day="2026-12-07"))
    assert graph("GET", f"/users/{BAKER}/events/{made['id']}").json()["subject"] == \
        "Booked in Outlook"
    emu.store.update_event(BAKER, made["id"], {"subject": "Rebooked"})
    assert emu.store.get_event(BAKER, made["id"])["subject"] == "Rebooked"
    assert [c["name"] for c in emu.store.calendars(ALICE)] == ["Calendar", "Project Falcon"]
    emu.store.delete_event(BAKER, made["id"])
    # Was 404 at once; a deleted event is readable by id until deleted_retention has passed.
    assert graph("GET", f"/users/{BAKER}/events/{made['id']}").status_code == 200
    emu.deleted_retention = 0
    try:
        assert graph("GET", f"/users/{BAKER}/events/{made['id']}").status_code == 404
    finally:
        emu.deleted_retention = 3600.0
    assert base64.urlsafe_b64decode(made["id"])[:3] == b"\x00\x03\x24"
