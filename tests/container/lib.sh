# Printing, checks and waits shared by the container test's parts (sourced by run.sh).

passed=0
failed=0

step() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
pass() {
  printf 'ok   %s\n' "$1"
  passed=$((passed + 1))
}
fail() {
  printf 'FAIL %s\n' "$1"
  [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 25 | sed 's/^/     | /'
  failed=$((failed + 1))
}
die() {
  printf 'container: %s\n' "$*" >&2
  exit 2
}

# check DESCRIPTION COMMAND...: the command's exit status decides; its output is shown on failure.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what" "$out"; fi
}

# wait_for SECONDS COMMAND...: retries the command every half second until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# http METHOD URL [curl args...]: prints "STATUS BODY".
http() {
  local method=$1 url=$2 out
  shift 2
  out=$(curl -sS --max-time 10 -X "$method" -w '\n%{http_code}' "$@" "$url") || return 1
  printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}

# expect_http DESCRIPTION STATUS BODY_PATTERN METHOD URL [curl args...]
expect_http() {
  local what=$1 want_status=$2 pattern=$3 answer
  shift 3
  answer=$(http "$@" 2>&1) || true
  if [ "${answer%% *}" = "$want_status" ] && grep -Eq -- "$pattern" <<<"$answer"; then
    pass "$what"
  else
    fail "$what" "expected $want_status matching /$pattern/, got: $answer"
  fi
}

# podman without its output; what it says on stderr is shown only when it fails (without
# systemd it logs that it cannot schedule health checks, which the test runs itself).
podman_quiet() {
  local err
  if ! err=$(podman "$@" 2>&1 >/dev/null); then
    printf '%s\n' "$err" >&2
    return 1
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# timed LABEL COMMAND...: runs the command and records how long it took in $timings.
timings=()
timed() {
  local label=$1 start=$SECONDS status=0
  shift
  "$@" || status=$?
  timings+=("$label: $((SECONDS - start)) s")
  return "$status"
}
