"""The ``radicale-graph`` command as a subprocess.

``serve --config FILE`` start-up failures: exit status 2, one line on stderr naming the cause
and the fix, no traceback, no secret on either stream. ``demo`` end to end: it prints the
CalDAV URL and the logins, answers CalDAV, and exits 0 promptly on SIGINT.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests

from .conftest import ALICE, free_port

COMMAND = [sys.executable, "-m", "radicale_graph.cli"]
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav"}
WRONG_SECRET = "wrong~Secret.Value-8Q7z3kX1vN0pL5sR2tU9"


def demo_config(emulator, folder: Path, **storage) -> Path:
    """The demo's configuration for ``emulator`` with ``[storage]`` options replaced, added,
    or (value ``None``) removed."""
    from radicale_graph.cli.demo import write_demo_files

    path = Path(write_demo_files(str(folder), host="127.0.0.1", port=free_port(),
                                 authority=emulator.authority_host,
                                 graph_url=emulator.graph_url, ca_file=emulator.ca_file))
    lines, section = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            section = line.strip()
        key = line.split("=", 1)[0].strip()
        if section == "[storage]" and "=" in line and key in storage:
            continue
        lines.append(line)
        if line.strip() == "[storage]":
            lines += [f"{k} = {v}" for k, v in storage.items() if v is not None]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def serve(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, "serve", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def one_line_failure(done: subprocess.CompletedProcess, *secrets: str) -> str:
    """Check the shape of a start-up failure; return its one line."""
    from radicale_graph.emulator import demo

    streams = done.stdout + done.stderr
    assert "Traceback" not in streams, streams
    for secret in (demo.CLIENT_SECRET, *secrets):
        assert secret not in streams
    assert done.returncode == 2, streams
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{done.stderr}"
    assert not done.stdout.strip(), done.stdout
    assert lines[0].startswith("radicale-graph: ")
    return lines[0]


def test_wrong_client_secret(emulator, tmp_path):
    config = demo_config(emulator, tmp_path)
    (tmp_path / "client_secret").write_text(WRONG_SECRET, encoding="utf-8")
    line = one_line_failure(serve(config), WRONG_SECRET)
    assert "AADSTS7000215" in line
    assert "client secret" in line and "client_secret" in line  # the cause and the option


@pytest.mark.parametrize("missing", ["certificate_file", "certificate_key_file"])
def test_missing_certificate_file(emulator, tmp_path, missing):
    # The other file of the pair exists (the emulator's own TLS certificate and key).
    files = {"certificate_file": emulator.certfile, "certificate_key_file": emulator.keyfile}
    absent = tmp_path / "nowhere" / f"{missing}.pem"
    files[missing] = str(absent)
    config = demo_config(emulator, tmp_path, client_secret_file=None, **files)
    key_body = Path(emulator.keyfile).read_text(encoding="ascii").splitlines()[1]
    line = one_line_failure(serve(config), key_body)
    assert str(absent) in line
    assert missing in line


def test_unreachable_authority(emulator, tmp_path):
    closed = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    config = demo_config(emulator, tmp_path, authority_host=closed)
    line = one_line_failure(serve(config))
    assert closed in line
    assert "authority_host" in line


def test_missing_tenant_id(emulator, tmp_path):
    config = demo_config(emulator, tmp_path, tenant_id=None)
    line = one_line_failure(serve(config))
    assert "tenant_id" in line


def test_demo_serves_caldav_and_stops_on_sigint():
    port = free_port()
    process = subprocess.Popen([*COMMAND, "demo", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(60, process.kill)  # never hang the test run on a stuck demo
    watchdog.start()
    try:
        printed = [process.stdout.readline() for _ in range(5)]
        assert printed[0].startswith(f"CalDAV: http://127.0.0.1:{port}/"), printed
        for login in ("alice@contoso.com", "bob@contoso.com", "room-adams@contoso.com",
                      "room-baker@contoso.com"):
            assert any(re.search(rf"\b{re.escape(login)}\b.*\bdemo\b", p) for p in printed), \
                (login, printed)
        deadline = time.monotonic() + 15
        while True:
            try:
                response = requests.request(
                    "PROPFIND", f"http://127.0.0.1:{port}/{ALICE[0]}/", auth=ALICE,
                    headers={"Depth": "1"}, timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the demo did not listen"
                time.sleep(0.1)
        assert response.status_code == 207, response.text
        calendars = {}
        for node in ET.fromstring(response.content).findall("D:response", NS):
            prop = node.find("D:propstat/D:prop", NS)
            if prop.find("D:resourcetype/C:calendar", NS) is not None:
                href = unquote(node.find("D:href", NS).text).rstrip("/")
                calendars[href.rsplit("/", 1)[-1]] = prop.find("D:displayname", NS).text
        assert calendars.get("calendar") == "Calendar"
        assert "Project Falcon" in calendars.values()
        assert all(href.startswith(f"/{ALICE[0]}/") for href in [
            unquote(n.find("D:href", NS).text)
            for n in ET.fromstring(response.content).findall("D:response", NS)])
    finally:
        process.send_signal(signal.SIGINT)
        try:
            status = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("radicale-graph demo did not exit within 10 s of SIGINT")
        finally:
            watchdog.cancel()
            process.stdout.close()
    assert status == 0
