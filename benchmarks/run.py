"""Benchmark: the gateway on the Graph emulator against Radicale's own multifilesystem storage.

    python benchmarks/run.py [--sizes 1000,10000] [--repeat 5] [--latency 0.1]
        [--refresh 30] [--change-refresh 1] [--json FILE]
    python benchmarks/run.py --sizes 50 --repeat 1      # smoke run, under 30 s

For each size the demo generator (radicale_graph.emulator.generator) fills Alice's calendar in
an emulator running in this process, with ``--latency`` seconds added to every Graph request;
a gateway exports the events into a Radicale collection (benchmarks/dataset.py), so both
servers hold the same resources under the same hrefs. Each server runs in its own subprocess
on loopback (peak RSS from /proc/<pid>/status). Rows, each timed on both servers:

- PROPFIND depth 1 (resourcetype, getcontenttype, getetag, getctag);
- calendar-query over the current month (UTC) with getetag and calendar-data;
- calendar-multiget of 100 events (every size/100-th href);
- sync-collection with no change since the token;
- sync-collection after one change made "in Outlook": the emulator's store retitles one event
  (``Store.update_event``); Radicale gets the same change as another client would make it, a
  PUT of the changed resource (cold: a write of the file while the server is down);
- GET of the whole collection.

Cold = the first request a freshly started server answers: the gateway with an empty event
cache (its persisted sync state kept, as after a restart), Radicale with its item cache folder
removed (it re-parses every file; sync-token history kept). Warm = the median of ``--repeat``
runs on servers that answered the same request before. Warm rows run on a gateway with
``refresh_interval = --refresh`` seconds; a cheap PROPFIND depth 0 before each row makes the
cache fresh, so a warm row costs no Graph request unless the interval ran out during it. The
"after one change" warm row runs on a gateway with ``refresh_interval = --change-refresh`` and
waits that long after each change, so each measured sync runs one delta round.

The cold open (PROPFIND depth 1, then calendar-multiget of every resource) is compared with
two floors: the listing pages alone (ceil(size / 1,000) x latency), and those plus the
``$batch`` reads of the series masters by id that Graph v1.0 needs for their exceptions and
cancellations (20 per batch, one batch at a time: each holds the mailbox's 4 concurrent
requests); the same requests are then sent again to the warm servers, which gives the part
that is the servers' own CalDAV work.

"Graph req" counts Graph HTTP round trips in the emulator's request log during the measured
request(s), per request (items inside a $batch are not round trips); "emu ms" is the time the
emulator itself spent computing those answers beyond the injected latency (a real Graph's
server time is hidden in its latency; subtract it to see the gateway's own share).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import caldav, dataset, servers  # noqa: E402

ROWS = ("PROPFIND depth 1", "calendar-query 1 month", "multiget 100", "sync, no change",
        "sync, 1 change", "GET collection")
PAGE_SIZE = 1000  # events per Graph page (Outlook's maximum; radicale_graph/storage)
BATCH_SIZE = 20  # requests per $batch (json-batching.md)


@dataclass
class Row:
    """One table row: medians in milliseconds, Graph round trips and emulator CPU per request,
    peak RSS (MiB) of both server processes when the row finished."""

    name: str
    size: int
    mode: str  # "cold" | "warm"
    gateway_ms: float | None = None
    radicale_ms: float | None = None
    graph_requests: float | None = None
    token_requests: float | None = None
    emulator_ms: float | None = None
    gateway_rss: float | None = None
    radicale_rss: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.gateway_ms is None or not self.radicale_ms:
            return None
        return self.gateway_ms / self.radicale_ms


class GraphMeter:
    """Counts the emulator's round trips (Graph and token endpoint) and its service time."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator
        self.lock = threading.Lock()
        self.busy = 0.0
        self.tokens = 0
        graph, identity = emulator._graph, emulator._identity

        def timed_graph(method, path, query, headers, body, claims):
            started = time.perf_counter()
            try:
                return graph(method, path, query, headers, body, claims)
            finally:
                if claims is None:  # a round trip, not an item of a $batch
                    with self.lock:
                        self.busy += time.perf_counter() - started

        def counted_identity(*args):
            with self.lock:
                self.tokens += 1
            return identity(*args)

        emulator._graph = timed_graph
        emulator._identity = counted_identity

    def mark(self) -> tuple[int, float, int]:
        with self.lock:
            return len(self.emulator.request_log), self.busy, self.tokens

    def since(self, mark) -> tuple[int, float, int]:
        """(Graph round trips, emulator ms beyond the latency, token-endpoint round trips)."""
        with self.lock:
            calls = [r for r in self.emulator.request_log[mark[0]:] if not r.batched]
            busy, tokens = self.busy - mark[1], self.tokens - mark[2]
        latency = self.emulator.latency * len(calls)
        return len(calls), max(0.0, busy - latency) * 1000, tokens


class Deadline:
    """The run's time bound: phases are skipped (and reported) once it has passed."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() > self.end


def timed(session, url: str, request, expect: int):
    started = time.perf_counter()
    response = caldav.send(session, url, request, expect)
    return (time.perf_counter() - started) * 1000, response


def month_window(today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(today.year, today.month, 1, tzinfo=dt.UTC)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


class SizeBench:
    """Every row for one calendar size."""

    def __init__(self, size: int, args, work: Path, deadline: Deadline) -> None:
        self.size, self.args, self.work, self.deadline = size, args, work, deadline
        self.today = dt.date.today()
        self.data = dataset.build(size, args.seed, work, self.today)
        self.emulator = self.data.emulator
        self.series = sum(1 for r in self.emulator.store.records(dataset.MAILBOX, None)
                          if r.data.get("type") == "seriesMaster")
        self.emulator.latency = args.latency
        self.meter = GraphMeter(self.emulator)
        self.gateway_dir, self.radicale_dir = work / "gateway", work / "radicale"
        names = sorted(self.data.resources)
        self.paths = [servers.CALENDAR + name for name in names]
        step = max(1, len(names) // 100)
        self.sample = self.paths[::step][:100]
        self.rows: dict[tuple[str, str], Row] = {}
        self.tokens: dict[str, str] = {}
        self.cold_open: dict = {}
        self.revision = 0
        self.failures: list[str] = []

    # -- helpers ------------------------------------------------------------------------
    def row(self, name: str, mode: str) -> Row:
        key = (name, mode)
        if key not in self.rows:
            self.rows[key] = Row(name, self.size, mode)
        return self.rows[key]

    def url(self, server) -> str:
        return server.url + servers.CALENDAR

    def static_request(self, name: str):
        if name == "PROPFIND depth 1":
            return caldav.propfind_request(), 207
        if name == "calendar-query 1 month":
            return caldav.month_query_request(*month_window(self.today)), 207
        if name == "multiget 100":
            return caldav.multiget_request(self.sample), 207
        if name == "GET collection":
            return caldav.get_request(), 200
        raise KeyError(name)

    def start_gateway(self, refresh: float | None = None):
        return servers.start_gateway(self.emulator, self.gateway_dir,
                                     refresh or self.args.refresh)

    def start_radicale(self, cold: bool):
        if cold:
            servers.drop_radicale_item_cache(self.radicale_dir)
        return servers.start_radicale(self.radicale_dir)

    def measure_gateway(self, session, url, request, expect):
        mark = self.meter.mark()
        ms, response = timed(session, url, request, expect)
        return ms, response, self.meter.since(mark)

    @staticmethod
    def answer_count(response) -> int:
        if response.request.method == "GET":
            return response.text.count("\r\nBEGIN:VEVENT\r\n")
        return sum(1 for href, _, _ in caldav.responses(response.text) if not href.endswith("/"))

    def compare(self, row: Row, gateway_response, radicale_response) -> None:
        """Both servers hold the same events: their answers should list as many (for a
        REPORT, the same hrefs; the first few that differ are noted with their SUMMARY)."""
        ours, theirs = self.answer_count(gateway_response), self.answer_count(radicale_response)
        if ours == theirs:
            return
        note = f"answers differ: gateway {ours}, Radicale {theirs}"
        if gateway_response.request.method == "REPORT":
            names = [{h.rsplit("/", 1)[-1] for h, _, _ in caldav.responses(r.text)}
                     for r in (gateway_response, radicale_response)]
            for label, only in (("gateway", names[0] - names[1]),
                                ("Radicale", names[1] - names[0])):
                for name in sorted(only)[:3]:
                    text = self.data.resources.get(name, "")
                    text = text[text.find("BEGIN:VEVENT"):]
                    summary = next((line for line in text.split("\r\n")
                                    if line.startswith("SUMMARY:")), "?")
                    dtstart = next((line for line in text.split("\r\n")
                                    if line.startswith("DTSTART")), "?")
                    note += f"; only {label}: {name} {summary} {dtstart}"
        if note not in row.notes:
            row.notes.append(note)

    def record_cold(self, row: Row, gateway_ms, radicale_ms, meter, gateway, radicale) -> None:
        row.gateway_ms, row.radicale_ms = gateway_ms, radicale_ms
        row.graph_requests, row.emulator_ms, row.token_requests = meter
        row.gateway_rss, row.radicale_rss = gateway.stop(), radicale.stop()

    # -- phases -------------------------------------------------------------------------
    def run(self) -> list[Row]:
        phases = (self.phase_warm, self.phase_cold_rows, self.phase_cold_change,
                  self.phase_warm_change)
        try:
            for phase in phases:
                if self.deadline.passed():
                    print(f"  time bound reached: {phase.__name__} skipped", flush=True)
                    continue
                started = time.monotonic()
                try:
                    phase()
                except Exception as exc:  # report it and go on with the next phase
                    print(f"  {self.size}: {phase.__name__} failed: {exc}"[:400], flush=True)
                    self.failures.append(f"{phase.__name__}: {exc}"[:400])
                print(f"  {self.size}: {phase.__name__} done in "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        finally:
            self.emulator.stop()
        return [self.rows[(name, mode)] for name in ROWS for mode in ("cold", "warm")
                if (name, mode) in self.rows]

    def phase_warm(self) -> None:
        """Cold PROPFIND and the cold open, then every warm row but the change row."""
        gateway = self.start_gateway()
        radicale = self.start_radicale(cold=True)
        gs, rs = gateway.session(), radicale.session()
        try:
            request, expect = self.static_request("PROPFIND depth 1")
            row = self.row("PROPFIND depth 1", "cold")
            g_ms, g_resp, meter = self.measure_gateway(gs, self.url(gateway), request, expect)
            r_ms, r_resp = timed(rs, self.url(radicale), request, expect)
            row.gateway_ms, row.radicale_ms = g_ms, r_ms
            row.graph_requests, row.emulator_ms, row.token_requests = meter
            self.compare(row, g_resp, r_resp)
            self.cold_open_rest(gs, rs, gateway, radicale, g_ms, r_ms, meter)
            row.gateway_rss, row.radicale_rss = gateway.peak_rss_mb(), radicale.peak_rss_mb()
            for name in ("PROPFIND depth 1", "calendar-query 1 month", "multiget 100",
                         "sync, no change", "GET collection"):
                try:
                    self.warm_row(name, gs, rs, gateway, radicale)
                except Exception as exc:  # one failing row must not end the run
                    self.row(name, "warm").notes.append(f"failed: {exc}"[:300])
        finally:
            rss = gateway.stop(), radicale.stop()
        self.cold_open["peak_rss_after_warm_rows"] = rss

    def cold_open_rest(self, gs, rs, gateway, radicale, g_ms, r_ms, meter) -> None:
        """Complete the cold open: calendar-multiget of every resource, in chunks."""
        g_total, r_total = g_ms, r_ms
        calls, emu_ms, tokens = meter
        for start in range(0, len(self.paths), caldav.MULTIGET_CHUNK):
            request = caldav.multiget_request(self.paths[start:start + caldav.MULTIGET_CHUNK])
            ms, _, (n, e, t) = self.measure_gateway(gs, self.url(gateway), request, 207)
            g_total, calls, emu_ms, tokens = g_total + ms, calls + n, emu_ms + e, tokens + t
            ms, _ = timed(rs, self.url(radicale), request, 207)
            r_total += ms
        # The same requests again, on the servers now warm: the part of the cold open that
        # is the servers' own CalDAV work (Radicale's XML on both), not Graph's.
        warm_g = warm_r = 0.0
        for request in [caldav.propfind_request()] + [
                caldav.multiget_request(self.paths[start:start + caldav.MULTIGET_CHUNK])
                for start in range(0, len(self.paths), caldav.MULTIGET_CHUNK)]:
            ms, _ = timed(gs, self.url(gateway), request, 207)
            warm_g += ms
            ms, _ = timed(rs, self.url(radicale), request, 207)
            warm_r += ms
        pages = -(-self.size // PAGE_SIZE)
        floor = pages * self.args.latency * 1000
        # Graph v1.0 gives a series' exceptions and cancellations only by id, 20 per $batch,
        # and a $batch holds the mailbox's 4 concurrent requests: those reads add to the floor.
        batches = -(-self.series // BATCH_SIZE)
        self.cold_open.update(warm_gateway_ms=warm_g, warm_radicale_ms=warm_r,
                              series=self.series, by_id_batches=batches,
                              floor_with_reads_by_id_ms=(pages + batches)
                              * self.args.latency * 1000,
                              size=self.size, gateway_ms=g_total, radicale_ms=r_total,
                              graph_requests=calls, token_requests=tokens,
                              emulator_ms=emu_ms, pages=pages, floor_ms=floor,
                              ratio_to_floor=g_total / floor if floor else None,
                              ratio_to_floor_without_emulator=(g_total - emu_ms) / floor
                              if floor else None,
                              multiget_requests=-(-len(self.paths) // caldav.MULTIGET_CHUNK))

    def prime(self, gs, gateway) -> None:
        """Make the gateway's cache fresh (PROPFIND depth 0 asks for the ctag)."""
        request = ("PROPFIND", {"Depth": "0"}, caldav.propfind_request()[2])
        caldav.send(gs, self.url(gateway), request, 207)

    def warm_row(self, name, gs, rs, gateway, radicale) -> None:
        row = self.row(name, "warm")
        if name == "sync, no change":
            g_token = caldav.sync_token(caldav.send(gs, self.url(gateway), caldav.sync_request(),
                                                    207).text)
            r_token = caldav.sync_token(caldav.send(rs, self.url(radicale),
                                                    caldav.sync_request(), 207).text)
            self.tokens.update(gateway=g_token, radicale=r_token)
            g_request, r_request, expect = (caldav.sync_request(g_token),
                                            caldav.sync_request(r_token), 207)
        else:
            (g_request, expect) = self.static_request(name)
            r_request = g_request
            caldav.send(gs, self.url(gateway), g_request, expect)  # first time for both
            caldav.send(rs, self.url(radicale), r_request, expect)
        self.prime(gs, gateway)
        g_times, r_times, calls, emu_ms, tokens = [], [], 0, 0.0, 0
        for _ in range(self.args.repeat):
            ms, g_resp, (n, e, t) = self.measure_gateway(gs, self.url(gateway), g_request,
                                                         expect)
            g_times.append(ms)
            calls, emu_ms, tokens = calls + n, emu_ms + e, tokens + t
            ms, r_resp = timed(rs, self.url(radicale), r_request, expect)
            r_times.append(ms)
        self.compare(row, g_resp, r_resp)
        row.gateway_ms, row.radicale_ms = statistics.median(g_times), statistics.median(r_times)
        repeat = self.args.repeat
        row.graph_requests, row.emulator_ms, row.token_requests = (
            calls / repeat, emu_ms / repeat, tokens / repeat)
        row.gateway_rss, row.radicale_rss = gateway.peak_rss_mb(), radicale.peak_rss_mb()

    def phase_cold_rows(self) -> None:
        """One fresh pair of servers per row: the row's request is the first they answer."""
        for name in ("calendar-query 1 month", "multiget 100", "sync, no change",
                     "GET collection"):
            if self.deadline.passed():
                print(f"  time bound reached: cold {name} skipped", flush=True)
                continue
            if name == "sync, no change":
                g_request = caldav.sync_request(self.tokens["gateway"])
                r_request, expect = caldav.sync_request(self.tokens["radicale"]), 207
            else:
                g_request, expect = self.static_request(name)
                r_request = g_request
            row = self.row(name, "cold")
            gateway = self.start_gateway()
            radicale = self.start_radicale(cold=True)
            g_ms = r_ms = None
            meter = (None, None, None)
            try:
                g_ms, g_resp, meter = self.measure_gateway(gateway.session(),
                                                           self.url(gateway), g_request, expect)
                r_ms, r_resp = timed(radicale.session(), self.url(radicale), r_request, expect)
                self.compare(row, g_resp, r_resp)
            except Exception as exc:  # one failing row must not end the run
                row.notes.append(f"failed: {exc}"[:300])
            finally:
                self.record_cold(row, g_ms, r_ms, meter, gateway, radicale)

    def change_both(self, radicale=None) -> None:
        """One change "in Outlook" (the emulator) and the same change in Radicale: a PUT by
        another client when ``radicale`` runs, else a write of the file."""
        self.revision += 1
        subject = dataset.change_in_outlook(self.data, self.revision)
        text = dataset.changed_text(self.data, subject)
        if radicale is None:
            path = servers.calendar_folder(self.radicale_dir) / self.data.changed_href
            path.write_text(text, encoding="utf-8", newline="")
        else:
            response = radicale.session().put(
                self.url(radicale) + self.data.changed_href, data=text.encode(),
                headers={"Content-Type": "text/calendar; charset=utf-8"}, timeout=60)
            if response.status_code not in (201, 204):
                raise RuntimeError(f"PUT to Radicale: {response.status_code}")

    def check_change(self, row: Row, response) -> None:
        hrefs = [h.rsplit("/", 1)[-1] for h, _, _ in caldav.responses(response.text)]
        if self.data.changed_href not in hrefs:
            row.notes.append(f"change not reported by {response.url.split('/')[2]}: {hrefs}")

    def phase_cold_change(self) -> None:
        """Changed while both servers were down; fresh servers answer a sync from the tokens
        issued before (the gateway's persisted sync state must report the change)."""
        row = self.row("sync, 1 change", "cold")
        self.change_both()
        gateway = self.start_gateway()
        radicale = self.start_radicale(cold=True)
        g_ms = r_ms = None
        meter = (None, None, None)
        try:
            g_ms, g_resp, meter = self.measure_gateway(
                gateway.session(), self.url(gateway), caldav.sync_request(self.tokens["gateway"]),
                207)
            r_ms, r_resp = timed(radicale.session(), self.url(radicale),
                                 caldav.sync_request(self.tokens["radicale"]), 207)
            self.check_change(row, g_resp)
            self.check_change(row, r_resp)
        except Exception as exc:  # one failing row must not end the run
            row.notes.append(f"failed: {exc}"[:300])
        finally:
            self.record_cold(row, g_ms, r_ms, meter, gateway, radicale)

    def phase_warm_change(self) -> None:
        """Warm servers; each repeat: change, wait past the gateway's refresh interval, sync."""
        row = self.row("sync, 1 change", "warm")
        refresh = self.args.change_refresh
        gateway = self.start_gateway(refresh)
        radicale = self.start_radicale(cold=False)
        gs, rs = gateway.session(), radicale.session()
        try:
            g_token = caldav.sync_token(caldav.send(gs, self.url(gateway), caldav.sync_request(),
                                                    207).text)
            r_token = caldav.sync_token(caldav.send(rs, self.url(radicale),
                                                    caldav.sync_request(), 207).text)
            g_times, r_times, calls, emu_ms, tokens = [], [], 0, 0.0, 0
            for _ in range(self.args.repeat):
                self.change_both(radicale)
                time.sleep(refresh + 0.2)
                ms, g_resp, (n, e, t) = self.measure_gateway(
                    gs, self.url(gateway), caldav.sync_request(g_token), 207)
                g_times.append(ms)
                calls, emu_ms, tokens = calls + n, emu_ms + e, tokens + t
                ms, r_resp = timed(rs, self.url(radicale), caldav.sync_request(r_token), 207)
                r_times.append(ms)
                self.check_change(row, g_resp)
                self.check_change(row, r_resp)
                g_token, r_token = caldav.sync_token(g_resp.text), caldav.sync_token(r_resp.text)
            repeat = self.args.repeat
            row.gateway_ms = statistics.median(g_times)
            row.radicale_ms = statistics.median(r_times)
            row.graph_requests, row.emulator_ms, row.token_requests = (
                calls / repeat, emu_ms / repeat, tokens / repeat)
            row.notes.append(f"gateway refresh_interval {refresh:g} s")
        except Exception as exc:  # one failing row must not end the run
            row.notes.append(f"failed: {exc}"[:300])
        finally:
            row.gateway_rss, row.radicale_rss = gateway.stop(), radicale.stop()


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    head = ("| row | size | cold/warm | gateway ms | Radicale ms | ratio | Graph req | emu ms "
            "| gateway RSS MB | Radicale RSS MB |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        graph = "-" if r.graph_requests is None else f"{r.graph_requests:g}"
        lines.append(f"| {r.name} | {r.size} | {r.mode} | {fmt(r.gateway_ms)} | "
                     f"{fmt(r.radicale_ms)} | {fmt(r.ratio, 2)} | {graph} | "
                     f"{fmt(r.emulator_ms)} | {fmt(r.gateway_rss)} | {fmt(r.radicale_rss)} |")
    return "\n".join(lines)


def machine() -> str:
    return (f"nproc {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()}), "
            f"Python {platform.python_version()}, {platform.platform()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="comma-separated calendar sizes (events)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per warm row (median)")
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds the emulator adds to every Graph request")
    parser.add_argument("--refresh", type=float, default=30.0,
                        help="gateway refresh_interval (s) for the warm rows")
    parser.add_argument("--change-refresh", type=float, default=1.0,
                        help="gateway refresh_interval (s) for the warm 'sync, 1 change' row")
    parser.add_argument("--seed", type=int, default=1, help="demo generator seed")
    parser.add_argument("--time-limit", type=float, default=780.0,
                        help="seconds after which remaining phases are skipped")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.monotonic()
    deadline = Deadline(args.time_limit)
    print(machine(), flush=True)
    print(f"latency {args.latency * 1000:g} ms per Graph request, repeat {args.repeat}, "
          f"refresh_interval {args.refresh:g} s (change row {args.change_refresh:g} s)",
          flush=True)
    rows: list[Row] = []
    opens: list[dict] = []
    builds: list[str] = []
    with tempfile.TemporaryDirectory(prefix="radicale-graph-bench-") as folder:
        for size in sizes:
            if deadline.passed():
                print(f"time bound reached: size {size} skipped", flush=True)
                continue
            bench = SizeBench(size, args, Path(folder) / str(size), deadline)
            builds.append(f"{size}: generated in {bench.data.generated_seconds:.1f} s, "
                          f"exported through the gateway in {bench.data.exported_seconds:.1f} s")
            print("  " + builds[-1], flush=True)
            rows += bench.run()
            if bench.cold_open:
                opens.append(bench.cold_open)
    elapsed = time.monotonic() - started
    print()
    print(table(rows))
    for row in rows:
        for note in row.notes:
            print(f"note: {row.name} {row.size} {row.mode}: {note}")
    for item in opens:
        if "gateway_ms" not in item:
            continue
        print(f"cold open of {item['size']} events (PROPFIND depth 1 + multiget of all in "
              f"{item['multiget_requests']} REPORTs): gateway {item['gateway_ms']:.0f} ms, "
              f"Radicale {item['radicale_ms']:.0f} ms; Graph {item['graph_requests']} round "
              f"trips (+{item['token_requests']} token), floor {item['pages']} pages x "
              f"{args.latency * 1000:g} ms = {item['floor_ms']:.0f} ms, ratio "
              f"{item['ratio_to_floor']:.1f}x (emulator CPU {item['emulator_ms']:.0f} ms; "
              f"without it {item['ratio_to_floor_without_emulator']:.1f}x)")
        if "warm_gateway_ms" in item:
            with_reads = item["floor_with_reads_by_id_ms"]
            print(f"  the same requests warm: gateway {item['warm_gateway_ms']:.0f} ms "
                  f"({item['warm_gateway_ms'] / item['floor_ms']:.1f}x the floor), Radicale "
                  f"{item['warm_radicale_ms']:.0f} ms; with the {item['series']} series "
                  f"masters read by id ({item['by_id_batches']} $batch) the floor is "
                  f"{with_reads:.0f} ms, ratio {item['gateway_ms'] / with_reads:.1f}x "
                  f"(without emulator CPU "
                  f"{(item['gateway_ms'] - item['emulator_ms']) / with_reads:.1f}x)")
    print(f"total time {elapsed:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine(), "args": vars(args), "elapsed_s": elapsed, "builds": builds,
            "rows": [asdict(r) | {"ratio": r.ratio} for r in rows], "cold_open": opens},
            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
