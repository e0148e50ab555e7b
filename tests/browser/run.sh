#!/usr/bin/env bash
# The dashboard's browser tests (docs/development.md#browser-tests): installs what is missing
# (Debian's chromium, node and npm, the pinned playwright-core; never a downloaded browser),
# builds calltrail, and runs the tests with node's test runner. Screenshots of every page
# (1366x768) go to target/browser-shots/ (or SHOTS_DIR).
#
# CALLTRAIL_BIN: an already built calltrail (skips `cargo build`).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if (( ${#missing[@]} )); then
    echo "browser tests: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ ! -d node_modules/playwright-core ]]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
fi
if [[ -z ${CALLTRAIL_BIN:-} ]]; then
    (cd ../.. && cargo build --locked --quiet --bin calltrail)
fi
exec node --test dashboard.test.js
