#!/usr/bin/env bash
# Instructions per request of calltrail builds, counted by valgrind's callgrind: a figure that
# does not depend on what else the machine is doing (docs/benchmarks.md, "Cost per request").
#
#   bash bench/instructions.sh BINARY [BINARY…]
#
# For each binary: GET /healthz (SQLite) and POST /notify (PostgreSQL, a fresh database on
# DATABASE_URL's server, dropped after) sent N1 and then N2 times by one sequential client,
# each in a run of its own under callgrind; the figure is the difference of the two runs'
# totals over N2 - N1 requests, so startup and shutdown cancel out. Build the binaries in
# release mode first (e.g. `cargo build --release`, copied aside for each commit).
# Knobs (environment): N1=1000, N2=3000, DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres). Talks to 127.0.0.1 only.
set -euo pipefail

cd "$(dirname "$0")/.."
N1=${N1:-1000}
N2=${N2:-3000}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/calltrail-instructions.XXXXXX")
server_pid=
pg_db=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
    if [[ -n $pg_db ]]; then
        psql -q "$DATABASE_URL" -c "drop database if exists $pg_db with (force)" >/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Instructions of one run of `bin` answering `n` requests to `path` on `store`.
count() {
    local bin=$1 path=$2 n=$3 store=$4 url port
    port=$(python3 bench/query_latency.py free-port)
    rm -f "$work"/c.db*
    if [[ $store == postgres ]]; then
        pg_db=calltrail_instructions_$$
        psql -q "$DATABASE_URL" -c "create database $pg_db" >/dev/null
        url="${DATABASE_URL%/*}/$pg_db"
    else
        url="sqlite://$work/c.db"
    fi
    DATABASE_URL=$url CALLTRAIL__SERVER__BIND=127.0.0.1:$port CALLTRAIL__LOG__LEVEL=warn \
        valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" serve \
        2>"$work/valgrind.log" &
    server_pid=$!
    python3 bench/stalled.py --sequential "http://127.0.0.1:$port" "$path" "$n"
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
    if [[ $store == postgres ]]; then
        psql -q "$DATABASE_URL" -c "drop database $pg_db with (force)" >/dev/null
        pg_db=
    fi
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/valgrind.log"
}

printf '%-40s %-22s %s\n' binary request "instructions per request"
for bin in "$@"; do
    for case in "/healthz sqlite" "/notify postgres"; do
        read -r path store <<<"$case"
        first=$(count "$bin" "$path" "$N1" "$store")
        second=$(count "$bin" "$path" "$N2" "$store")
        printf '%-40s %-22s %d\n' "$bin" "$path ($store)" $(( (second - first) / (N2 - N1) ))
    done
done
