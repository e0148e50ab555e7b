#!/usr/bin/env bash
# Query-latency benchmark of the read API (docs/benchmarks.md, "Query performance").
#
#   bash bench/query.sh
#
# For each store: a fresh database, `calltrail migrate`, CALLS calls seeded with SQL over the
# 30 whole UTC days before today, ANALYZE, `calltrail migrate` again (it finds calls without
# statistics tables' counts and fills them, as on an upgrade), `calltrail serve` on a free loopback port, then
# p50/p99/max of sequential requests (bench/query_latency.py). Talks to 127.0.0.1 only; the
# PostgreSQL database it creates and the SQLite file are removed at the end.
#
# Knobs (environment):
#   CALLS=1000000            calls to seed
#   STORES="postgres sqlite" which stores, in order
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
#                            a server where the bench may create and drop a database
#   REQUESTS=300             timed requests per list scenario
#   STATS_REQUESTS=100       timed requests per statistics scenario
#   BUDGET=60                seconds one scenario may take at most (at least 10 samples)
#   WARMUP=20                untimed requests before each scenario (at most 6 for statistics)
#   CALLTRAIL_BIN=           an already built binary (skips `cargo build --release`)
#   PG_SETTINGS=             e.g. "jit=off plan_cache_mode=force_custom_plan": set on the
#                            bench database (ALTER DATABASE), to try server settings
#   QUIET_WAIT=600           before measuring each store, wait up to this many seconds for
#                            the CPUs to be 90% idle for 15 s (0: don't wait)
#   RESULTS=                 where to keep the figures as JSON (default: a temp file)
set -euo pipefail

cd "$(dirname "$0")/.."
export CALLS=${CALLS:-1000000}
STORES=${STORES:-"postgres sqlite"}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export REQUESTS=${REQUESTS:-300} STATS_REQUESTS=${STATS_REQUESTS:-100}
export BUDGET=${BUDGET:-60} WARMUP=${WARMUP:-20}
QUIET_WAIT=${QUIET_WAIT:-600}
helper=bench/query_latency.py

work=$(mktemp -d "${TMPDIR:-/tmp}/calltrail-bench.XXXXXX")
RESULTS=${RESULTS:-$work/results.json}
rm -f "$RESULTS"
server_pid=
pg_db=
pg_admin=

cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n $pg_db ]]; then
        psql -q "$pg_admin" -c "drop database if exists $pg_db with (force)" >/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

if [[ -n ${CALLTRAIL_BIN:-} ]]; then
    bin=$CALLTRAIL_BIN
else
    step "building calltrail (release)"
    cargo build --release --quiet --bin calltrail
    bin=target/release/calltrail
fi

# The seeded days: [day0, day0 + 30 days), the 30 whole UTC days before today.
day0=$(( $(date -u +%s) / 86400 * 86400 - 30 * 86400 ))

step "machine"
echo "$(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
echo "calls: $CALLS over $(date -u -d "@$day0" +%F) .. $(date -u -d "@$((day0 + 29 * 86400))" +%F)"

# Starts calltrail on `url` (log level warn: the query path is measured, not the request
# log line), waits until it is ready and the CPUs are idle, measures, stops it.
serve_and_measure() {
    local store=$1 url=$2 port
    port=$(python3 "$helper" free-port)
    DATABASE_URL=$url CALLTRAIL__SERVER__BIND=127.0.0.1:$port CALLTRAIL__LOG__LEVEL=warn \
        "$bin" serve 2>"$work/$store.log" &
    server_pid=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/$store.log"; exit 1; }
    if (( QUIET_WAIT > 0 )); then
        step "$store: waiting for idle CPUs"
        python3 "$helper" wait-quiet "$QUIET_WAIT"
    fi
    step "$store: measuring"
    python3 "$helper" measure "$store" "http://127.0.0.1:$port" "$CALLS" "$day0" "$RESULTS"
    kill "$server_pid"
    wait "$server_pid" || true
    server_pid=
}

for store in $STORES; do
    case $store in
    postgres)
        command -v psql >/dev/null || { echo "psql is needed for the PostgreSQL store" >&2; exit 1; }
        base=${DATABASE_URL%%\?*}
        pg_admin=$base
        # Apart from benches/ingest_load's databases (`calltrail_bench_<pid>`, dropped by name).
        pg_db=calltrail_query_bench_$(date +%s)_$$
        url=${base%/*}/$pg_db
        psql -q "$pg_admin" -c "create database $pg_db" >/dev/null
        echo "PostgreSQL: $(psql -Atq "$url" -c 'show server_version')," \
            "shared_buffers $(psql -Atq "$url" -c 'show shared_buffers')," \
            "work_mem $(psql -Atq "$url" -c 'show work_mem')," \
            "jit $(psql -Atq "$url" -c 'show jit')"
        for setting in ${PG_SETTINGS:-}; do
            psql -q "$url" -c "alter database $pg_db set ${setting%%=*} = '${setting#*=}'" >/dev/null
            echo "set on the bench database: $setting"
        done
        DATABASE_URL=$url "$bin" migrate >/dev/null
        step "postgres: seeding $CALLS calls"
        time psql -q "$url" -v calls="$CALLS" -v day0="$day0" -v seed=0.42 \
            -f bench/seed_postgres.sql >/dev/null
        echo "calls table: $(psql -Atq "$url" -c "select pg_size_pretty(pg_table_size('calls')) || ' + indexes ' || pg_size_pretty(pg_indexes_size('calls'))")"
        step "postgres: filling the statistics tables (calltrail migrate)"
        time DATABASE_URL=$url "$bin" migrate >/dev/null
        # Flush the seeding now rather than in a checkpoint that overlaps the measurements
        # (needs superuser or pg_checkpoint; skipped otherwise).
        psql -q "$url" -c checkpoint >/dev/null 2>&1 || echo "(no checkpoint: not permitted)"
        serve_and_measure postgres "$url"
        psql -q "$pg_admin" -c "drop database $pg_db with (force)" >/dev/null
        pg_db=
        ;;
    sqlite)
        file=$work/calltrail.db
        DATABASE_URL=sqlite://$file "$bin" migrate >/dev/null
        step "sqlite: seeding $CALLS calls"
        time python3 "$helper" seed-sqlite "$file" "$CALLS" "$day0"
        step "sqlite: filling the statistics tables (calltrail migrate)"
        time DATABASE_URL=sqlite://$file "$bin" migrate >/dev/null
        echo "SQLite file: $(du -h "$file" | cut -f1)"
        serve_and_measure sqlite "sqlite://$file"
        rm -f "$file" "$file-wal" "$file-shm"
        ;;
    *)
        echo "unknown store '$store' (postgres, sqlite)" >&2
        exit 1
        ;;
    esac
done

step "results (milliseconds, client-side, sequential requests on one keep-alive connection)"
python3 "$helper" report "$RESULTS"
