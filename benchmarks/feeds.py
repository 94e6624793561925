"""Benchmark: many displays polling one room feed (issue 12, room feeds).

    python benchmarks/feeds.py [--displays 50] [--seconds 60] [--refresh 5] [--pause 0.1]
        [--latency 0.0] [--expand] [--privacy subject] [--json FILE]

The Graph emulator (demo tenant) runs in this process; the gateway runs in its own subprocess
(benchmarks/servers.py) with ``refresh_interval = --refresh`` seconds. A feed of
room-adams's calendar is created with ``radicale-graph feed create``; after one warm-up GET
(the first listing) and one refresh interval, ``--displays`` threads each poll the feed for
``--seconds`` with If-None-Match (the ETag of their last 200), pausing ``--pause`` seconds
between polls. Printed: polls, answers by status, poll latency (median and 95th percentile,
milliseconds), the Graph requests the emulator served for the room while the displays polled
(``Emulator.request_log``), the ``calendarView/delta`` rounds among them, and the bound the
acceptance sets: one Graph round per refresh interval, ``floor(seconds / refresh) + 1``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import servers  # noqa: E402

ROOM = "room-adams@contoso.com"


def poll(url: str, seconds: float, displays: int, pause: float):
    """(status counts, latencies in seconds, seconds from the first to the last poll's end)
    of ``displays`` threads polling for ``seconds``."""
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    stop = [0.0]
    began = [0.0]

    def release():
        began[0] = time.monotonic()
        stop[0] = began[0] + seconds

    barrier = threading.Barrier(displays, action=release)

    def display():
        session = requests.Session()
        etag = None
        barrier.wait()
        while time.monotonic() < stop[0]:
            sent = time.perf_counter()
            response = session.get(url, headers={"If-None-Match": etag} if etag else {},
                                   timeout=60)
            took = time.perf_counter() - sent
            etag = response.headers.get("ETag", etag)
            with lock:
                statuses[response.status_code] += 1
                latencies.append(took)
            time.sleep(pause)
        session.close()

    threads = [threading.Thread(target=display, daemon=True) for _ in range(displays)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, latencies, time.monotonic() - began[0]


def _lead() -> float:
    try:
        from radicale_graph.storage.refresher import LEAD
    except ImportError:  # no background refresh in this version
        return 1.0
    return LEAD


def _command(path: str, args) -> list[str]:
    """The gateway's command line; with ``--no-background-refresh`` the option is written
    into the configuration's [storage] section first."""
    if args.no_background_refresh:
        text = Path(path).read_text(encoding="utf-8")
        Path(path).write_text(text.replace("\n[logging]", "background_refresh = False\n\n"
                                           "[logging]", 1), encoding="utf-8")
    return [sys.executable, "-m", "radicale_graph.cli", "serve", "--config", path]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--displays", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--refresh", type=float, default=5.0, help="refresh_interval, s")
    parser.add_argument("--pause", type=float, default=0.1, help="s between a display's polls")
    parser.add_argument("--latency", type=float, default=0.0, help="s added per Graph request")
    parser.add_argument("--expand", action="store_true")
    parser.add_argument("--privacy", default="subject", choices=("full", "subject", "busy"))
    parser.add_argument("--no-background-refresh", action="store_true",
                        help="[storage] background_refresh = False: only polls refresh")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    from radicale_graph.cli import build_parser
    from radicale_graph.cli.feeds import run_feed
    from radicale_graph.emulator import Emulator

    emu = Emulator(load_demo=True, latency=args.latency)
    emu.start()
    try:
        with tempfile.TemporaryDirectory(prefix="radicale-graph-feeds-") as folder:
            server = servers.start_gateway(emu, Path(folder), args.refresh,
                                           argv=lambda path: _command(path, args))
            try:
                out = io.StringIO()
                options = ["feed", "create", "--config", str(Path(folder) / "radicale.conf"),
                           "--calendar", f"{ROOM}/calendar", "--privacy", args.privacy]
                run_feed(build_parser().parse_args(options + (
                    ["--expand"] if args.expand else [])), out=out)
                url = out.getvalue().strip()
                first = requests.get(url, timeout=60)
                first.raise_for_status()
                time.sleep(args.refresh)
                emu.clear_log()
                statuses, latencies, elapsed = poll(url, args.seconds, args.displays,
                                                    args.pause)
                log = [r for r in emu.request_log if r.mailbox == ROOM]
                rss = server.stop()
            finally:
                server.stop()
    finally:
        emu.stop()
    rounds = [r for r in log if r.path.endswith("/calendarView/delta") and not r.batched]
    latencies.sort()
    result = {
        "displays": args.displays, "seconds": round(elapsed, 1), "refresh_interval": args.refresh,
        "background_refresh": not args.no_background_refresh, "expand": args.expand,
        "privacy": args.privacy, "feed_bytes": len(first.content),
        "polls": sum(statuses.values()), "statuses": dict(sorted(statuses.items())),
        "polls_per_second": round(sum(statuses.values()) / elapsed, 1),
        "latency_ms_median": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "graph_requests": len(log), "delta_rounds": len(rounds),
        "rounds_per_refresh_interval": round(len(rounds) / (elapsed / args.refresh), 2),
        # One round per refresh: per refresh_interval, or per background-refresh period
        # (the refresher runs a round when the cache is LEAD x refresh_interval old).
        "round_bound": math.floor(elapsed / (args.refresh * (
            1.0 if args.no_background_refresh else _lead()))) + 1,
        "gateway_peak_rss_mib": rss,
    }
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    ok = len(rounds) <= result["round_bound"] and len(log) == len(rounds)
    print("one Graph round per refresh interval:", "yes" if ok else "NO")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
