#!/usr/bin/env python3
"""Helpers of bench/query.sh (standard library only).

    query_latency.py free-port
    query_latency.py wait-quiet SECONDS
    query_latency.py seed-sqlite DB CALLS DAY0
    query_latency.py measure STORE BASE_URL CALLS DAY0 RESULTS_JSON
    query_latency.py report RESULTS_JSON

`measure` times sequential requests end to end on one keep-alive connection, the way a
script paging through the API would, and appends its figures to RESULTS_JSON.
Knobs (environment): REQUESTS (per list scenario, default 300), STATS_REQUESTS (default 100),
BUDGET (seconds one scenario may take at most, default 60; at least 10 samples are taken),
WARMUP (untimed requests per scenario first, default 20; at most 6 for the statistics).
"""

import http.client
import json
import os
import socket
import sqlite3
import sys
import time
import urllib.parse
from datetime import datetime, timezone

DAY = 86400


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def cpu_idle_fraction(seconds=5.0):
    """Share of CPU time spent idle over the next `seconds` (Linux /proc/stat)."""
    def sample():
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)
    idle1, total1 = sample()
    time.sleep(seconds)
    idle2, total2 = sample()
    return (idle2 - idle1) / max(1, total2 - total1)


def wait_quiet(limit):
    """Waits until the CPUs were at least 90% idle for 15 s, at most `limit` seconds."""
    if not os.path.exists("/proc/stat"):
        return
    deadline, quiet, idle = time.monotonic() + float(limit), 0, 0.0
    while time.monotonic() < deadline:
        idle = cpu_idle_fraction()
        quiet = quiet + 1 if idle >= 0.9 else 0
        if quiet == 3:
            print(f"CPUs idle ({idle:.0%}) for 15 s: measuring", flush=True)
            return
    print(f"CPUs still busy ({idle:.0%} idle) after {limit} s: measuring anyway, "
          "expect noisy figures", flush=True)


def seed_sqlite(db, calls, day0):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "seed_sqlite.sql"), encoding="utf-8") as f:
        lines = [line for line in f if not line.lstrip().startswith("--")]
    conn = sqlite3.connect(db, isolation_level=None)
    params = {"calls": int(calls), "day0": int(day0)}
    statement = ""
    for line in lines:
        statement += line
        if sqlite3.complete_statement(statement):
            # Autocommit: each statement (the insert of every call, too) is one transaction.
            conn.execute(statement.strip(), params)
            statement = ""
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(sorted_ms, p):
    """Nearest rank."""
    rank = max(1, -(-len(sorted_ms) * p // 100))
    return sorted_ms[int(rank) - 1]


def summary(samples_ms):
    s = sorted(samples_ms)
    return {
        "n": len(s),
        "p50": percentile(s, 50),
        "p99": percentile(s, 99),
        "max": s[-1],
    }


class Client:
    def __init__(self, base_url):
        url = urllib.parse.urlsplit(base_url)
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"refusing to benchmark {base_url}: loopback only")
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def get(self, path):
        """(milliseconds, status, body) of one request, body read in full."""
        start = time.perf_counter_ns()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter_ns() - start) / 1e6
        if response.status != 200:
            sys.exit(f"GET {path}: {response.status} {body[:500]!r}")
        return elapsed, body

    def timed(self, path, requests, budget, warmup):
        for _ in range(warmup):
            self.get(path)
        samples, deadline = [], time.monotonic() + budget
        body = b""
        while len(samples) < requests and (len(samples) < 10 or time.monotonic() < deadline):
            elapsed, body = self.get(path)
            samples.append(elapsed)
        return samples, body


def measure(store, base_url, calls, day0, results_path):
    calls, day0 = int(calls), int(day0)
    requests = int(os.environ.get("REQUESTS", "300"))
    stats_requests = int(os.environ.get("STATS_REQUESTS", "100"))
    budget = float(os.environ.get("BUDGET", "60"))
    warmup = int(os.environ.get("WARMUP", "20"))
    client = Client(base_url)
    rows = []

    def record(name, samples):
        row = {"store": store, "scenario": name, **summary(samples)}
        rows.append(row)
        print(f"  {name:<30} n={row['n']:<4} p50={row['p50']:8.2f} ms  "
              f"p99={row['p99']:8.2f} ms  max={row['max']:8.2f} ms", flush=True)

    # 1. The first page, unfiltered.
    samples, body = client.timed("/v1/calls", requests, budget, warmup)
    first = json.loads(body)
    assert len(first["data"]) == 50 and first["next_cursor"], "first page is not full"
    record("first page (limit 50)", samples)

    # 2. outcome=machine over the last seeded day.
    since, until = iso(day0 + 29 * DAY), iso(day0 + 30 * DAY)
    path = f"/v1/calls?outcome=machine&since={since}&until={until}"
    samples, body = client.timed(path, requests, budget, warmup)
    page = json.loads(body)
    assert len(page["data"]) == 50
    assert all(c["outcome"] == "machine" and since <= c["occurred_at"][:19] + "Z" < until
               for c in page["data"])
    record("outcome=machine, one day", samples)

    # 3. Page 100 by cursor: walk 99 pages once, then time the 100th repeatedly.
    walk, cursor = [], first["next_cursor"]
    for _ in range(98):
        elapsed, body = client.get("/v1/calls?cursor=" + cursor)
        walk.append(elapsed)
        cursor = json.loads(body)["next_cursor"]
    samples, body = client.timed("/v1/calls?cursor=" + cursor, requests, budget, warmup)
    assert len(json.loads(body)["data"]) == 50
    record("page 100 by cursor", samples)
    record("pages 2-99 (one walk)", walk)

    # 4. A page deep in the list: after the newest call of the first seeded day, which
    # some 97% of the calls precede in the list's newest-first order.
    _, body = client.get(f"/v1/calls?until={iso(day0 + DAY)}&limit=1")
    deep = json.loads(body)["next_cursor"]
    samples, body = client.timed("/v1/calls?cursor=" + deep, requests, budget, warmup)
    assert len(json.loads(body)["data"]) == 50
    record("page ~97% deep by cursor", samples)

    # 5. Daily statistics over the 30 seeded days. PostgreSQL switches a prepared
    # statement to its generic plan after five runs: warm up past that, to time the
    # steady state.
    path = f"/v1/stats?bucket=day&since={iso(day0)}&until={iso(day0 + 30 * DAY)}"
    samples, body = client.timed(path, stats_requests, budget, min(warmup, 6))
    stats = json.loads(body)
    assert stats["calls"] == calls, f"stats count {stats['calls']} calls, seeded {calls}"
    assert len(stats["buckets"]) == 30
    record("stats, bucket=day, 30 days", samples)

    # 6. A rolling week that starts at 13:00: six whole days from the statistics tables,
    # eleven hours of calls read from `calls`, by outcome=machine.
    week = f"since={iso(day0 + 23 * DAY + 13 * 3600)}&until={iso(day0 + 30 * DAY)}"
    path = f"/v1/stats?bucket=day&outcome=machine&{week}"
    samples, body = client.timed(path, stats_requests, budget, min(warmup, 6))
    assert len(json.loads(body)["buckets"]) == 7
    record("stats, outcome=machine, 6.5 days", samples)

    # 7. For comparison, hourly statistics of the last seeded day.
    path = f"/v1/stats?bucket=hour&since={since}&until={until}"
    samples, body = client.timed(path, stats_requests, budget, min(warmup, 6))
    assert len(json.loads(body)["buckets"]) == 24
    record("stats, bucket=hour, one day", samples)

    # 8. A filter the statistics tables do not keep (`source=`, as the dashboard's Source
    # picker sends): the month's calls are counted from `calls`. Every seeded call is kore.
    path = f"/v1/stats?bucket=day&source=kore&since={iso(day0)}&until={iso(day0 + 30 * DAY)}"
    samples, body = client.timed(path, stats_requests, budget, min(warmup, 6))
    assert json.loads(body)["calls"] == calls
    record("stats, source=kore, 30 days", samples)

    results = []
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results + rows, f, indent=1)


def report(results_path):
    with open(results_path, encoding="utf-8") as f:
        rows = json.load(f)
    print("| store | scenario | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['store']} | {r['scenario']} | {r['n']} | {r['p50']:.1f} | "
              f"{r['p99']:.1f} | {r['max']:.1f} |")


def main(argv):
    commands = {"free-port": free_port, "wait-quiet": wait_quiet, "seed-sqlite": seed_sqlite,
                "measure": measure, "report": report}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
