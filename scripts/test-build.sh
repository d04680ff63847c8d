#!/usr/bin/env bash
# Lays out, in the folder $1, the package npm test starts `dredis` from: bin/dredis.js, the esbuild
# bundle of the current sources that the runtime image runs (scripts/image/bundle.sh), scripts/
# (a link: src/local/engine.ts names scripts/valkey/install.sh beside the code) and native/ (a link:
# the bundle loads native/build/dredis-io.node two folders up, as the image's does). Started as
# `node $1/bin/dredis.js` with DREDIS_COMPILED=1, a `dredis` process costs 0.25 CPU-seconds to
# start, against 1.1 through tsx (the tests start hundreds, with the proxy hosts' workers); building
# costs 1.2. scripts/test.sh makes a new one in a temporary folder every run (never a stale build)
# and names it to the test files in DREDIS_TEST_BUILD (test/support/proxy.ts, dredisLaunch).
set -euo pipefail
out="${1:?usage: test-build.sh OUTPUT_DIR}"
cd "$(dirname "$0")/.."
bash scripts/image/bundle.sh "$out"
mkdir -p "$out/bin"
cp bin/dredis.js "$out/bin/dredis.js"
echo '{ "type": "module" }' >"$out/package.json"
ln -sfn "$PWD/scripts" "$out/scripts"
ln -sfn "$PWD/native" "$out/native"
