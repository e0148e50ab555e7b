#!/usr/bin/env bash
# Conformance fuzzing: schemathesis generates requests from /openapi.json, valid and invalid,
# and checks every answer against the document (statuses, content types, headers, schemas),
# that invalid input is refused and valid input accepted, and that credentials are enforced.
#
# Runs a debug build of calltrail on SQLite in a temporary directory, with API keys and a
# notification token configured, and dial-outs placed through calltrail-sim (the gateway
# stand-in), which plays each call back to calltrail. Run it alone with `.ci/schemathesis.sh`;
# `.ci/run` calls it.
#
# Exclusions, each narrow (settings in .ci/schemathesis.toml):
# - `POST /notify/{token}` is sent the configured token, not a generated one (always a 401).
# - .ci/schemathesis_hooks.py drops a "schema-valid request rejected" failure only for the
#   refusals a schema cannot express (`until` not after `since`, a cursor the API did not
#   mint, too many stats buckets, reprocessing a stored body that is refused, an
#   Idempotency-Key an earlier request used with another body, a notification written as
#   XML for the documented `*/*`); see there.
# - `--generation-allow-x00 false`: U+0000 is refused in every JSON string of a notification
#   (PostgreSQL's jsonb cannot hold it), also in the free-form fields the schema leaves open.
#
# One worker: two workers are two threads drawing from Hypothesis at once, and a CI run once
# failed inside Hypothesis ("FlakyFailure" in its lambda-source cache) while drawing a body,
# before any request was sent. With one worker nothing draws beside it, and the run takes no
# longer here (41 s either way on 2 cores). The count of cases still varies a little from run
# to run: the stateful phase follows the ids the server answers with.
#
# Environment: SCHEMATHESIS_EXAMPLES (cases per operation and phase, default 60),
# SCHEMATHESIS_SEED (default 20240501).
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
# Hypothesis, which generates the cases, is pinned too, so that a fresh environment in CI
# generates as a developer's does.
hypothesis=6.170.17
venv=.ci/.venv
examples="${SCHEMATHESIS_EXAMPLES:-60}"
seed="${SCHEMATHESIS_SEED:-20240501}"
key=schemathesis-api-key
token=schemathesis-notify-token

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$version" \
  || ! "$venv/bin/python" -c "import hypothesis, sys; sys.exit(hypothesis.__version__ != '$hypothesis')" 2>/dev/null; then
  echo "schemathesis: installing schemathesis $version into $venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 makes virtual environments only with python3-venv.
    echo "schemathesis: installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" "hypothesis==$hypothesis"
fi

cargo build --quiet --locked --bin calltrail --bin calltrail-sim
bin="${CARGO_TARGET_DIR:-target}/debug"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: bind to port 0 and read back what the system chose.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
gateway_port=$(free_port)
base="http://127.0.0.1:$port"

"$bin/calltrail-sim" serve --bind "127.0.0.1:$gateway_port" --speed 100 --log-level warn \
  >"$work/sim.log" 2>&1 &
pids+=($!)

env -u DATABASE_URL \
  CALLTRAIL__SERVER__BIND="127.0.0.1:$port" \
  CALLTRAIL__DATABASE__URL="sqlite://$work/calltrail.db" \
  CALLTRAIL__API__KEYS="$key" \
  CALLTRAIL__NOTIFY__TOKENS="$token" \
  CALLTRAIL__DIALOUT__BASE_URL="http://127.0.0.1:$gateway_port" \
  CALLTRAIL__DIALOUT__BOT_ID=schemathesis-bot \
  CALLTRAIL__DIALOUT__CLIENT_ID=calltrail-sim \
  CALLTRAIL__DIALOUT__CLIENT_SECRET=calltrail-sim-secret \
  CALLTRAIL__LOG__LEVEL=warn \
  "$bin/calltrail" >"$work/calltrail.log" 2>&1 &
pid=$!
pids+=("$pid")

for _ in $(seq 1 100); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/calltrail.log"; exit 1; }
  sleep 0.1
done
curl -fs "$base/readyz" >/dev/null || { echo "schemathesis: calltrail did not become ready"; cat "$work/calltrail.log"; exit 1; }

# A stored notification and dial-out give the path parameters something to find.
curl -fs -X POST "$base/notify/$token" --data-binary @tests/data/samples/01-completed-human.json >/dev/null
curl -fs -X POST "$base/v1/dialouts" -H "X-Api-Key: $key" \
  --data '{"target": "tel:911234567890", "caller": "+127061657882"}' >/dev/null

status=0
SCHEMATHESIS_NOTIFY_TOKEN="$token" \
"$venv/bin/schemathesis" --config-file .ci/schemathesis.toml run "$base/openapi.json" \
  --checks all \
  --seed "$seed" \
  --max-examples "$examples" \
  --generation-allow-x00 false \
  --generation-database none \
  --workers 1 \
  --header "X-Api-Key: $key" \
  --header "X-Calltrail-Token: $token" \
  --no-color \
  || status=$?

if [ "$status" -ne 0 ]; then
  echo "schemathesis: failed; calltrail's and the gateway stand-in's logs follow"
  tail -n 50 "$work/calltrail.log" "$work/sim.log"
fi
exit "$status"
