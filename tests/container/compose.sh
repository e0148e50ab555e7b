# docker-compose.yml through podman-compose: calltrail on the PostgreSQL service, its data on
# the pgdata volume, its spool on the calltrail-data volume (sourced by run.sh).

compose_project=calltrail-test
compose_log=$cache_dir/compose.log

run_compose() {
  "${compose[@]}" -p "$compose_project" -f "$root/docker-compose.yml" "$@" >>"$compose_log" 2>&1
}

compose_down() { run_compose down -v || true; }

service_container() {
  podman ps -a --filter "label=io.podman.compose.project=$compose_project" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | sed -n 1p
}

service_healthy() {
  local name
  name=$(service_container "$1")
  podman healthcheck run "$name" >/dev/null 2>&1 || true
  [ "$(podman inspect --format '{{.State.Health.Status}}' "$name")" = healthy ]
}

calltrail_logged() { podman logs "$(service_container calltrail)" 2>&1 | grep "$1" >/dev/null; }
on_postgres_and_migrated() {
  calltrail_logged '"database":"postgres"' && calltrail_logged 'database ready'
}
pgdata_volume() { podman volume exists "${compose_project}_pgdata"; }
# Ready and writing to the database: with the spool, /readyz answers 200 (accepting into
# the spool) before the database is reachable and migrated.
on_database() { curl -sf "$1/readyz" | grep -q '"accepting":"database"'; }

compose_checks() {
  local port base
  port=$(free_port)
  base=http://127.0.0.1:$port
  export POSTGRES_PASSWORD CALLTRAIL_NOTIFY_TOKEN CALLTRAIL_API_KEY CALLTRAIL_PUBLISH
  POSTGRES_PASSWORD=$(random_hex)
  CALLTRAIL_NOTIFY_TOKEN=$(random_hex)
  CALLTRAIL_API_KEY=$(random_hex)
  CALLTRAIL_PUBLISH=127.0.0.1:$port
  : >"$compose_log"
  note "podman-compose $("${compose[@]}" version 2>/dev/null | awk '/podman-compose/ { print $NF }'), output in $compose_log"
  compose_down
  cleanups+=(compose_down)

  local key=(-H "X-Api-Key: $CALLTRAIL_API_KEY")
  local human=$root/tests/data/samples/01-completed-human.json
  local busy=$root/tests/data/samples/05-failed-486-busy.json
  local connected=$root/tests/data/samples/03-completed-amd-disabled.json
  local human_id busy_id connected_id
  human_id=$(jq -r .conversationId "$human")
  busy_id=$(jq -r .conversationId "$busy")
  connected_id=$(jq -r .conversationId "$connected")

  # --build: podman-compose otherwise starts the image it built on an earlier run, whatever
  # the tree holds now (the layers of the image just built make this quick).
  if ! timed "compose up (build from cache)" run_compose up -d --build; then
    fail "podman-compose up -d" "$(tail -n 30 "$compose_log")"
    return
  fi
  pass "podman-compose up -d: postgres and calltrail started"
  if ! wait_for 120 on_database "$base"; then
    fail "calltrail becomes ready on PostgreSQL within 120 s" \
      "$(podman logs "$(service_container calltrail)" 2>&1 | tail -n 20)"
    return
  fi
  pass "calltrail waits for PostgreSQL and writes to it: GET /readyz 200, accepting database"
  note "calltrail retried the database $(podman logs "$(service_container calltrail)" 2>&1 |
    grep -c 'cannot migrate the database') time(s) before it was up"
  check "calltrail's log says it runs on postgres and migrated it" on_postgres_and_migrated
  check "postgres's health check (pg_isready) reports healthy" service_healthy postgres
  check "calltrail's health check reports healthy" service_healthy calltrail
  expect_http "POST /notify/{token}: 200 accepted (human)" 200 '"result":"accepted"' \
    POST "$base/notify/$CALLTRAIL_NOTIFY_TOKEN" --data-binary "@$human"
  expect_http "POST /notify/{token}: 200 accepted (busy)" 200 '"result":"accepted"' \
    POST "$base/notify/$CALLTRAIL_NOTIFY_TOKEN" --data-binary "@$busy"
  expect_http "GET /v1/calls?outcome=busy finds the busy call" 200 "\"conversation_id\":\"$busy_id\"" \
    GET "$base/v1/calls?outcome=busy" "${key[@]}"

  # While PostgreSQL is stopped calltrail keeps taking notifications into its spool on the
  # /data volume, and replays them once PostgreSQL is back, without a restart.
  podman_quiet stop -t 10 "$(service_container postgres)"
  expect_http "PostgreSQL stopped: POST /notify/{token} 200 spooled" 200 '"result":"spooled"' \
    POST "$base/notify/$CALLTRAIL_NOTIFY_TOKEN" --data-binary "@$connected"
  expect_http "PostgreSQL stopped: GET /readyz 200, accepting into the spool" 200 \
    '"accepting":"spool"' GET "$base/readyz"
  podman_quiet start "$(service_container postgres)"
  if wait_for 60 on_database "$base"; then
    pass "PostgreSQL started again: calltrail writes to it again without a restart"
  else
    fail "PostgreSQL started again: calltrail writes to it again without a restart" \
      "$(curl -s "$base/readyz")"
  fi
  if wait_for 30 sh -c "curl -sf -H 'X-Api-Key: $CALLTRAIL_API_KEY' '$base/v1/calls/$connected_id' | grep -q '\"outcome\":\"connected\"'"; then
    pass "the notification spooled during the outage is replayed: its call is stored"
  else
    fail "the notification spooled during the outage is replayed: its call is stored" \
      "$(curl -s "${key[@]}" "$base/v1/calls/$connected_id")"
  fi

  if run_compose down && run_compose up -d && wait_for 120 on_database "$base"; then
    pass "podman-compose down, up -d: ready again"
  else
    fail "podman-compose down, up -d: ready again" "$(tail -n 30 "$compose_log")"
    return
  fi
  check "the database is on the ${compose_project}_pgdata volume" pgdata_volume
  expect_http "after down/up: the human call is still there" 200 "\"outcome\":\"human\"" \
    GET "$base/v1/calls/$human_id" "${key[@]}"
  expect_http "after down/up: the busy call is still there" 200 "\"outcome\":\"busy\"" \
    GET "$base/v1/calls/$busy_id" "${key[@]}"
  expect_http "after down/up: the same notification is a duplicate" 200 '"result":"duplicate"' \
    POST "$base/notify/$CALLTRAIL_NOTIFY_TOKEN" --data-binary "@$human"
}
