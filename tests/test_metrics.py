"""Prometheus metrics (radicale_graph.metrics): a gateway with ``metrics_address`` serves
/metrics on its own port; CalDAV requests, Graph requests, throttling, delta rounds, cache
hits and misses and token refreshes move their counters; no label value carries an address
or a secret; each gateway has its own registry."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from radicale_graph import metrics
from radicale_graph.emulator import demo

from .conftest import ALICE, free_port, start_gateway

PROPFIND_HOME = {"Depth": "1"}
REPORT_BODY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter>
  </C:filter>
</C:calendar-query>"""


def scrape(address: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted label items): value}`` of the endpoint's /metrics."""
    text = requests.get(f"http://{address}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    """Sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, items), value in samples.items()
               if sample == name and set(labels.items()) <= set(items))


@pytest.fixture(scope="module")
def metered(emu, tmp_path_factory):
    """A gateway with metrics on its own emulator (its counts are its own)."""
    address = f"127.0.0.1:{free_port()}"
    gw, stop = start_gateway(emu, tmp_path_factory.mktemp("metered"), refresh_interval=1,
                             metrics_address=address)
    yield gw, address
    stop()


def test_counters_move_after_caldav_requests(metered):
    gw, address = metered
    session = gw.session(ALICE)
    home = f"{gw.url}/{ALICE[0]}/"
    before = scrape(address)
    assert session.request("PROPFIND", home, headers=PROPFIND_HOME).status_code == 207
    calendar = f"{home}calendar/"
    for _ in range(2):  # the first lists the calendar (miss), the second reads the cache (hit)
        answer = session.request("REPORT", calendar, data=REPORT_BODY,
                                 headers={"Depth": "1", "Content-Type": "application/xml"})
        assert answer.status_code == 207, answer.text
    time.sleep(1.2)  # older than refresh_interval: the next read follows a delta round
    assert session.request("REPORT", calendar, data=REPORT_BODY,
                           headers={"Depth": "1"}).status_code == 207
    after = scrape(address)

    def moved(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("radicale_graph_caldav_requests_total", method="PROPFIND", status="207") == 1
    assert moved("radicale_graph_caldav_requests_total", method="REPORT", status="207") == 3
    assert moved("radicale_graph_caldav_request_duration_seconds_count", method="REPORT") == 3
    assert moved("radicale_graph_caldav_request_duration_seconds_sum") > 0
    assert moved("radicale_graph_graph_requests_total", status="200") > 0
    assert moved("radicale_graph_graph_requests_total", operation="list calendars") >= 1
    assert moved("radicale_graph_cache_misses_total") >= 1
    assert moved("radicale_graph_cache_hits_total") >= 1
    assert moved("radicale_graph_delta_rounds_total") >= 1
    assert total(after, "radicale_graph_token_refreshes_total", grant="app") >= 1


def test_throttling_is_counted_with_retry_after(metered):
    gw, address = metered
    calendar = f"{gw.url}/{ALICE[0]}/calendar/"
    session = gw.session(ALICE)
    assert session.request("REPORT", calendar, data=REPORT_BODY,
                           headers={"Depth": "1"}).status_code == 207
    before = scrape(address)
    time.sleep(1.2)  # stale: the next read (or the background refresh) asks calendarView/delta
    gw.emulator.inject_fault(429, count=1, retry_after=1, path_contains="calendarView/delta",
                             method="GET")
    try:
        answer = session.request("REPORT", calendar, data=REPORT_BODY, headers={"Depth": "1"})
        assert answer.status_code == 207
        deadline = time.monotonic() + 10
        while True:  # the background refresh may be the one that met the 429
            after = scrape(address)
            if total(after, "radicale_graph_graph_throttled_total") > total(
                    before, "radicale_graph_graph_throttled_total") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        gw.emulator.clear_faults()

    def moved(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("radicale_graph_graph_throttled_total", status="429") == 1
    assert moved("radicale_graph_graph_retry_after_seconds_count") == 1
    assert moved("radicale_graph_graph_retry_after_seconds_sum") == 1.0
    assert moved("radicale_graph_graph_requests_total", operation="track changes",
                 status="429") == 1


def test_no_label_holds_an_address_path_or_secret(metered):
    gw, address = metered
    gw.session(ALICE).request("PROPFIND", f"{gw.url}/{ALICE[0]}/", headers=PROPFIND_HOME)
    gw.session(("nobody@contoso.com", "wrong")).request("PROPFIND", f"{gw.url}/nobody/")
    samples = scrape(address)
    assert samples
    secrets = (demo.CLIENT_SECRET, "demo", "Bearer", "eyJ")
    allowed = {"method", "status", "operation", "grant", "change_type", "le"}
    for (_name, items) in samples:
        for key, value in items:
            assert key in allowed, key
            assert "@" not in value and "/" not in value, (key, value)
            assert not any(secret in value for secret in secrets), (key, value)


def test_metrics_are_off_by_default_and_registries_are_separate():
    from radicale import config as radicale_config

    from radicale_graph.storage.config import PLUGIN_CONFIG_SCHEMA

    assert PLUGIN_CONFIG_SCHEMA["storage"]["metrics_address"]["value"] == ""
    configuration = radicale_config.load([]).copy(PLUGIN_CONFIG_SCHEMA)
    assert metrics.from_configuration(configuration) is None
    one, two = metrics.GatewayMetrics(), metrics.GatewayMetrics()
    try:
        _, port_one = one.start("127.0.0.1", 0)
        _, port_two = two.start("127.0.0.1", 0)
        one.observe_caldav("GET", 200, 0.01)
        assert total(scrape(f"127.0.0.1:{port_one}"), "radicale_graph_caldav_requests_total") == 1
        assert total(scrape(f"127.0.0.1:{port_two}"), "radicale_graph_caldav_requests_total") == 0
    finally:
        one.stop()
        two.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port_one}/metrics", timeout=2)


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464)),
    ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_parse_address(value, expected):
    assert metrics.parse_address(value) == expected


@pytest.mark.parametrize("value", ["9464", "localhost", ":9464", "host:port", "h:70000"])
def test_parse_address_refuses(value):
    with pytest.raises(ValueError, match="metrics_address"):
        metrics.parse_address(value)


def test_label_values_are_sanitized():
    assert metrics.label("list events") == "list events"
    assert metrics.label("read alice@contoso.com") == "other"
    assert metrics.label("/users/x/events") == "other"
    assert metrics.method_label("propfind") == "PROPFIND"
    assert metrics.method_label("BREW") == "other"
    assert metrics.status_label(207) == "207"
    assert metrics.status_label("ConnectionError") == "ConnectionError"
    assert metrics.status_label("secret value") == "other"


def test_token_refresh_counts_only_identity_platform_tokens():
    m = metrics.GatewayMetrics()
    with metrics.using(m):
        metrics.count_token({"access_token": "x", "token_source": "cache"}, "app")
        metrics.count_token({"access_token": "x", "token_source": "identity_provider"}, "app")
        metrics.count_token({"access_token": "x", "token_source": "identity_provider"},
                            "delegated")
        metrics.count_notification("created")
        metrics.count_notification("nonsense@x")
    value = m.registry.get_sample_value
    assert value("radicale_graph_token_refreshes_total", {"grant": "app"}) == 1
    assert value("radicale_graph_token_refreshes_total", {"grant": "delegated"}) == 1
    assert value("radicale_graph_notifications_total", {"change_type": "created"}) == 1
    assert value("radicale_graph_notifications_total", {"change_type": "other"}) == 1
