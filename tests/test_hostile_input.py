"""Hostile input is answered with a 4xx before Radicale sees it (radicale_graph.web.guard,
issue 13): nothing is written to Graph, and the gateway answers normally afterwards."""

from __future__ import annotations

import base64
import io
import time

import pytest
import requests

from radicale_graph.web import guard

from .conftest import ALICE

CALENDAR = "/alice@contoso.com/calendar/"
C = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'

LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
          + "]>\n")  # "billion laughs": &lol9; is 10**9 times "lol"
EXTERNAL = ('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
DOCTYPE_ONLY = '<?xml version="1.0"?>\n<!DOCTYPE x>\n'

BODIES = {
    "PROPFIND": (f'<D:propfind {C}><D:prop><D:displayname>{{inner}}</D:displayname>'
                 f'</D:prop></D:propfind>'),
    "PROPPATCH": (f'<D:propertyupdate {C}><D:set><D:prop><D:displayname>{{inner}}'
                  f'</D:displayname></D:prop></D:set></D:propertyupdate>'),
    "REPORT": (f'<C:calendar-query {C}><D:prop><D:getetag/></D:prop><C:filter>'
               f'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">{{inner}}'
               f'</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>'),
}


def graph_writes(emulator):
    """Requests that change Graph (as in tests/test_end_to_end.py)."""
    return [r for r in emulator.request_log if r.method in ("POST", "PATCH", "DELETE")
            and not r.path.endswith("/$batch")]


def send(gateway, method, body=None, auth=ALICE, headers=None):
    headers = {"Depth": "1" if method == "REPORT" else "0", **(headers or {})}
    return requests.request(method, gateway.url + CALENDAR, data=body, auth=auth,
                            headers=headers, timeout=60)


def assert_refused(gateway, status, call):
    """``call()`` is answered ``status``, Graph gets no write, and a PROPFIND still works."""
    before = len(graph_writes(gateway.emulator))
    started = time.monotonic()
    response = call()
    elapsed = time.monotonic() - started
    assert response.status_code == status, response.text
    assert len(graph_writes(gateway.emulator)) == before
    after = send(gateway, "PROPFIND")
    assert after.status_code == 207
    return response, elapsed


# -- credentials -------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    "Basic", "Basic !!!!", "Basic abc", "Basic " + base64.b64encode(b"nocolon").decode(),
    "Basic \u00fcn\u00ef"])
def test_malformed_basic_credentials_get_401(gateway, value):
    response, _ = assert_refused(gateway, 401, lambda: send(
        gateway, "PROPFIND", auth=None, headers={"Authorization": value}))
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert "malformed Basic credentials" in response.text


def test_latin1_credentials_are_left_to_radicale(gateway):
    """Radicale decodes credentials falling back to ISO-8859-1: a wrong password, not a
    malformed header (401 from Radicale, not from the guard)."""
    value = base64.b64encode("alice@contoso.com:d\u00e9mo".encode("latin-1")).decode()
    response = send(gateway, "PROPFIND", auth=None, headers={"Authorization": "Basic " + value})
    assert response.status_code == 401
    assert "malformed" not in response.text


# -- XML ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(BODIES))
@pytest.mark.parametrize("prolog, inner, cause", [
    (LAUGHS, "&lol9;", "DOCTYPE"),
    (EXTERNAL, "&xxe;", "DOCTYPE"),
    (DOCTYPE_ONLY, "", "DOCTYPE"),
    ("", "&undefined;", "not well-formed"),
], ids=["billion-laughs", "external-entity", "doctype", "undefined-entity"])
def test_xml_with_dtd_or_entities_gets_400(gateway, method, prolog, inner, cause):
    body = prolog + BODIES[method].format(inner=inner)
    response, _ = assert_refused(gateway, 400, lambda: send(gateway, method, body))
    assert cause in response.text
    assert "root:" not in response.text  # /etc/passwd never shows


@pytest.mark.parametrize("method", sorted(BODIES))
def test_xml_nested_100000_deep_gets_400(gateway, method):
    inner = "<D:x>" * 100_000 + "</D:x>" * 100_000
    body = BODIES[method].format(inner=inner)
    response, elapsed = assert_refused(gateway, 400, lambda: send(gateway, method, body))
    assert f"deeper than {guard.MAX_XML_DEPTH}" in response.text
    assert elapsed < 5


# -- REPORT bounds -----------------------------------------------------------------------
def query(time_range=None, expand=None, kind="calendar-query"):
    data = "<D:getetag/>"
    if expand:
        data += f'<C:calendar-data><C:expand start="{expand[0]}" end="{expand[1]}"/>' \
                f'</C:calendar-data>'
    rng = f'<C:time-range start="{time_range[0]}" end="{time_range[1]}"/>' \
        if time_range else ""
    return (f'<C:{kind} {C}><D:prop>{data}</D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="VEVENT">{rng}</C:comp-filter></C:comp-filter></C:filter>'
            f'</C:{kind}>')


@pytest.mark.parametrize("body, bound", [
    (query(expand=("00010101T000000Z", "99991231T235959Z")), "outside"),
    (query(time_range=("00010101T000000Z", "99991231T235959Z")), "outside"),
    (query(time_range=("99980101T000000Z", "99991231T235959Z")), "outside"),
    (query(expand=("20260101T000000Z", "20460101T000000Z")), "longer than"),
    (f'<C:free-busy-query {C}><C:time-range start="00010101T000000Z" '
     f'end="99991231T235959Z"/></C:free-busy-query>', "outside"),
], ids=["expand-0001-9999", "time-range-0001-9999", "time-range-9998", "expand-20-years",
        "free-busy-0001-9999"])
def test_report_beyond_bounds_gets_403_with_reason(gateway, body, bound):
    response, elapsed = assert_refused(gateway, 403, lambda: send(gateway, "REPORT", body))
    assert bound in response.text
    assert elapsed < 5


@pytest.mark.parametrize("body", [
    query(time_range=("garbage", "20270101T000000Z")),
    query(expand=("2026-12-01", "20270101T000000Z")),
    query(time_range=("20261201T000000", "20270101T000000Z")),  # no Z: not UTC
], ids=["word", "iso-extended", "floating"])
def test_report_with_malformed_dates_gets_400(gateway, body):
    response, _ = assert_refused(gateway, 400, lambda: send(gateway, "REPORT", body))
    assert "YYYYMMDDTHHMMSSZ" in response.text


# -- what clients send passes -------------------------------------------------------------
@pytest.mark.parametrize("body", [
    query(time_range=("20260101T000000Z", "")),                # DAVx5: open end
    query(time_range=("19700101T000000Z", "20380119T031407Z")),
    query(),
], ids=["open-end", "epoch-to-2038", "no-range"])
def test_legitimate_reports_pass(gateway, body):
    response = send(gateway, "REPORT", body)
    assert response.status_code == 207, response.text


def test_short_expand_passes_the_guard(gateway):
    """An Apple-style expand over a month reaches Radicale. (Its answer is Radicale's: its
    expand fails with 400 on a resource holding only overridden occurrences, which the demo
    calendar may contain; the guard's texts are not in it.)"""
    body = query(time_range=("20261201T000000Z", "20270101T000000Z"),
                 expand=("20261201T000000Z", "20270101T000000Z"))
    assert guard.check(environ("REPORT", body.encode())) is None
    response = send(gateway, "REPORT", body)
    assert response.status_code in (207, 400), response.text
    assert "YYYYMMDDTHHMMSSZ" not in response.text and "range" not in response.text


def test_legitimate_propfind_with_prolog_passes(gateway):
    body = ('<?xml version="1.0" encoding="utf-8"?>\n' + BODIES["PROPFIND"].format(inner="")
            .replace("<D:displayname></D:displayname>", "<D:displayname/><D:getetag/>"))
    response = send(gateway, "PROPFIND", body, headers={"Content-Type": "text/xml"})
    assert response.status_code == 207
    assert "displayname" in response.text


# -- the guard itself --------------------------------------------------------------------
def environ(method, body: bytes, **extra):
    return {"REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body), "PATH_INFO": CALENDAR, **extra}


def test_body_is_put_back_for_radicale():
    body = BODIES["PROPFIND"].format(inner="").encode()
    env = environ("PROPFIND", body)
    assert guard.check(env) is None
    assert env["wsgi.input"].read() == body


def test_depth_at_the_bound_passes_and_one_more_is_refused():
    def nested(depth):
        return ("<a>" * depth + "</a>" * depth).encode()

    assert guard.check(environ("PROPFIND", nested(guard.MAX_XML_DEPTH))) is None
    status, _, text = guard.check(environ("PROPFIND", nested(guard.MAX_XML_DEPTH + 1)))
    assert status == 400 and b"deeper" in text


def test_bad_content_length_and_oversized_xml():
    env = environ("PROPFIND", b"<a/>", CONTENT_LENGTH="ten")
    assert guard.check(env)[0] == 400

    class Configuration:
        def get(self, section, option):
            return {("server", "max_content_length"): 10, ("auth", "realm"): "R",
                    ("encoding", "request"): "utf-8"}[(section, option)]

        def options(self, section):
            return []

    stream = io.BytesIO(b"<a>" + b" " * 100 + b"</a>")
    env = environ("REPORT", b"", CONTENT_LENGTH="107", **{"wsgi.input": stream})
    assert guard.check(env, Configuration())[0] == 413
    assert stream.tell() == 0  # never read


def test_requests_without_xml_body_are_not_read():
    stream = io.BytesIO(b"BEGIN:VCALENDAR\r\n")
    env = environ("PUT", b"", CONTENT_LENGTH="17", **{"wsgi.input": stream})
    assert guard.check(env) is None
    assert stream.tell() == 0
