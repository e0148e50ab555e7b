# The image built from the project's Dockerfile, run on its own with SQLite on the /data volume
# (sourced by run.sh).

app=calltrail-test-app
volume=calltrail-test-data
token=$(random_hex)
api_key=$(random_hex)
sample=$root/tests/data/samples/01-completed-human.json
conversation=$(jq -r .conversationId "$sample")

# The Dockerfile as it is; cargo-chef's dependency layer comes from podman's cache while
# Cargo.toml and Cargo.lock are unchanged. The builder stage is tagged too, so that pruning
# (--prune) removes earlier builds but keeps this one and its dependency layer.
build_image() {
  local log=$cache_dir/build.log
  note "podman build --pull=never --format docker -f Dockerfile . (output in $log)"
  if ! podman build --pull=never --format docker "${ca_mount[@]}" --target builder \
    -t "$builder_image" -f "$root/Dockerfile" "$root" >"$log" 2>&1 ||
    ! podman build --pull=never --format docker "${ca_mount[@]}" -t "$image" \
      -f "$root/Dockerfile" "$root" >>"$log" 2>&1; then
    tail -n 40 "$log"
    return 1
  fi
  note "$(grep -c '^--> Using cache' "$log" || true) of $(grep -Ec '^\[[0-9]+/[0-9]+\] STEP [0-9]+/[0-9]+: [^F]' "$log" || true) build steps came from podman's cache"
}

remove_app() {
  podman rm -f -t 0 "$app" >/dev/null 2>&1 || true
}

# start_app PORT [podman run args...]: read-only, as the image's own user, /data on the volume.
start_app() {
  local port=$1
  shift
  podman_quiet run -d --name "$app" --read-only -v "$volume:/data" -p "127.0.0.1:$port:8080" \
    "$@" "$image"
}

remove_app_and_volume() {
  remove_app
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
}

user_is_numeric_non_root() {
  [[ $(podman image inspect --format '{{.Config.User}}' "$image") =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]
}
has_healthcheck() {
  podman image inspect --format '{{.Config.Healthcheck.Test}}' "$image" | grep healthcheck >/dev/null
}
runs_as_nonroot() {
  [ "$(podman top "$app" huser user | tail -n +2 | awk '{ print $1, $2 }')" = "65532 nonroot" ]
}
# The SQLite file, seen from the host in the volume's directory.
database_on_volume() {
  local dir
  dir=$(podman volume inspect --format '{{.Mountpoint}}' "$volume")
  if as_root; then ls -ln "$dir"; else podman unshare ls -ln "$dir"; fi |
    grep -E '^-.* 65532 +65532 .* calltrail\.db$'
}
is_healthy() {
  podman healthcheck run "$app" >/dev/null 2>&1 || true
  [ "$(podman inspect --format '{{.State.Health.Status}}' "$app")" = healthy ]
}
logged_stop() { podman logs "$app" 2>&1 | grep 'calltrail stopped' >/dev/null; }

image_checks() {
  local port base version label
  port=$(free_port)
  base=http://127.0.0.1:$port
  remove_app_and_volume
  cleanups+=(remove_app_and_volume)

  note "image $(podman image inspect --format '{{.Id}} {{.Size}}' "$image" |
    awk '{ printf "%s, %d MB", substr($1, 1, 12), $2 / 1e6 }')"
  version=$(awk -F'"' '/^version *=/ { print $2; exit }' "$root/Cargo.toml")
  label=$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$image")
  check "image label org.opencontainers.image.version is $version (Cargo.toml)" \
    test "$label" = "$version"
  check "image runs as a numeric non-root user by default ($(podman image inspect --format '{{.Config.User}}' "$image"))" \
    user_is_numeric_non_root
  check "image has a health check (calltrail healthcheck)" has_healthcheck

  # Without tokens and API keys, 0.0.0.0 is refused, and the log says why.
  local refusal status
  status=0
  refusal=$(podman run --rm --read-only -v "$volume:/data" "$image" 2>&1) || status=$?
  if [ "$status" != 0 ] && grep -q 'refusing to listen on 0.0.0.0:8080 while notify.tokens or api.keys is empty' <<<"$refusal"; then
    pass "without tokens on 0.0.0.0 it refuses to start (exit $status), saying why: $(grep -o 'refusing[^:]*' <<<"$refusal" | head -n 1)"
  else
    fail "without tokens on 0.0.0.0 it refuses to start and says why" "exit $status: $refusal"
  fi

  start_app "$port" -e "CALLTRAIL__NOTIFY__TOKENS=$token" -e "CALLTRAIL__API__KEYS=$api_key"
  if ! wait_for 30 curl -sf "$base/healthz"; then
    fail "calltrail answers within 30 s" "$(podman logs "$app" 2>&1)"
    return
  fi
  pass "runs --read-only with a named volume on /data; GET /healthz answers 200"
  check "the process runs as uid 65532 (nonroot)" runs_as_nonroot
  expect_http "GET /readyz: 200 (SQLite migrated)" 200 '' GET "$base/readyz"
  expect_http "POST /notify/{token}: 200 accepted" 200 '"result":"accepted"' \
    POST "$base/notify/$token" --data-binary "@$sample"
  expect_http "POST /notify with a wrong token: 401" 401 '' \
    POST "$base/notify/wrong" --data-binary "@$sample"
  expect_http "GET /v1/calls with the API key lists the call" 200 "\"conversation_id\":\"$conversation\"" \
    GET "$base/v1/calls" -H "X-Api-Key: $api_key"
  expect_http "GET /v1/calls without the API key: 401" 401 '' GET "$base/v1/calls"
  check "the SQLite file is on the /data volume, owned by 65532" database_on_volume
  check "the image's health check reports healthy" is_healthy

  # SIGTERM: podman stop sends the image's stop signal and kills only after the grace period.
  local started=$SECONDS exit_code
  podman_quiet stop -t 10 "$app"
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$app")
  check "SIGTERM: exits 0 within the 10 s grace period (exit $exit_code after $((SECONDS - started)) s)" \
    test "$exit_code" = 0
  check "SIGTERM: the log says it stopped" logged_stop

  # A new container on the same volume has the call, and knows the notification.
  remove_app
  start_app "$port" -e "CALLTRAIL__NOTIFY__TOKENS=$token" -e "CALLTRAIL__API__KEYS=$api_key"
  wait_for 30 curl -sf "$base/readyz" || true
  expect_http "after a new container on the same volume: the call is still listed" 200 \
    "\"conversation_id\":\"$conversation\"" GET "$base/v1/calls/$conversation" -H "X-Api-Key: $api_key"
  expect_http "after a new container on the same volume: the same notification is a duplicate" 200 \
    '"result":"duplicate"' POST "$base/notify/$token" --data-binary "@$sample"
  remove_app
}
