"""Shared fixtures: the Graph emulator and the gateway on loopback, as `radicale-graph demo`
runs them."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ALICE = ("alice@contoso.com", "demo")
BOB = ("bob@contoso.com", "demo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Gateway:
    url: str
    emulator: object

    def session(self, auth=ALICE) -> requests.Session:
        session = requests.Session()
        session.auth = auth
        return session


def start_gateway(emulator, folder: Path, **storage_options) -> tuple[Gateway, callable]:
    """Start the gateway (Radicale + plugin + GatewayApplication) on a free loopback port."""
    from radicale_graph.cli.demo import write_demo_files

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    path = write_demo_files(str(folder), host="127.0.0.1", port=port,
                            authority=emulator.authority_host, graph_url=emulator.graph_url,
                            ca_file=emulator.ca_file,
                            storage_options={k: str(v) for k, v in storage_options.items()})
    stop = serve_config_file(path, port)
    return Gateway(url=f"http://127.0.0.1:{port}", emulator=emulator), stop


def serve_config_file(path: str, port: int):
    """Serve the Radicale configuration ``path`` (listening on loopback ``port``) in a
    thread until the returned ``stop()`` is called; raises RuntimeError if it does not
    listen within 15 s."""
    from radicale import config as radicale_config

    from radicale_graph.cli.gateway import serve

    configuration = radicale_config.load([(path, False)])
    stop_reader, stop_writer = socket.socketpair()
    thread = threading.Thread(target=serve, args=(configuration, None, stop_writer),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError("gateway did not start")

    def stop():
        stop_reader.close()
        thread.join(10)

    return stop


def outlook_event(emulator, subject: str, day: str, mailbox: str = "alice@contoso.com"):
    """Create a one-hour event in ``mailbox``'s default calendar as Outlook would (directly
    in the emulator's store); ``day`` is ``YYYY-MM-DD`` (09:00-10:00 UTC)."""
    return emulator.store.create_event(mailbox, None, {
        "subject": subject,
        "start": {"dateTime": f"{day}T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"}})


@pytest.fixture(scope="session")
def emulator():
    from radicale_graph.emulator import Emulator

    emu = Emulator(load_demo=True)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def gateway(emulator, tmp_path_factory):
    gw, stop = start_gateway(emulator, tmp_path_factory.mktemp("gateway"),
                             refresh_interval=1)
    yield gw
    stop()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing beside the project (looked in {SHARED})")
    return SHARED


# -- the emulator on its own, for tests of its HTTPS API (module-scoped: one per file) --------
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]


@pytest.fixture(scope="module")
def emu():
    """A fresh demo emulator for one test module."""
    from radicale_graph.emulator import Emulator

    with pytest.MonkeyPatch.context() as mp:
        # requests lets these override Session.verify, which msal uses for `verify=`.
        mp.delenv("REQUESTS_CA_BUNDLE", raising=False)
        mp.delenv("CURL_CA_BUNDLE", raising=False)
        server = Emulator(load_demo=True)
        server.start()
        yield server
        server.stop()


@pytest.fixture(scope="module")
def token(emu):
    """An app-only access token of the demo app for ``emu``."""
    import msal

    from radicale_graph.emulator import demo

    app = msal.ConfidentialClientApplication(
        demo.CLIENT_ID, client_credential=demo.CLIENT_SECRET,
        authority=f"{emu.url}/{demo.TENANT_ID}", instance_discovery=False,
        validate_authority=False, verify=emu.ca_file)
    return app.acquire_token_for_client(GRAPH_SCOPE)["access_token"]


@pytest.fixture(scope="module")
def graph(emu, token):
    """``graph(method, path_or_url, **kwargs)``: a call to ``emu``'s Graph with the token."""
    session = requests.Session()
    session.verify = emu.ca_file
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method, path, **kwargs):
        url = path if path.startswith("https://") else emu.graph_url + path
        return session.request(method, url, verify=emu.ca_file, timeout=30, **kwargs)

    return call

