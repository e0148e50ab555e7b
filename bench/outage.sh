#!/usr/bin/env bash
# The outage benchmark, rerunnable on any machine with Rust and PostgreSQL.
#
# Builds calltrail in release mode and starts it on a fresh PostgreSQL database (of
# DATABASE_URL's server) reached through a TCP proxy the benchmark controls, its spool in a
# temporary directory. Sends notifications at a fixed rate from 64 connections (latency
# counted from each request's scheduled time), cuts the proxy in the middle (every database
# connection closed, new ones refused, as in a database restart or failover), restores it,
# and keeps sending. Prints the answers by status, p50/p99/max latency before, during and
# after the cut, the spool's depth over time and the time to drain it; checks that every 200
# is in the database and that the call records equal those of the same notifications
# imported (`calltrail import`) into another fresh database with no fault.
#
# Usage: bench/outage.sh [--rate 500] [--connections 64] [--before 20] [--cut 60] [--after 30]
# Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); its host
# must be an IP address or localhost. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine lowers every figure)"
exec cargo bench --quiet --bench ingest_load -- --outage "$@"
