"""``radicale-graph check --config FILE`` (issue 13): one line per check, a summary, exit status
0 only when every check passes. Each check's failure is shown against an emulator set up to
fail it (access policy, RBAC for Applications, read-only permission, wrong secret, clock,
state folder, unknown mailbox, redirect URI, delegated scopes, token cache key); the demo
configuration passes and the write probes leave no event behind."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from radicale_graph.cli.check import PROBE_DAY, run_check
from radicale_graph.emulator import demo

from .conftest import free_port
from .test_cli import WRONG_SECRET

COMMAND = [sys.executable, "-m", "radicale_graph.cli", "check", "--config"]
OTHER_APP = "5a0c2e7d-3b4f-4e1a-9c8d-7f6e5d4c3b2a"
OTHER_SECRET = "check-test-app-secret-value"
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
ROOM = "room-adams@contoso.com"


def run(config) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = run_check(str(config), out)
    text = out.getvalue()
    assert demo.CLIENT_SECRET not in text and OTHER_SECRET not in text
    return status, text.splitlines()


def line(lines: list[str], start: str) -> str:
    found = [x for x in lines if x.startswith(start)]
    assert len(found) == 1, f"no single line starting {start!r} in:\n" + "\n".join(lines)
    return found[0]


def demo_config(emu, folder, **storage):
    """The demo's configuration for ``emu`` with ``[storage]`` options added or replaced
    (with ``mode`` delegated or both it also gets a token cache key and a public_url)."""
    from radicale_graph.cli.demo import write_demo_files

    return write_demo_files(str(folder), host="127.0.0.1", port=free_port(),
                            authority=emu.authority_host, graph_url=emu.graph_url,
                            ca_file=emu.ca_file,
                            storage_options={k: str(v) for k, v in storage.items()})


def app_config(emu, tmp_path, **storage):
    """The demo configuration, but as the app ``OTHER_APP`` (registered by the test)."""
    secret = tmp_path / "other_secret"
    secret.write_text(OTHER_SECRET, encoding="utf-8")
    return demo_config(emu, tmp_path, client_id=OTHER_APP, client_secret_file=secret, **storage)


def probe_events(emu) -> int:
    return sum(1 for box in (ALICE, BOB, ROOM) for rec in emu.store.records(box, None)
               if str(rec.data.get("subject", "")).startswith("radicale-graph check"))


def test_clean_demo_run_exits_0(emu, tmp_path):
    config = demo_config(emu, tmp_path)
    done = subprocess.run([*COMMAND, str(config)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert not done.stderr.strip()
    assert line(lines, "ok   config:")
    assert line(lines, "ok   state folder:").endswith("is writable")
    assert line(lines, "ok   token: roles Calendars.ReadWrite")
    for box in demo.USERS:
        assert "created and deleted" in line(lines, f"ok   mailbox {box}:")
    for room in demo.ROOMS:
        assert PROBE_DAY in line(lines, f"ok   room {room}:")
    assert line(lines, "ok   clock: within")
    assert lines[-1].startswith("summary: ") and "all checks passed" in lines[-1]
    assert all(x.startswith(("ok   ", "summary: ")) for x in lines), lines
    assert demo.CLIENT_SECRET not in done.stdout


def test_write_probe_leaves_nothing_behind(emu, tmp_path):
    status, lines = run(demo_config(emu, tmp_path))
    assert status == 0
    assert line(lines, f"ok   mailbox {ALICE}").count("transactionId radicale-graph-check-") == 1
    assert probe_events(emu) == 0
    posts = [r for r in emu.request_log if r.method == "POST" and r.path.endswith("/events")]
    deletes = [r for r in emu.request_log if r.method == "DELETE"]
    assert posts and len(deletes) >= len(posts)


def test_clean_run_in_mode_both(emu, tmp_path):
    status, lines = run(demo_config(emu, tmp_path, mode="both"))
    assert status == 0, lines
    assert "is registered on the app" in line(lines, "ok   redirect URI: http://127.0.0.1:")
    assert "/.signin/callback" in line(lines, "ok   redirect URI:")
    assert line(lines, "ok   delegated scopes:")
    assert line(lines, "ok   token cache:")


def test_mailbox_outside_access_policy(emu, tmp_path):
    emu.register_app(OTHER_APP, secret=OTHER_SECRET, allowed_mailboxes={ALICE})
    status, lines = run(app_config(emu, tmp_path))
    assert status == 1
    assert line(lines, f"ok   mailbox {ALICE}")
    bad = line(lines, f"FAIL mailbox {BOB}")
    assert "403 ErrorAccessDenied — the app's access policy excludes it" in bad
    assert f"New-ApplicationAccessPolicy -AppId {OTHER_APP} -PolicyScopeGroupId" in bad
    assert "-AccessRight RestrictAccess" in bad
    assert f"Test-ApplicationAccessPolicy -Identity {BOB} -AppId {OTHER_APP}" in bad
    assert line(lines, f"FAIL room {ROOM}")
    assert "3 failed" in lines[-1]


def test_rbac_for_applications_missing_for_rooms(emu, tmp_path):
    emu.register_app(OTHER_APP, secret=OTHER_SECRET, roles=[],
                     rbac={"Application Calendars.ReadWrite": {ALICE, BOB}})
    status, lines = run(app_config(emu, tmp_path))
    assert status == 1
    assert "roles none: no tenant-wide Calendars application permission" in line(
        lines, "ok   token:")
    assert line(lines, f"ok   mailbox {ALICE}") and line(lines, f"ok   mailbox {BOB}")
    bad = line(lines, f"FAIL room {ROOM}")
    assert "no RBAC for Applications assignment" in bad
    assert "New-ManagementScope -Name radicale-graph-rooms -RecipientRestrictionFilter " \
           "\"RecipientTypeDetails -eq 'RoomMailbox'\"" in bad
    assert (f"New-ManagementRoleAssignment -App {OTHER_APP} -Role \"Application "
            "Calendars.ReadWrite\" -CustomResourceScope radicale-graph-rooms") in bad
    assert f"Test-ServicePrincipalAuthorization -Identity {OTHER_APP} -Resource {ROOM}" in bad
    assert f"New-ServicePrincipal -AppId {OTHER_APP} -ObjectId " in bad


def test_read_only_permission(emu, tmp_path):
    emu.register_app(OTHER_APP, secret=OTHER_SECRET, roles=["Calendars.Read"])
    status, lines = run(app_config(emu, tmp_path))
    assert status == 1
    assert "read-only" in line(lines, "ok   token: roles Calendars.Read:")
    bad = line(lines, f"FAIL mailbox {ALICE}")
    assert bad.startswith(f"FAIL mailbox {ALICE}: read ok, write refused: 403 ErrorAccessDenied")
    assert "Calendars.Read but not Calendars.ReadWrite" in bad
    assert "New-ManagementRoleAssignment" in bad
    assert probe_events(emu) == 0


def test_wrong_secret(emu, tmp_path):
    config = demo_config(emu, tmp_path)
    (tmp_path / "client_secret").write_text(WRONG_SECRET, encoding="utf-8")
    status, lines = run(config)
    assert status == 1
    assert "AADSTS7000215" in line(lines, "FAIL token:")
    assert all(WRONG_SECRET not in x for x in lines)
    assert not [x for x in lines if x.startswith(("ok   mailbox", "FAIL mailbox"))]


@pytest.mark.parametrize("offset, level, words", [
    (900, "FAIL", "15 min behind Microsoft's"),
    (-900, "FAIL", "15 min ahead of Microsoft's"),
    (60, "warn", "s behind Microsoft's"),
])
def test_clock_skew(emu, tmp_path, offset, level, words):
    emu.identity.clock_offset = offset
    try:
        status, lines = run(demo_config(emu, tmp_path))
    finally:
        emu.identity.clock_offset = 0.0
    clock = line(lines, f"{level:<4} clock:")
    assert words in clock, clock
    # Graph still takes the token (the emulator checks it against its own clock): only the
    # clock check fails.
    if level == "FAIL":
        assert "NTP" in clock and status == 1 and ", 1 failed" in lines[-1]
    else:
        assert status == 0


def test_clock_skew_from_token_alone(emu, tmp_path):
    """No mailbox answers (all refused): the token's nbf still shows a clock behind."""
    emu.register_app(OTHER_APP, secret=OTHER_SECRET, allowed_mailboxes=set())
    emu.identity.clock_offset = 1200
    try:
        status, lines = run(app_config(emu, tmp_path))
    finally:
        emu.identity.clock_offset = 0.0
    assert "the token's nbf" in line(lines, "FAIL clock:")
    assert status == 1


def test_state_folder_not_writable(emu, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status, lines = run(demo_config(emu, tmp_path, state_folder=blocker / "state"))
    assert status == 1
    bad = line(lines, "FAIL state folder:")
    assert "is not writable" in bad and "state_folder" in bad


def test_unknown_mailbox(emu, tmp_path):
    status, lines = run(demo_config(emu, tmp_path, mailboxes="nobody@contoso.com, " + ALICE))
    assert status == 1
    bad = line(lines, "FAIL mailbox nobody@contoso.com:")
    assert "404" in bad and "no Exchange Online mailbox" in bad and "[storage] mailboxes" in bad


def test_redirect_uri_not_registered(emu, tmp_path):
    status, lines = run(demo_config(emu, tmp_path, mode="both",
                                    public_url="https://calendar.example.org"))
    assert status == 1
    bad = line(lines, "FAIL redirect URI:")
    assert "AADSTS50011" in bad and "https://calendar.example.org/.signin/callback" in bad
    assert "Authentication" in bad


def test_delegated_scopes_without_offline_access(emu, tmp_path):
    status, lines = run(demo_config(emu, tmp_path, mode="delegated",
                                    delegated_scopes="Calendars.ReadWrite.Shared"))
    assert status == 1
    assert "offline_access" in line(lines, "FAIL delegated scopes:")
    # Mode delegated serves no mailbox with the app-only token: no mailbox lines.
    assert not [x for x in lines if " mailbox " in x[:14] or x[5:].startswith("room ")]
    assert "client credentials accepted" in line(lines, "ok   token:")


def test_token_cache_with_another_key(emu, tmp_path):
    from cryptography.fernet import Fernet

    from radicale_graph.storage.storage import TOKEN_CACHE_FILE

    config = demo_config(emu, tmp_path, mode="both")
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / TOKEN_CACHE_FILE).write_bytes(Fernet(Fernet.generate_key()).encrypt(b"{}"))
    status, lines = run(config)
    assert status == 1
    assert "does not decrypt with the configured key" in line(lines, "FAIL token cache:")


def test_unreadable_config(tmp_path):
    status, lines = run(tmp_path / "missing.conf")
    assert status == 1
    assert line(lines, "FAIL config:")
    assert lines[-1].startswith("summary: 1 checks")


@pytest.mark.parametrize("echo", [True, False])
def test_notification_handshake(emu, tmp_path, echo):
    """A stand-in for the gateway's /.notifications endpoint: echoing validationToken passes,
    anything else fails."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs, urlsplit

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - stdlib hook
            token = parse_qs(urlsplit(self.path).query).get("validationToken", [""])[0]
            body = (token if echo else "hello").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    import ssl

    server = HTTPServer(("127.0.0.1", 0), Echo)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(emu.certfile, emu.keyfile)  # trusted through [storage] ca_file
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/.notifications"
    try:
        status, lines = run(demo_config(emu, tmp_path, notification_url=url))
    finally:
        server.shutdown()
    if echo:
        assert "answers Graph's validation handshake" in line(lines, "ok   notifications:")
        assert status == 0
    else:
        assert "not the validationToken" in line(lines, "FAIL notifications:")
        assert status == 1
