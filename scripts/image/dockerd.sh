#!/usr/bin/env bash
# A Docker engine for the image scripts and tests, without touching the machine's own.
#   dockerd.sh start  prints `DOCKER_HOST=...`: empty when `docker` already reaches an engine (it is
#                     used as is), else the socket of a private dockerd this script started (root).
#   dockerd.sh stop   stops the private dockerd, if this script started one.
# The private engine keeps its own data-root under ~/.cache/distributed-redis/docker (its layer cache
# makes later builds fast), its own socket and exec-root under /run/distributed-redis-docker, and no
# bridge or iptables rules: builds and containers use the host network.
set -euo pipefail
run=/run/distributed-redis-docker
data="${DREDIS_CACHE:-$HOME/.cache/distributed-redis}/docker"
sock="unix://$run/docker.sock"
pidfile="$run/dockerd.pid"

die() { echo "dockerd: $*" >&2; exit 1; }

case "${1:-}" in
start)
  if [ -z "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    echo "DOCKER_HOST="
    exit 0
  fi
  if DOCKER_HOST="$sock" docker info >/dev/null 2>&1; then
    echo "DOCKER_HOST=$sock"
    exit 0
  fi
  [ "$(id -u)" = 0 ] || die "no Docker engine reachable and starting one needs root"
  command -v dockerd >/dev/null || die "dockerd is missing: apt-get install docker.io (or npm run setup)"
  mkdir -p "$run" "$data"
  setsid dockerd --data-root "$data" --exec-root "$run/exec" --pidfile "$pidfile" -H "$sock" \
    --bridge none --iptables=false --ip6tables=false </dev/null >"$run/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    DOCKER_HOST="$sock" docker info >/dev/null 2>&1 && { echo "DOCKER_HOST=$sock"; exit 0; }
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$run/dockerd.log" >&2
  die "dockerd did not answer on $sock (log: $run/dockerd.log)"
  ;;
stop)
  [ -f "$pidfile" ] || exit 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  # dockerd removes its pidfile once it has stopped its containers and containerd.
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || exit 0
    sleep 0.5
  done
  die "dockerd (pid $pid) did not stop"
  ;;
*) die "usage: dockerd.sh start|stop" ;;
esac
