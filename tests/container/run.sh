#!/usr/bin/env bash
# Builds calltrail's image from the project's Dockerfile with podman and checks it as a user
# would, then runs docker-compose.yml (calltrail on PostgreSQL) through podman-compose.
# Prints one line per check and exits non-zero when any fails. See
# docs/operations.md#container.
#
#   tests/container/run.sh              stand-ins (when missing), build, image and compose checks
#   tests/container/run.sh --no-build   reuse the image built last time (calltrail:test)
#   tests/container/run.sh --image-only skip the compose checks
#   tests/container/run.sh --prune      then remove dangling images (earlier builds; the
#                                       base images and the last build stay)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache_dir=${XDG_CACHE_HOME:-$HOME/.cache}/calltrail-container-test
image=localhost/calltrail:test
builder_image=localhost/calltrail:test-builder
build=1
compose_checks=1
prune=0
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    --image-only) compose_checks=0 ;;
    --prune) prune=1 ;;
    *) echo "usage: $0 [--no-build] [--image-only] [--prune]" >&2; exit 2 ;;
  esac
done

# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=setup.sh
source "$here/setup.sh"
# shellcheck source=standins.sh
source "$here/standins.sh"
# shellcheck source=image.sh
source "$here/image.sh"
# shellcheck source=compose.sh
source "$here/compose.sh"

mkdir -p "$cache_dir"
cleanups=()
run_cleanups() { for cleanup in "${cleanups[@]}"; do "$cleanup"; done; }
trap run_cleanups EXIT
# HEALTHCHECK is part of the Docker image format only; podman builds OCI images by default.
export BUILDAH_FORMAT=docker
# Builds fetch crates over TLS with the host's certificate bundle (it may hold a local CA).
ca_mount=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ca_mount=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

step "podman"
ensure_podman
note "$(podman --version)"

podman image exists "$image" || build=1

step "base images"
ensure_standins

step "calltrail image"
if [ "$build" = 1 ]; then
  timed "calltrail image build" build_image || die "the image did not build"
fi
image_checks

if [ "$compose_checks" = 1 ]; then
  step "docker-compose.yml (podman-compose)"
  ensure_podman_compose
  compose_checks
fi

if [ "$prune" = 1 ]; then
  run_cleanups
  cleanups=()
  step "prune"
  note "$(podman image prune -f | grep -c . || true) dangling image(s) removed"
fi

step "timings"
for line in "${timings[@]}"; do note "$line"; done
echo
echo "container: $passed passed, $failed failed"
[ "$failed" = 0 ]
