"""The two CalDAV servers under test, each in its own subprocess on a loopback port.

- :func:`start_gateway`: ``python -m radicale_graph.cli serve`` with the demo configuration
  (:func:`radicale_graph.cli.demo.write_demo_files`) pointed at the in-process emulator.
- :func:`start_radicale`: ``python -m radicale`` with ``[storage] type = multifilesystem`` and
  the same users (htpasswd, plain) and rights files.

Both log at ``warning`` so neither pays for per-request log lines. Peak resident memory is read
from ``/proc/<pid>/status`` (``VmHWM``, kibibytes) before the process is stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ALICE = ("alice@contoso.com", "demo")
CALENDAR = "/alice@contoso.com/calendar/"
LOG_LEVEL = "warning"
# Seconds per Graph call for the gateway ([storage] timeout, default 30): the emulator answers
# a $batch of 20 "$filter on an extended property" lookups over 10,000 events in about 30 s
# (it copies every event per lookup), which the default would cut off on cold multigets.
GRAPH_TIMEOUT = 180


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running CalDAV server: its base URL (no trailing slash) and process."""

    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def session(self) -> requests.Session:
        """A session logged in as Alice."""
        session = requests.Session()
        session.auth = ALICE
        return session

    def peak_rss_mb(self) -> float | None:
        """Peak resident set size of the server process in MiB (``VmHWM``), or None."""
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
        return int(match.group(1)) / 1024 if match else None

    def stop(self) -> float | None:
        """SIGTERM, wait (then SIGKILL after 10 s); returns the peak RSS in MiB."""
        rss = self.peak_rss_mb()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return rss


def _wait_listening(name: str, port: int, process: subprocess.Popen, log: Path,
                    timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: "
                               f"{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout} s")


def _spawn(name: str, argv: list[str], port: int, folder: Path) -> Server:
    log = folder / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=folder)
    _wait_listening(name, port, process, log)
    return Server(name, f"http://127.0.0.1:{port}", process, log)


def _set_log_level(path: str) -> None:
    text = Path(path).read_text()
    Path(path).write_text(re.sub(r"(?m)^level = \w+$", f"level = {LOG_LEVEL}", text))


def start_gateway(emulator, folder: Path, refresh_interval: float, argv=None) -> Server:
    """The gateway on ``emulator`` with ``refresh_interval`` seconds; its sync state lives in
    ``folder/state`` (kept between starts, as on a real server); its event cache starts empty.
    ``argv(config path)`` may give another command line (the profiler's). Returns once the
    port accepts connections (after the start-up credential check)."""
    from radicale_graph.cli.demo import write_demo_files

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    path = write_demo_files(str(folder), host="127.0.0.1", port=port,
                            authority=emulator.authority_host, graph_url=emulator.graph_url,
                            ca_file=emulator.ca_file,
                            storage_options={"refresh_interval": str(refresh_interval),
                                             "timeout": str(GRAPH_TIMEOUT)})
    _set_log_level(path)
    command = (argv(path) if argv else
               [sys.executable, "-m", "radicale_graph.cli", "serve", "--config", path])
    return _spawn("gateway", command, port, folder)


def radicale_root(folder: Path) -> Path:
    """The multifilesystem folder of the Radicale server kept in ``folder``."""
    return folder / "collections"


def calendar_folder(folder: Path) -> Path:
    """Where Alice's calendar's ``.ics`` files live in Radicale's storage."""
    return radicale_root(folder) / "collection-root" / CALENDAR.strip("/")


def drop_radicale_item_cache(folder: Path) -> None:
    """Remove Radicale's derived item cache (parsed metadata of every ``.ics``) so the next
    server parses every file again; sync-token and history caches are kept, so sync tokens
    stay valid (as the gateway's persisted sync state does)."""
    shutil.rmtree(calendar_folder(folder) / ".Radicale.cache" / "item", ignore_errors=True)


def start_radicale(folder: Path) -> Server:
    """Plain Radicale 3.9 (multifilesystem) over ``radicale_root(folder)`` with the demo's
    users and rights (:func:`radicale_graph.cli.demo.write_demo_files` wrote them into
    ``folder`` beforehand via :func:`write_radicale_config`)."""
    port = free_port()
    path = write_radicale_config(folder, port)
    argv = [sys.executable, "-m", "radicale", "--config", path]
    return _spawn("radicale", argv, port, folder)


def write_radicale_config(folder: Path, port: int) -> str:
    """Radicale's configuration in ``folder`` (users and rights as the gateway's demo)."""
    from radicale_graph.cli.demo import DEMO_PASSWORD, RIGHTS
    from radicale_graph.emulator import demo

    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "users"
    users.write_text("".join(f"{login}:{DEMO_PASSWORD}\n" for login in demo.USERS + demo.ROOMS))
    rights = folder / "rights"
    rights.write_text(RIGHTS)
    path = folder / "radicale.conf"
    path.write_text(f"""\
[server]
hosts = 127.0.0.1:{port}

[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain

[rights]
type = from_file
file = {rights}

[web]
type = none

[storage]
type = multifilesystem
filesystem_folder = {radicale_root(folder)}

[logging]
level = {LOG_LEVEL}
""")
    return str(path)


def write_radicale_calendar(folder: Path, resources: dict[str, str]) -> None:
    """Create Alice's calendar in Radicale's storage with ``resources`` (href -> iCalendar
    text), written as Radicale's own upload would name them (one ``<href>`` file each)."""
    import json

    target = calendar_folder(folder)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / ".Radicale.props").write_text(json.dumps({
        "tag": "VCALENDAR", "D:displayname": "Calendar",
        "C:supported-calendar-component-set": "VEVENT"}))
    for href, text in resources.items():
        with open(target / href, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    os.sync()
