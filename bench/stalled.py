#!/usr/bin/env python3
"""The stalled-connections benchmark of bench/stalled.sh (standard library only).

    stalled.py BASE_URL PID
    stalled.py --sequential BASE_URL PATH N   (for bench/instructions.sh)

Times POST /notify from one well-behaved sender (sequential requests on one keep-alive
connection) three times: before, while STALLED connections each hold half a request, and
after they are closed. Prints p50/p99/max of each phase, how many connections calltrail
reported open (`calltrail_http_connections`) and its RSS. Knobs (environment): STALLED
(default 10000), REQUESTS per phase (default 3000), WARMUP (default 300).
"""

import http.client
import json
import os
import socket
import sys
import time
import urllib.parse
import uuid

STALLED = int(os.environ.get("STALLED", "10000"))
REQUESTS = int(os.environ.get("REQUESTS", "3000"))
WARMUP = int(os.environ.get("WARMUP", "300"))


def rss_mb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_connections(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith("calltrail_http_connections "):
            return int(float(line.split()[1]))
    return -1


def notification():
    return json.dumps(
        {
            "conversationId": str(uuid.uuid4()),
            "status": "completed",
            "reasonCode": "Caller-disconnected",
            "reason": "200 OK",
            "duration": "14",
            "machinedetection": "amd_human_detected",
            "callconnecttime": "5/8/2023,11:32:49AM",
            "callDisconnectTime": "5/8/2023,11:33:03AM",
        }
    )


def measure(host, port, count):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    latencies = []
    for _ in range(count):
        body = notification()
        started = time.perf_counter()
        conn.request("POST", "/notify", body, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"/notify answered {response.status}")
    conn.close()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return pick(0.5), pick(0.99), latencies[-1] * 1000


def stall(host, port, count):
    sockets = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(b"POST /notify HTTP/1.1\r\nHost: calltrail\r\nContent-")
        sockets.append(s)
    return sockets


def sequential(base_url, path, count):
    """Waits until calltrail is ready, then sends `count` requests to `path`, one at a time."""
    url = urllib.parse.urlsplit(base_url)
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    for _ in range(count):
        if path == "/notify":
            conn.request("POST", path, notification(), {"content-type": "application/json"})
        else:
            conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")


def main():
    if sys.argv[1] == "--sequential":
        sequential(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    url = urllib.parse.urlsplit(sys.argv[1])
    pid = int(sys.argv[2])
    host, port = url.hostname, url.port
    measure(host, port, WARMUP)
    rows = []

    def phase(name):
        p50, p99, worst = measure(host, port, REQUESTS)
        rows.append((name, p50, p99, worst, open_connections(host, port), rss_mb(pid)))

    phase("before")
    started = time.perf_counter()
    sockets = stall(host, port, STALLED)
    opened_in = time.perf_counter() - started
    phase(f"{STALLED} stalled")
    for s in sockets:
        s.close()
    time.sleep(1)
    phase("after")

    print(f"{STALLED} stalled connections opened in {opened_in:.1f} s")
    print(f"{'phase':<16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'open conns':>11} {'RSS MB':>8}")
    for name, p50, p99, worst, conns, rss in rows:
        print(f"{name:<16} {p50:>8.2f} {p99:>8.2f} {worst:>8.2f} {conns:>11} {rss:>8.1f}")


if __name__ == "__main__":
    main()
