#!/usr/bin/env bash
# The retention benchmark: POST /notify latency at a fixed rate while retention deletes a
# large backlog of old calls, against the same rate with retention off, on both stores.
#
# For each store: a fresh database (PostgreSQL: on DATABASE_URL's server; SQLite: a
# temporary file); N calls of 2020 written with SQL, each with two events and their two
# deliveries; then calltrail started without retention and the fixed rate for
# --rate-duration seconds, then calltrail started with retention.days = 30 and the same
# rate while it deletes the N calls (how long that took is printed too). The pair is run
# --purge-rounds times (N calls seeded again before each), so the two phases alternate.
#
# Usage: bench/retention.sh [--stores postgres,sqlite] [--purge 500000] [--purge-rounds 2]
#                           [--rate 500] [--rate-duration 60] [--connections 64]
# CALLTRAIL__* variables reach calltrail (e.g. CALLTRAIL__RETENTION__BATCH_SIZE=1000).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bench/ingest.sh --purge 500000 --rate 500 --rate-duration 60 "$@"
