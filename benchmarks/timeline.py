"""Where a cold PROPFIND's time goes: every Graph call of the gateway, by phase.

    python benchmarks/timeline.py [--size 10000] [--latency 0.1] [--seed 1]

The demo generator fills Alice's calendar in an emulator in this process (as ``run.py``
does), a gateway starts in its own process through this file in child mode, with the Graph
client's ``_send`` and the loader's ``translate`` timed, and one PROPFIND depth 1 of the
calendar is sent. When the gateway stops it writes each call's (phase: thread and
operation, start, end) in milliseconds from its first Graph call; this prints one line per
phase: calls, first start, last end and busy time (the sum of the calls' durations), e.g.::

    delta ...:track changes   n=    3 first=  1014 last= 22084 busy=  2808 ms
    Thread:list events        n=   10 first=  2446 last=  6676 busy=  4203 ms
    translate                 n=10000 first=  2674 last= 20696 busy=  6244 ms
    Thread:read events        n=  104 first=  6680 last= 20692 busy= 13961 ms
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import caldav, dataset, servers  # noqa: E402


def child(config: str, out: str) -> int:
    """Child mode: serve the gateway from ``config`` with Graph calls and translations
    timed; write them to ``out`` (JSON) when it stops (SIGTERM)."""
    from radicale_graph.cli.gateway import serve_config_file
    from radicale_graph.graph import client
    from radicale_graph.storage import loader

    calls: list[tuple[str, float, float]] = []
    origin: list[float] = []

    def timed(function, label):
        def wrapper(*args, **kwargs):
            started = time.monotonic()
            if not origin:
                origin.append(started)
            try:
                return function(*args, **kwargs)
            finally:
                name = label or (threading.current_thread().name.split("-")[0] + ":"
                                 + str(kwargs.get("operation", "?")))
                calls.append((name, (started - origin[0]) * 1000,
                              (time.monotonic() - origin[0]) * 1000))
        return wrapper

    client.GraphClient._send = timed(client.GraphClient._send, None)
    loader.translate = timed(loader.translate, "translate")
    try:
        serve_config_file(config)
    finally:
        Path(out).write_text(json.dumps(calls))
    return 0


def phases(calls: list) -> list[str]:
    """One line per phase (thread and operation): calls, first start, last end, busy ms."""
    by_phase: dict[str, list[float]] = defaultdict(lambda: [0, float("inf"), 0.0, 0.0])
    for name, start, end in calls:
        phase = by_phase[name]
        phase[0] += 1
        phase[1] = min(phase[1], start)
        phase[2] = max(phase[2], end)
        phase[3] += end - start
    return [f"{name[:40]:40s} n={n:5d} first={first:6.0f} last={last:6.0f} busy={busy:6.0f} ms"
            for name, (n, first, last, busy) in sorted(by_phase.items(),
                                                         key=lambda item: item[1][1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    emulator, _ = dataset.make_emulator(args.size, args.seed, dt.date.today())
    emulator.latency = args.latency
    with tempfile.TemporaryDirectory(prefix="timeline-") as folder:
        out = Path(folder) / "calls.json"
        gateway = servers.start_gateway(
            emulator, Path(folder) / "gateway", 3600,
            lambda config: [sys.executable, str(Path(__file__).resolve()), "--child", config,
                            str(out)])
        try:
            started = time.monotonic()
            caldav.send(gateway.session(), gateway.url + servers.CALENDAR,
                        caldav.propfind_request(), 207)
            print(f"cold PROPFIND depth 1 of {args.size} events: "
                  f"{(time.monotonic() - started) * 1000:.0f} ms", flush=True)
        finally:
            gateway.stop()
            emulator.stop()
        calls = json.loads(out.read_text()) if out.exists() else []
    print("\n".join(phases(calls)) if calls else "no calls recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
