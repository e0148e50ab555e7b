#!/usr/bin/env bash
# Stalled-connections benchmark (docs/benchmarks.md, "Stalled connections").
#
#   bash bench/stalled.sh
#
# Starts the release calltrail on a temporary SQLite file on a free loopback port, then times
# POST /notify from one well-behaved sender before, during and after STALLED connections
# that each sent half a request's headers (bench/stalled.py). So that the stalled connections
# stay open for the whole measurement, calltrail's server.header_timeout_ms is raised to 10
# minutes here: the figures are those of a server holding that many stalled connections, not
# of one that has cut them off. Talks to 127.0.0.1 only; the file is removed at the end.
#
# Knobs (environment): STALLED=10000, REQUESTS=3000 (per phase), WARMUP=300,
# CALLTRAIL_BIN= (an already built binary; skips `cargo build --release`).
# Needs an open-file limit of STALLED + ~500 for both processes (`ulimit -n`).
set -euo pipefail

cd "$(dirname "$0")/.."
STALLED=${STALLED:-10000}
work=$(mktemp -d "${TMPDIR:-/tmp}/calltrail-stalled.XXXXXX")
server_pid=

cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if (( $(ulimit -n) < STALLED + 500 )); then
    ulimit -n $((STALLED + 500)) || { echo "ulimit -n is $(ulimit -n): too low for $STALLED connections"; exit 1; }
fi
if [[ -n ${CALLTRAIL_BIN:-} ]]; then
    bin=$CALLTRAIL_BIN
else
    cargo build --release --quiet --bin calltrail
    bin=target/release/calltrail
fi

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), open-file limit $(ulimit -n)"
port=$(python3 bench/query_latency.py free-port)
DATABASE_URL=sqlite://$work/calltrail.db CALLTRAIL__SERVER__BIND=127.0.0.1:$port \
    CALLTRAIL__SERVER__HEADER_TIMEOUT_MS=600000 CALLTRAIL__METRICS__PUBLIC=true \
    CALLTRAIL__LOG__LEVEL=warn "$bin" serve 2>"$work/calltrail.log" &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
python3 bench/stalled.py "http://127.0.0.1:$port" "$server_pid"
