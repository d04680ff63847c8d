#!/usr/bin/env bash
# Builds the runtime image from the Dockerfile and prints its tag (the only line on stdout).
#   scripts/image/build.sh [TAG]          TAG defaults to distributed-redis:local
# The base is $BASE_IMAGE when set (e.g. node:20-slim where a registry is reachable); otherwise a
# local stand-in made by scripts/image/base.sh (debootstrap + docker import, cached), since our
# machines reach no registry. Builds in the engine `docker` reaches: start one with
#   export "$(scripts/image/dockerd.sh start)"
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-distributed-redis:local}"
docker info >/dev/null 2>&1 ||
  { echo "image build: no Docker engine reachable; start one: export \"\$(scripts/image/dockerd.sh start)\"" >&2; exit 1; }
base="${BASE_IMAGE:-$(bash scripts/image/base.sh)}"
echo "image build: $tag from $base" >&2
# The classic builder: Debian's docker.io has no buildx. The host network: a private engine
# (dockerd.sh) has no bridge, and npm and apt need to reach their registries.
build() { DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE_IMAGE=$base" "$@" . >&2; }
# The build stage gets a name of its own: the classic builder's cache is its images, and an unnamed
# stage is a dangling image that `docker image prune` removes, npm ci and all.
build --target build -t distributed-redis-build:cache
build -t "$tag"
echo "$tag"
