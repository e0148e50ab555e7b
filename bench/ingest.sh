#!/usr/bin/env bash
# The ingest benchmark (issue 5), rerunnable on any machine with Rust and PostgreSQL.
#
# Builds calltrail in release mode, then for each store (PostgreSQL on a fresh database of
# DATABASE_URL's server, and SQLite in a temporary file):
#   - POST /notify with distinct realistic notifications at 64 connections for 20 s,
#   - POST /notify at a fixed 2,000 requests/s for 10 s right after (p99 counted from the
#     schedule), while the machine still writes out what the burst left in the page cache,
#   - `sync`, a rest of 2 s (--settle), and the fixed rate again for 10 s: the steady state,
#   - GET /healthz at 64 connections for 20 s: the same binary's HTTP ceiling,
# and prints requests/s, p50/p99/max latency, errors, idle and peak RSS of calltrail, the
# notify/healthz ratio, and checks that events + duplicate deliveries = answers 200.
#
# Usage: bench/ingest.sh [--stores postgres,sqlite] [--connections 64] [--duration 20] [--settle 2]
#                        [--rate 2000] [--rate-duration 10] [--log-level info]
# Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the
# PostgreSQL server; CALLTRAIL__* variables (e.g. CALLTRAIL__NOTIFY__BATCH_MAX=64) are passed
# to calltrail; CALLTRAIL_BENCH_BIN runs another calltrail binary (to compare two builds
# back to back). Traffic stays on 127.0.0.1; each phase stops after its duration.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "rustc:   $(rustc --version)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine lowers every figure)"
if command -v psql >/dev/null 2>&1; then
  echo "server:  $(psql "$DATABASE_URL" -Atc 'show server_version' 2>/dev/null || echo unknown) (PostgreSQL)"
fi
# `cargo bench` builds calltrail itself in release mode (the bench profile), with the same
# dependency features as the load generator, so nothing is built twice.
exec cargo bench --quiet --bench ingest_load -- "$@"
