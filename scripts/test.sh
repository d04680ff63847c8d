#!/usr/bin/env bash
# The whole test suite: system tools, lint, type check, every test file with node's runner, then
# the suites under the real Pulumi engine (npm run test:engine, which builds the engine first:
# 22 min cold on this shared 2-core machine, 25 CPU-minutes, seconds once cached; see the README),
# and the runtime image built and run under Docker (npm run test:image, as root; see the README).
# Pass test files to run only those: npm test -- test/resp/parser.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -gt 0 ]; then
  exec node --import tsx --test "$@"
fi
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
npx tsc --noEmit
shopt -s globstar nullglob
files=()
for f in test/**/*.test.ts; do
  [[ $f == test/engine/* || $f == test/image/* ]] || files+=("$f")
done
node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
npm run --silent test:engine
npm run --silent test:image
