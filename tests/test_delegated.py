"""Delegated mode end to end: sign in with Microsoft on the gateway's page (driven by HTTP
through the emulator's sign-in form), get an app password, use it with the caldav library.

The gateway runs with ``[storage] mode = both`` (as ``radicale-graph demo`` does): Alice signs
in and is served with her own token (``/me``); Bob's htpasswd login keeps the app-only token.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sqlite3
import time
import uuid
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin

import caldav
import pytest
import requests
from cryptography.fernet import Fernet

from radicale_graph.emulator import demo
from radicale_graph.storage import storage as storage_module

from .conftest import BOB, start_gateway

ALICE_UPN = "alice@contoso.com"


class _Page(HTMLParser):
    """Elements by id (their text), links by id, and the first form (action, inputs)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.form_action: str | None = None
        self.inputs: dict[str, str] = {}
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("id"):
            self.links[attrs["id"]] = attrs.get("href") or ""
        if tag == "form" and self.form_action is None:
            self.form_action = attrs.get("action") or ""
        if tag == "input" and attrs.get("name"):
            self.inputs.setdefault(attrs["name"], attrs.get("value") or "")
        self._open.append(attrs.get("id") or "")

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open and self._open[-1]:
            self.texts[self._open[-1]] = self.texts.get(self._open[-1], "") + data


def sign_in(gateway_url: str, emulator, upn: str = ALICE_UPN,
            password: str | None = None) -> tuple[requests.Session, str]:
    """Sign ``upn`` in through the gateway's page and the emulator's form, by HTTP only.
    Returns (the browser session with the gateway's cookie, the app password shown)."""
    browser = requests.Session()
    browser.verify = emulator.ca_file
    page = browser.get(f"{gateway_url}/.signin/", timeout=30)
    assert page.status_code == 200, page.text
    start = urljoin(page.url, _Page(page.text).links["signin"])
    answer = browser.get(start, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    authorize = answer.headers["Location"]
    assert authorize.startswith(emulator.authority_host), authorize
    form_page = browser.get(authorize, timeout=30)
    assert form_page.status_code == 200, form_page.text
    form = _Page(form_page.text)
    fields = dict(form.inputs, loginfmt=upn,
                  passwd=password or demo.USER_PASSWORDS[upn])
    posted = browser.post(urljoin(form_page.url, form.form_action or form_page.url),
                          data=fields, allow_redirects=False, timeout=30)
    assert posted.status_code in (302, 303), posted.text[:500]
    callback = posted.headers["Location"]
    assert callback.startswith(f"{gateway_url}/.signin/callback?"), callback
    shown = browser.get(callback, timeout=30)
    assert shown.status_code == 200, shown.text
    result = _Page(shown.text)
    assert result.texts["login"].strip() == upn
    assert result.texts["caldav-url"].strip() == f"{gateway_url}/{upn}/"
    return browser, result.texts["app-password"].strip()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a record that does not format is no secret either
            pass


@pytest.fixture(scope="module")
def records():
    handler = _Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture(scope="module")
def delegated(emu, tmp_path_factory, records):
    """The gateway in mode both on a fresh emulator: (url, the storage's DelegatedTokens, the
    state folder, the key file)."""
    made = []

    class Recorded(storage_module.DelegatedTokens):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    folder = tmp_path_factory.mktemp("delegated")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(storage_module, "DelegatedTokens", Recorded)
        gw, stop = start_gateway(emu, folder, mode="both", refresh_interval=1)
        yield gw.url, made, folder / "state", folder / "token.key"
        stop()


def _calendar(url: str, upn: str, password: str):
    client = caldav.DAVClient(url=f"{url}/{upn}/", username=upn, password=password)
    calendars = client.principal().calendars()
    default = next(c for c in calendars if c.url.path.rstrip("/").endswith("/calendar"))
    return client, default


def _event(subject: str, day: dt.date) -> str:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uuid.uuid4()}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART:{day:%Y%m%d}T100000Z\r\nDTEND:{day:%Y%m%d}T110000Z\r\n"
            f"SUMMARY:{subject}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def _graph_subjects(graph, upn: str) -> set[str]:
    body = graph("GET", f"/users/{upn}/events", params={"$select": "subject", "$top": "999"})
    assert body.status_code == 200, body.text
    return {e["subject"] for e in body.json()["value"]}


def test_signin_then_caldav_read_and_write_with_app_password(delegated, emu, graph):
    url, _, _, _ = delegated
    _, password = sign_in(url, emu)
    _, calendar = _calendar(url, ALICE_UPN, password)
    before = calendar.events()
    assert before, "Alice's demo calendar has events"
    day = dt.date.today() + dt.timedelta(days=3)
    calendar.save_event(_event("Written with an app password", day))
    assert "Written with an app password" in _graph_subjects(graph, ALICE_UPN)
    assert len(calendar.events()) == len(before) + 1


def test_delegated_person_sees_only_own_mailbox(delegated, emu):
    url, _, _, _ = delegated
    _, password = sign_in(url, emu)
    auth = (ALICE_UPN, password)
    root = requests.request("PROPFIND", f"{url}/", auth=auth, headers={"Depth": "1"},
                            timeout=30)
    assert root.status_code == 207
    hrefs = {unquote(h) for h in re.findall(r"<href>([^<]*)</href>", root.text)}
    assert f"/{ALICE_UPN}/" in hrefs, root.text
    assert not any("bob@" in h or "room-" in h for h in hrefs)
    other = requests.request("PROPFIND", f"{url}/bob@contoso.com/", auth=auth,
                             headers={"Depth": "1"}, timeout=30)
    assert other.status_code == 403, other.text


def test_htpasswd_logins_keep_app_only_access_in_mode_both(delegated):
    url, _, _, _ = delegated
    answer = requests.request("PROPFIND", f"{url}/bob@contoso.com/", auth=BOB,
                              headers={"Depth": "1"}, timeout=30)
    assert answer.status_code == 207, answer.text
    # App-only: the room's calendar is in Bob's own home, by its "My Organization" role.
    assert "/bob@contoso.com/room-adams@contoso.com~calendar/" in unquote(answer.text)
    elsewhere = requests.request("PROPFIND", f"{url}/room-adams@contoso.com/", auth=BOB,
                                 headers={"Depth": "1"}, timeout=30)
    assert elsewhere.status_code == 403, elsewhere.text
    assert "/bob@contoso.com/" in elsewhere.text
    wrong = requests.request("PROPFIND", f"{url}/bob@contoso.com/", auth=(BOB[0], "nope"),
                             headers={"Depth": "0"}, timeout=30)
    assert wrong.status_code == 401


def test_token_cache_file_holds_no_token_in_clear(delegated, emu):
    url, _, state, key_file = delegated
    sign_in(url, emu)
    raw = (state / storage_module.TOKEN_CACHE_FILE).read_bytes()
    plain = json.loads(Fernet(key_file.read_text().strip().encode()).decrypt(raw))
    secrets_ = [entry["secret"] for kind in ("AccessToken", "RefreshToken", "IdToken")
                for entry in plain.get(kind, {}).values()]
    assert any(True for _ in plain.get("RefreshToken", {})), "a refresh token is cached"
    for secret in secrets_:
        assert secret.encode() not in raw
    for marker in (b"eyJ", b"access_token", b"refresh_token", b"secret", b"RefreshToken"):
        assert marker not in raw


def test_app_passwords_are_stored_hashed(delegated, emu):
    url, _, state, _ = delegated
    _, password = sign_in(url, emu)
    path = state / "app-passwords.sqlite3"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT upn, hash FROM app_passwords").fetchall()
    assert rows and all(h.startswith("$argon2id$") for _, h in rows)
    assert {u for u, _ in rows} == {ALICE_UPN}
    secret = password.split("-", 1)[1]
    for name in os.listdir(state):
        if name.startswith("app-passwords"):
            assert secret.encode() not in (state / name).read_bytes()


def test_revoked_app_password_gets_401_at_once(delegated, emu):
    url, _, _, _ = delegated
    browser, password = sign_in(url, emu)
    auth = (ALICE_UPN, password)
    ok = requests.request("PROPFIND", f"{url}/{ALICE_UPN}/", auth=auth,
                          headers={"Depth": "0"}, timeout=30)
    assert ok.status_code == 207
    listing = browser.get(f"{url}/.signin/passwords", timeout=30)
    assert listing.status_code == 200
    key_id = password.split("-", 1)[0]
    assert f'id="pw-{key_id}"' in listing.text
    assert "never" not in listing.text.split(f'id="pw-{key_id}"')[1].split("</tr>")[0]
    csrf = _Page(listing.text).inputs["csrf"]
    revoked = browser.post(f"{url}/.signin/passwords",
                           data={"csrf": csrf, "action": "revoke", "id": key_id},
                           allow_redirects=False, timeout=30)
    assert revoked.status_code == 303
    refused = requests.request("PROPFIND", f"{url}/{ALICE_UPN}/", auth=auth,
                               headers={"Depth": "0"}, timeout=30)
    assert refused.status_code == 401
    # Without the session cookie the page refuses to list or revoke.
    assert requests.get(f"{url}/.signin/passwords", timeout=30).status_code == 401


def test_silent_refresh_keeps_the_rotated_refresh_token(delegated, emu, graph):
    """Each refresh rotates the refresh token (the emulator refuses a replaced one): two
    refreshes in a row only work when the gateway stored the replacement (encrypted)."""
    url, made, state, _ = delegated
    _, password = sign_in(url, emu)
    cache_file = state / storage_module.TOKEN_CACHE_FILE
    for round_ in range(3):
        before = cache_file.read_bytes()
        for source in made:
            source.drop_access_tokens(ALICE_UPN)
        day = dt.date.today() + dt.timedelta(days=6 + round_)
        answer = requests.put(f"{url}/{ALICE_UPN}/calendar/{uuid.uuid4()}.ics",
                              data=_event(f"After refresh {round_}", day).encode(),
                              headers={"Content-Type": "text/calendar"},
                              auth=(ALICE_UPN, password), timeout=30)
        assert answer.status_code == 201, answer.text
        assert cache_file.read_bytes() != before, "the rotated refresh token was saved"
    assert {f"After refresh {n}" for n in range(3)} <= _graph_subjects(graph, ALICE_UPN)


def test_revoked_refresh_token_names_the_signin_page_and_writes_nothing(
        delegated, emu, graph, records):
    url, made, state, key_file = delegated
    _, password = sign_in(url, emu)
    raw = (state / storage_module.TOKEN_CACHE_FILE).read_bytes()
    plain = json.loads(Fernet(key_file.read_text().strip().encode()).decrypt(raw))
    tokens = [entry["secret"] for kind in ("AccessToken", "RefreshToken")
              for entry in plain.get(kind, {}).values()]
    _, calendar = _calendar(url, ALICE_UPN, password)
    assert emu.revoke_refresh_tokens(ALICE_UPN) >= 1
    # Access tokens stay valid until they expire (refresh-tokens.md): let them expire.
    for source in made:
        source.drop_access_tokens(ALICE_UPN)
    day = dt.date.today() + dt.timedelta(days=4)
    answer = requests.put(f"{url}/{ALICE_UPN}/calendar/{uuid.uuid4()}.ics",
                          data=_event("Must not be written", day).encode(),
                          headers={"Content-Type": "text/calendar"},
                          auth=(ALICE_UPN, password), timeout=30)
    assert answer.status_code == 403, answer.text
    assert f"{url}/.signin/" in answer.text and "sign in again" in answer.text
    assert "Must not be written" not in _graph_subjects(graph, ALICE_UPN)
    read = requests.request("PROPFIND", f"{url}/{ALICE_UPN}/", auth=(ALICE_UPN, password),
                            headers={"Depth": "1"}, timeout=30)
    assert read.status_code == 403 and "/.signin/" in read.text
    time.sleep(1.2)  # past refresh_interval: the calendar's cache needs Graph again
    feed = requests.get(f"{url}/{ALICE_UPN}/calendar/", auth=(ALICE_UPN, password),
                        timeout=30)
    assert feed.status_code == 403 and f"{url}/.signin/" in feed.text, feed.text
    # Signing in again restores access.
    _, fresh = sign_in(url, emu)
    again = requests.request("PROPFIND", f"{url}/{ALICE_UPN}/", auth=(ALICE_UPN, fresh),
                             headers={"Depth": "1"}, timeout=30)
    assert again.status_code == 207
    secrets_ = [password, fresh, demo.CLIENT_SECRET, demo.USER_PASSWORDS[ALICE_UPN], *tokens]
    assert records.lines, "log lines were captured"
    for line in records.lines:
        for secret in secrets_:
            assert secret not in line, f"a secret appears in the log line {line[:120]!r}"


def test_key_and_cache_errors_name_the_source_never_the_key(tmp_path, monkeypatch):
    from radicale_graph.graph.delegated import EncryptedTokenCache, generate_key, load_key

    monkeypatch.delenv("RADICALE_GRAPH_TOKEN_KEY", raising=False)
    with pytest.raises(ValueError, match="token_cache_key_file"):
        load_key(None)
    bad = tmp_path / "bad.key"
    bad.write_text("not-a-key-value\n")
    with pytest.raises(ValueError, match="does not hold a Fernet key") as caught:
        load_key(str(bad))
    assert "not-a-key-value" not in str(caught.value)
    key = generate_key()
    monkeypatch.setenv("RADICALE_GRAPH_TOKEN_KEY", key)
    assert load_key(None) == key.encode()
    cache = EncryptedTokenCache(str(tmp_path / "cache"), key.encode())
    cache.has_state_changed = True
    cache.save()
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="does not decrypt"):
        EncryptedTokenCache(str(tmp_path / "cache"), generate_key().encode()).load()


def test_mode_option_is_checked():
    from radicale import config as radicale_config

    from radicale_graph.storage import config as plugin_config

    configuration = radicale_config.load().copy(plugin_config.PLUGIN_CONFIG_SCHEMA)
    configuration.update({"storage": {"tenant_id": "t", "client_id": "c",
                                      "client_secret": "s", "mode": "sometimes"}}, "test",
                         privileged=True)
    with pytest.raises(ValueError, match="mode must be one of app, delegated, both"):
        plugin_config.read(configuration)
