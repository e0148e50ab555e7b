#!/usr/bin/env bash
# The dashboard's overview of the last 30 days over CALLS seeded calls, timed in headless
# Chromium from navigation to every figure drawn (docs/benchmarks.md#dashboard).
#
#   bash bench/dashboard.sh
#
# A fresh SQLite file, `calltrail migrate`, CALLS calls seeded over the 30 whole UTC days
# before today (bench/seed_sqlite.sql, as bench/query.sh does), `calltrail migrate` again
# (fills the statistics tables), `calltrail serve` on a free loopback port with an API key,
# then LOADS timed loads of /dashboard#/overview?range=30d after one warm-up load.
#
# Knobs (environment): CALLS=1000000, LOADS=10, ZONES="UTC Asia/Kolkata" (the browser's
# time zone, one measurement each: whole UTC days come from the statistics tables, other
# zones' first and last day partly from the calls), QUIET_WAIT=600 (seconds to wait for
# the CPUs to be 90 % idle for 15 s before measuring; 0: don't), CALLTRAIL_BIN= (an already
# built binary; skips `cargo build --release`).
set -euo pipefail

cd "$(dirname "$0")/.."
CALLS=${CALLS:-1000000}
LOADS=${LOADS:-10}
ZONES=${ZONES:-"UTC Asia/Kolkata"}
QUIET_WAIT=${QUIET_WAIT:-600}
bench_py=bench/query_latency.py
key=bench-key

work=$(mktemp -d "${TMPDIR:-/tmp}/calltrail-dashboard-bench.XXXXXX")
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${CALLTRAIL_BIN:-} ]]; then
    bin=$CALLTRAIL_BIN
else
    cargo build --release --quiet --bin calltrail
    bin=target/release/calltrail
fi
(cd tests/browser && [[ -d node_modules/playwright-core ]] || npm ci --no-audit --no-fund --silent)

day0=$(( $(date -u +%s) / 86400 * 86400 - 30 * 86400 ))
file=$work/calltrail.db
export DATABASE_URL=sqlite://$file
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
"$bin" migrate >/dev/null
echo "seeding $CALLS calls over $(date -u -d "@$day0" +%F) .. $(date -u -d "@$((day0 + 29 * 86400))" +%F)"
python3 "$bench_py" seed-sqlite "$file" "$CALLS" "$day0"
"$bin" migrate >/dev/null
port=$(python3 "$bench_py" free-port)
CALLTRAIL__SERVER__BIND=127.0.0.1:$port CALLTRAIL__API__KEYS=$key CALLTRAIL__LOG__LEVEL=warn \
    "$bin" serve 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
if (( QUIET_WAIT > 0 )); then python3 "$bench_py" wait-quiet "$QUIET_WAIT"; fi
echo "load: $(uptime | sed 's/.*load average/load average/')"
echo "overview of the last 30 days, $LOADS loads after one warm-up, milliseconds:"
for zone in $ZONES; do
    ZONE=$zone node tests/browser/measure-overview.js "http://127.0.0.1:$port" "$key" "$LOADS"
done
