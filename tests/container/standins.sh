# Local stand-ins for the base images that Dockerfile and docker-compose.yml name (sourced by
# run.sh), so the test needs no image registry. Each is built only when missing and kept in
# podman's storage under localhost/calltrail-test-standin/KIND:HASH, HASH covering its recipe
# and inputs; the upstream name is a tag on it. An upstream image that is not a stand-in
# (really pulled) is used as it is.

STANDIN_REPO=localhost/calltrail-test-standin
RUST_IMAGE=docker.io/library/rust:1-bookworm
CHEF_IMAGE=docker.io/lukemathwalker/cargo-chef:latest-rust-1-bookworm
DISTROLESS_IMAGE=gcr.io/distroless/cc-debian12:nonroot
POSTGRES_IMAGE=docker.io/library/postgres:16
CARGO_CHEF_VERSION=0.1.78
DEBIAN_SUITE=bookworm

recipe_hash() {
  { for input in "$@"; do
    if [ -f "$input" ]; then cat "$input"; else printf '%s\n' "$input"; fi
  done; } | sha256sum | cut -c1-16
}

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

# True when IMAGE is one of this script's stand-ins of KIND (of any recipe).
is_standin() {
  local kind=$1 id
  id=$(image_id "$2")
  podman images --no-trunc --filter "reference=$STANDIN_REPO/$kind" --format '{{.ID}}' |
    grep "${id#sha256:}" >/dev/null
}

# ensure_standin KIND HASH BUILD_FUNCTION [UPSTREAM_NAME]: sets $standin to the image to use.
ensure_standin() {
  local kind=$1 build=$3 name=${4:-} keyed=$STANDIN_REPO/$1:$2
  standin=${name:-$keyed}
  if [ -n "$name" ] && podman image exists "$name" && ! is_standin "$kind" "$name"; then
    note "$name: present and not a stand-in, used as it is"
    return
  fi
  if podman image exists "$keyed"; then
    note "$kind stand-in: cached ($keyed)"
  else
    local log=$cache_dir/standin-$kind.log
    note "$kind stand-in: building $keyed (output in $log)"
    if ! timed "stand-in $kind" "$build" "$keyed" >"$log" 2>&1; then
      tail -n 30 "$log"
      die "cannot build the $kind stand-in"
    fi
    # Older recipes of this kind are no longer needed.
    podman images --filter "reference=$STANDIN_REPO/$kind" --format '{{.Repository}}:{{.Tag}}' |
      grep -vx "$keyed" | xargs -r podman rmi >/dev/null 2>&1 || true
  fi
  if [ -n "$name" ]; then podman tag "$keyed" "$name"; fi
}

# The Debian mirror apt uses here (debootstrap needs one), or deb.debian.org.
debian_mirror() {
  local mirror=${CALLTRAIL_TEST_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    mirror=$({
      awk -v suite="$DEBIAN_SUITE" '/^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri ~ /debian\/?$/) print uri }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null
      awk -v suite="$DEBIAN_SUITE" '$1 == "deb" && $3 == suite && $2 ~ /debian\/?$/ { print $2 }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | sed -n 1p)
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

build_base() {
  local tag=$1 rootfs mirror
  as_root || die "debootstrap needs root (or provide the base images)"
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/calltrail-rootfs.XXXXXX")
  note "debootstrap $DEBIAN_SUITE from $mirror"
  if ! debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" \
    "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log"
    rm -rf "$rootfs" "$rootfs.log"
    return 1
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs.log"
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$tag" >/dev/null
  local status=$?
  rm -rf "$rootfs"
  return "$status"
}

standin_build() {
  local recipe=$1 tag=$2
  shift 2
  podman build --pull=never -f "$here/standins/$recipe" -t "$tag" "$@" "$here/standins"
}
build_rust() { standin_build rust.Containerfile "$1" --build-arg "BASE=$base_image" -v "$rust_sysroot:/toolchain:ro"; }
build_chef() {
  standin_build cargo-chef.Containerfile "$1" --build-arg "BASE=$rust_image" \
    --build-arg "CARGO_CHEF_VERSION=$CARGO_CHEF_VERSION" "${ca_mount[@]}"
}
build_distroless() { standin_build distroless.Containerfile "$1" --build-arg "BASE=$base_image"; }
build_postgres() { standin_build postgres.Containerfile "$1" --build-arg "BASE=$base_image"; }

# The host's active Rust toolchain (a rustup toolchain directory), copied into the rust stand-in.
find_rust_toolchain() {
  rust_sysroot=$(rustc --print sysroot 2>/dev/null) || die "rustc is needed for the rust stand-in"
  if [ ! -x "$rust_sysroot/bin/cargo" ] || [ ! -d "$rust_sysroot/lib/rustlib/x86_64-unknown-linux-gnu" ]; then
    die "the rust stand-in needs a rustup toolchain for x86_64 Linux (found $rust_sysroot)"
  fi
}

ensure_standins() {
  local s=$here/standins
  ensure_standin bookworm "$(recipe_hash "$DEBIAN_SUITE" "$(declare -f build_base)")" build_base
  base_image=$standin
  ensure_runnable "$base_image"
  if [ "$compose_checks" = 1 ]; then
    ensure_standin postgres "$(recipe_hash "$base_image" "$s/postgres.Containerfile" \
      "$s/postgres-entrypoint.sh")" build_postgres "$POSTGRES_IMAGE"
  fi
  [ "$build" = 1 ] || return 0
  if podman image exists "$CHEF_IMAGE" && ! is_standin cargo-chef "$CHEF_IMAGE"; then
    note "$CHEF_IMAGE: present and not a stand-in, used as it is"
  else
    find_rust_toolchain
    ensure_standin rust "$(recipe_hash "$base_image" "$(rustc -vV)" "$(cargo -V)" \
      "$(declare -f build_rust)" "$s/rust.Containerfile")" build_rust "$RUST_IMAGE"
    rust_image=$standin
    ensure_standin cargo-chef "$(recipe_hash "$rust_image" "$(image_id "$rust_image")" \
      "$CARGO_CHEF_VERSION" "$s/cargo-chef.Containerfile")" build_chef "$CHEF_IMAGE"
  fi
  ensure_standin distroless "$(recipe_hash "$base_image" "$s/distroless.Containerfile")" \
    build_distroless "$DISTROLESS_IMAGE"
}
