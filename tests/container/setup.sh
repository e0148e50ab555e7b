# Makes podman and podman-compose usable (sourced by run.sh): installs them when missing and
# allowed (root with apt-get), and lifts podman's default file limits when this machine's are
# lower.

PODMAN_COMPOSE_VERSION=1.6.0

as_root() { [ "$(id -u)" = 0 ]; }

ensure_podman() {
  if command -v podman >/dev/null && command -v debootstrap >/dev/null; then
    return
  fi
  if ! as_root || ! command -v apt-get >/dev/null; then
    die "podman and debootstrap are needed (as root with apt-get they are installed)"
  fi
  note "installing podman and debootstrap (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman runc debootstrap python3-venv curl >/dev/null
}

# podman asks for more open files than some machines allow (the runtime then fails with
# "setting rlimit ... operation not permitted"); a drop-in sets its defaults to this
# machine's hard limits.
ensure_runnable() {
  local image=$1 out
  out=$(podman run --rm --pull=never "$image" true 2>&1) && return
  if grep -qi 'rlimit' <<<"$out" && as_root; then
    local conf=/etc/containers/containers.conf.d/50-ulimits.conf
    local nofile nproc pid_max
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max)
    # More processes than process ids cannot be, and some kernels refuse the attempt.
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
    note "podman cannot set its default limits here; writing $conf"
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' '[containers]' \
      "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" >"$conf"
    out=$(podman run --rm --pull=never "$image" true 2>&1) && return
  fi
  die "podman cannot run a container here: $out"
}

ensure_podman_compose() {
  if command -v podman-compose >/dev/null; then
    compose=(podman-compose)
    return
  fi
  local venv=$cache_dir/podman-compose-$PODMAN_COMPOSE_VERSION
  if [ ! -x "$venv/bin/podman-compose" ]; then
    note "installing podman-compose $PODMAN_COMPOSE_VERSION (pip, in $venv)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION"
  fi
  compose=("$venv/bin/podman-compose")
}
