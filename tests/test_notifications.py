"""Graph change notifications (radicale_graph/storage/notifications.py, web/notifications.py,
emulator/subscriptions.py): a change in Outlook reaches a CalDAV sync-collection within
seconds although refresh_interval is long; subscriptions are validated, renewed before expiry,
recreated when lost; forged notifications change nothing.

The gateway serves TLS ([server] ssl), as Graph delivers to https URLs only
(api/resources/subscription.md, notificationUrl); the emulator trusts its certificate."""

from __future__ import annotations

import json
import re
import time
from xml.etree import ElementTree as ET

import pytest
import requests

from radicale_graph.emulator import Emulator, certs
from radicale_graph.emulator.subscriptions import MAX_MINUTES
from radicale_graph.storage import notifications

from .conftest import ALICE, free_port, serve_config_file

SLOW_POLL = 30.0  # refresh_interval with notifications: polling cannot explain a fast change
POLL = 2.0  # refresh_interval of the gateway without notifications
SYNC = """<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>
<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"""


class TlsGateway:
    def __init__(self, url, cafile, stop):
        self.url, self.cafile, self.stop = url, cafile, stop

    def request(self, method, path, **kwargs):
        kwargs.setdefault("auth", ALICE)
        return requests.request(method, self.url + path, verify=self.cafile, timeout=30,
                                **kwargs)


def start_tls_gateway(emulator, folder, certfile, keyfile, notify: bool, **storage_options):
    """The gateway on https://127.0.0.1:<port> ([server] ssl = True, the given certificate);
    with ``notify`` its notification_url is its own /.notifications."""
    from radicale_graph.cli.demo import write_demo_files

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    if notify:
        storage_options["notification_url"] = f"https://127.0.0.1:{port}/.notifications"
    path = write_demo_files(str(folder), host="127.0.0.1", port=port,
                            authority=emulator.authority_host, graph_url=emulator.graph_url,
                            ca_file=emulator.ca_file,
                            storage_options={k: str(v) for k, v in storage_options.items()})
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace("[server]\n", f"[server]\nssl = True\ncertificate = {certfile}\n"
                                      f"key = {keyfile}\n", 1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    stop_serving = serve_config_file(path, port)

    def stop():
        for manager in list(notifications.MANAGERS):
            if f":{port}/" in manager.url:
                manager.stop()
        stop_serving()

    return TlsGateway(f"https://127.0.0.1:{port}", certfile, stop)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notifications")
    certfile, keyfile = certs.self_signed(folder / "tls")
    emulator = Emulator(load_demo=True, notification_ca_file=certfile)
    emulator.start()
    on = start_tls_gateway(emulator, folder / "on", certfile, keyfile, True,
                           refresh_interval=SLOW_POLL)
    yield emulator, on, None
    on.stop()
    emulator.stop()
    notifications.clock_offset = 0.0


@pytest.fixture(params=["off", "failing"])
def polling(tmp_path, request):
    """A gateway on an emulator of its own (its polling must not show in the other
    emulator's request_log): without notification_url, or with one Graph cannot validate
    (the emulator does not trust the gateway's certificate)."""
    certfile, keyfile = certs.self_signed(tmp_path / "tls")
    failing = request.param == "failing"
    emulator = Emulator(load_demo=True, notification_ca_file=None if failing else certfile)
    emulator.start()
    off = start_tls_gateway(emulator, tmp_path / "off", certfile, keyfile, failing,
                            refresh_interval=POLL)
    if failing:
        wait_for(lambda: any(not d.ok for d in emulator.subscriptions.deliveries))
    yield emulator, off
    off.stop()
    emulator.stop()


def manager_of(gateway):
    return next(m for m in notifications.MANAGERS if m.url.startswith(gateway.url + "/"))


def wait_for(predicate, seconds=10.0, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


def alice_sub(emulator):
    subs = emulator.subscriptions.active(ALICE[0])
    return subs[0] if len(subs) == 1 else None


def settled(emulator, gateway):
    """Alice's subscription once the gateway knows it too."""
    manager = manager_of(gateway)
    return wait_for(lambda: (s := alice_sub(emulator)) and manager.subscription_id(ALICE[0])
                    == s.id and s)


def sync(gateway, token=""):
    answer = gateway.request("REPORT", f"/{ALICE[0]}/calendar/", data=SYNC.format(token=token),
                             headers={"Depth": "1", "Content-Type": "application/xml"})
    assert answer.status_code == 207, answer.text
    new = ET.fromstring(answer.content).find("{DAV:}sync-token").text
    changed = re.findall(r"<(?:D:)?href>([^<]+\.ics)</(?:D:)?href>", answer.text)
    return new, changed


def an_event(emulator):
    return next(r for r in emulator.store.records(ALICE[0], None)
                if not r.data.get("recurrence"))


def latency(emulator, gateway, subject):
    """Seconds from an Outlook change to a sync-collection that reports it."""
    token, _ = sync(gateway)  # read once: the calendar is watched
    time.sleep(0.5)
    record = an_event(emulator)
    started = time.monotonic()
    emulator.store.update_event(ALICE[0], record.id, {"subject": subject})
    while time.monotonic() - started < 10:
        token, changed = sync(gateway, token)
        if changed:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("the change never showed")


def test_subscriptions_are_validated_and_within_graph_limits(setup):
    emulator, on, _ = setup
    sub = wait_for(lambda: alice_sub(emulator))
    assert sub.resource == f"users/{ALICE[0]}/events"
    assert set(sub.change_types) == {"created", "updated", "deleted"}
    assert sub.notification_url == sub.lifecycle_url == on.url + "/.notifications"
    assert sub.client_state and len(sub.client_state) <= 128
    assert sub.expires <= emulator.identity.now() + MAX_MINUTES * 60
    validations = [d for d in emulator.subscriptions.deliveries if d.kind == "validation"]
    assert validations and all(d.ok and d.seconds < 10 for d in validations)
    # Every served mailbox has one.
    served = set(manager_of(on)._subs)
    wait_for(lambda: {s.mailbox for s in emulator.subscriptions.active()} == served)


def test_http_notification_urls_are_refused_by_graph(setup):
    emulator, _, _ = setup
    from radicale_graph.emulator.errors import GraphError
    from radicale_graph.emulator.graph_api import Request

    body = json.dumps({"changeType": "updated", "notificationUrl": "http://127.0.0.1:1/x",
                       "resource": f"users/{ALICE[0]}/events",
                       "expirationDateTime": "2999-01-01T00:00:00Z"}).encode()
    req = Request("POST", ["subscriptions"], {}, {}, body, {"appid": "x"}, emulator.graph_url)
    with pytest.raises(GraphError) as info:
        emulator.subscriptions.handle(req)
    assert info.value.status == 400


def test_an_outlook_change_reaches_sync_collection_within_2_seconds(setup):
    emulator, on, _ = setup
    settled(emulator, on)
    seconds = latency(emulator, on, "Moved in Outlook (notified)")
    print(f"\nlatency with notifications: {seconds:.3f} s (refresh_interval {SLOW_POLL} s)")
    assert seconds < 2.0


def test_without_notifications_polling_shows_it_within_refresh_interval(polling):
    emulator, off = polling
    assert not emulator.subscriptions.active()
    seconds = latency(emulator, off, "Moved in Outlook (polled)")
    print(f"\nlatency by polling: {seconds:.3f} s (refresh_interval {POLL} s)")
    assert seconds <= POLL + 0.5


def test_forged_notifications_change_nothing(setup):
    emulator, on, _ = setup
    sub = settled(emulator, on)
    sync(on)
    manager = manager_of(on)
    time.sleep(1.2)  # past the hint interval of earlier tests
    before, hints = len(emulator.request_log), manager.counts["hints"]
    forged = {"value": [
        {"subscriptionId": sub.id, "clientState": "guessed", "changeType": "updated",
         "resource": "Users/x/Events/y", "tenantId": emulator.identity.tenant_id},
        {"subscriptionId": "00000000-0000-0000-0000-000000000000",
         "clientState": sub.client_state, "changeType": "updated"},
        {"subscriptionId": sub.id, "lifecycleEvent": "subscriptionRemoved"}]}
    answer = on.request("POST", "/.notifications", data=json.dumps(forged), auth=None,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 202
    time.sleep(1.5)
    assert len(emulator.request_log) == before, emulator.request_log[before:]
    assert manager.counts["hints"] == hints
    assert alice_sub(emulator).id == sub.id  # the forged "removed" recreated nothing


def test_genuine_notifications_are_rate_limited_per_mailbox(setup):
    emulator, on, _ = setup
    sub = settled(emulator, on)
    sync(on)
    manager = manager_of(on)
    time.sleep(1.2)
    hints = manager.counts["hints"]
    item = {"subscriptionId": sub.id, "clientState": sub.client_state, "changeType": "updated"}
    for _ in range(10):
        on.request("POST", "/.notifications", data=json.dumps({"value": [item]}), auth=None)
    time.sleep(1.5)
    assert manager.counts["hints"] - hints == 2  # one at once, the rest coalesced into one


def test_validation_answers_the_token(setup):
    _, on, _ = setup
    token = "Validation: Testing client application reachability for subscription a&b=c"
    answer = on.request("POST", "/.notifications", params={"validationToken": token},
                        auth=None)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == token


def test_a_removed_subscription_is_recreated(setup):
    emulator, on, _ = setup
    old = settled(emulator, on)
    emulator.subscriptions.remove(old.id, "subscriptionRemoved")
    new = wait_for(lambda: (s := alice_sub(emulator)) and s.id != old.id and s)
    assert new.client_state != old.client_state


def test_a_missed_subscription_is_recreated(setup):
    emulator, on, _ = setup
    old = settled(emulator, on)
    emulator.subscriptions.remove(old.id, "missed")  # lost; Graph says notifications missed
    wait_for(lambda: (s := alice_sub(emulator)) and s.id != old.id and s)


def test_reauthorization_required_renews(setup):
    emulator, on, _ = setup
    sub = settled(emulator, on)
    start = len(emulator.request_log)
    emulator.subscriptions.lifecycle(sub.id, "reauthorizationRequired")
    wait_for(lambda: any(r.method == "PATCH" and r.path == f"/v1.0/subscriptions/{sub.id}"
                         and r.status == 200 for r in emulator.request_log[start:]))


def test_renewal_happens_before_expiry(setup):
    emulator, on, _ = setup
    sub = settled(emulator, on)
    left = sub.expires - emulator.identity.now()
    # Time passes on both sides until 12 hours are left: less than the renewal margin (one
    # day), more than Graph's reauthorization window (3 hours): the gateway's own timer.
    step = left - 12 * 3600
    start = len(emulator.request_log)
    emulator.advance_clock(step)
    notifications.clock_offset += step
    wait_for(lambda: any(r.method == "PATCH" and r.path == f"/v1.0/subscriptions/{sub.id}"
                         and r.status == 200 for r in emulator.request_log[start:]))
    renewed = alice_sub(emulator)
    assert renewed.id == sub.id and not emulator.subscriptions.expired
    assert renewed.expires - emulator.identity.now() > 6 * 24 * 3600
    # Notifications still flow after the renewal.
    seconds = latency(emulator, on, "Moved after renewal")
    assert seconds < 2.0
