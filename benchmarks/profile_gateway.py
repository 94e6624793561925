"""Profile the gateway (and, separately, the emulator) on one cold CalDAV request sequence.

    python benchmarks/profile_gateway.py [--size 10000] [--latency 0.1] [--top 40]
        [--steps open,query,multiget,sync] [--profiler pyinstrument|cprofile]
        [--no-emulator-profile] [--show-all]

The gateway runs in its own process, as in ``run.py``, started through this file in child
mode: every call of ``GatewayApplication._handle_request`` (one per CalDAV request, in its
request thread) is profiled and the combined report is written when the gateway stops. The
emulator's per-request dispatcher (``Emulator._graph``) is profiled in this process. The
default profiler is pyinstrument (sampling every millisecond; ``pip install pyinstrument``),
whose overhead is small; cProfile counts calls exactly but inflates pure-Python code and
distorts Radicale's string concatenation in ``serialize`` (so ``get`` is not a default step).
Prints wall time and Graph round trips per step, then both reports.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import caldav, dataset, servers  # noqa: E402


class Profiles:
    """Per-call cProfile runs merged into one ``pstats.Stats`` (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: pstats.Stats | None = None

    def wrap(self, function):
        active = threading.local()

        def profiled(*args, **kwargs):
            if getattr(active, "on", False):  # nested (a $batch item): the outer call counts
                return function(*args, **kwargs)
            active.on = True
            profile = cProfile.Profile()
            try:
                return profile.runcall(function, *args, **kwargs)
            finally:
                active.on = False
                with self.lock:
                    if self.stats is None:
                        self.stats = pstats.Stats(profile)
                    else:
                        self.stats.add(profile)
        return profiled

    def report(self, title: str, top: int) -> str:
        if self.stats is None:
            return f"== {title}: nothing profiled\n"
        out = io.StringIO()
        self.stats.stream = out
        out.write(f"== {title}: by own time\n")
        self.stats.sort_stats("tottime").print_stats(top)
        out.write(f"== {title}: by cumulative time\n")
        self.stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()


class Samples:
    """Per-call pyinstrument (sampling, 1 ms) sessions combined (thread-safe); much lower
    overhead than cProfile, so shares are closer to an unprofiled run."""

    def __init__(self, show_all: bool = False) -> None:
        self.lock = threading.Lock()
        self.session = None
        self.show_all = show_all

    def wrap(self, function):
        from pyinstrument import Profiler
        from pyinstrument.session import Session

        active = threading.local()

        def profiled(*args, **kwargs):
            # One profiler per thread: a nested call (the emulator serving a $batch item) is
            # sampled by the outer one.
            if getattr(active, "on", False):
                return function(*args, **kwargs)
            active.on = True
            profiler = Profiler(interval=0.001)
            profiler.start()
            try:
                return function(*args, **kwargs)
            finally:
                session = profiler.stop()
                active.on = False
                with self.lock:
                    self.session = (session if self.session is None
                                    else Session.combine(self.session, session))
        return profiled

    def report(self, title: str, top: int) -> str:
        from pyinstrument.renderers import ConsoleRenderer

        if self.session is None:
            return f"== {title}: nothing profiled\n"
        flat = ConsoleRenderer(flat=True, time="percent_of_total", show_all=True)
        tree = ConsoleRenderer(time="percent_of_total", show_all=self.show_all,
                               processor_options={"filter_threshold": 0.01})
        lines = flat.render(self.session).splitlines()
        return (f"== {title}: by own time (top {top})\n" + "\n".join(lines[:top + 8])
                + f"\n== {title}: call tree\n" + tree.render(self.session))


def child(config: str, out: str, profiler: str, top: int, show_all: bool) -> int:
    """Child mode: serve the gateway from ``config`` with every request profiled; write the
    report to ``out`` when it stops (SIGTERM)."""
    from radicale_graph import app
    from radicale_graph.cli.gateway import serve_config_file

    profiles = Samples(show_all) if profiler == "pyinstrument" else Profiles()
    app.GatewayApplication._handle_request = profiles.wrap(
        app.GatewayApplication._handle_request)
    try:
        serve_config_file(config)
    finally:
        Path(out).write_text(profiles.report("gateway (request threads)", top))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--steps", default="open,query,multiget,sync",
                        help="open (PROPFIND depth 1 + multiget of all), query, multiget, "
                             "sync, get; run in this order on one gateway (get is distorted "
                             "by cProfile: Radicale's serialize concatenates strings)")
    parser.add_argument("--profiler", choices=("pyinstrument", "cprofile"),
                        default="pyinstrument",
                        help="pyinstrument (pip install pyinstrument; sampling) or cProfile")
    parser.add_argument("--show-all", action="store_true",
                        help="pyinstrument: show library frames in the call tree")
    parser.add_argument("--no-emulator-profile", action="store_true",
                        help="do not profile the emulator (its profiling slows its answers)")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], args.profiler, args.top, args.show_all)

    emulator_profiles = Samples() if args.profiler == "pyinstrument" else Profiles()
    emulator, _ = dataset.make_emulator(args.size, args.seed, dt.date.today())
    if not args.no_emulator_profile:
        emulator._graph = emulator_profiles.wrap(emulator._graph)
    emulator.latency = args.latency
    with tempfile.TemporaryDirectory(prefix="profile-gateway-") as folder:
        out = Path(folder) / "gateway-profile.txt"

        def command(config: str) -> list[str]:
            return [sys.executable, str(Path(__file__).resolve()), "--profiler", args.profiler,
                    "--top", str(args.top), *(["--show-all"] if args.show_all else []),
                    "--child", config, str(out)]

        gateway = servers.start_gateway(emulator, Path(folder) / "gateway", 3600, command)
        session = requests.Session()
        session.auth = servers.ALICE
        calendar = gateway.url + servers.CALENDAR
        try:
            hrefs: list[str] = []
            for step in args.steps.split(","):
                started = time.perf_counter()
                mark = len(emulator.request_log)
                if step == "open":
                    answer = caldav.send(session, calendar, caldav.propfind_request(), 207)
                    hrefs = [h for h, _, _ in caldav.responses(answer.text)
                             if not h.endswith("/")]
                    for start in range(0, len(hrefs), caldav.MULTIGET_CHUNK):
                        chunk = hrefs[start:start + caldav.MULTIGET_CHUNK]
                        caldav.send(session, calendar, caldav.multiget_request(chunk), 207)
                elif step == "query":
                    today = dt.datetime.now(dt.UTC).replace(day=1, hour=0, minute=0, second=0,
                                                            microsecond=0)
                    caldav.send(session, calendar, caldav.month_query_request(
                        today, (today + dt.timedelta(days=32)).replace(day=1)), 207)
                elif step == "multiget":
                    caldav.send(session, calendar, caldav.multiget_request(hrefs[::max(
                        1, len(hrefs) // 100)][:100]), 207)
                elif step == "sync":
                    caldav.send(session, calendar, caldav.sync_request(), 207)
                elif step == "get":
                    caldav.send(session, calendar, caldav.get_request(), 200)
                else:
                    parser.error(f"unknown step {step!r}")
                calls = [r for r in emulator.request_log[mark:] if not r.batched]
                print(f"{step}: {(time.perf_counter() - started) * 1000:.0f} ms, "
                      f"{len(calls)} Graph round trips", flush=True)
        finally:
            gateway.stop()
            emulator.stop()
        print(out.read_text() if out.exists() else "== gateway: no profile written")
    print(emulator_profiles.report("emulator (Graph request handling)", args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
