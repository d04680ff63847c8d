#!/usr/bin/env bash
# Lays out what the runtime image carries besides bin/ and package.json, in the folder $1:
#   dist/cli/main.js          src/cli/main.ts and every dependency it imports, bundled by esbuild
#                             (where bin/dredis.js looks when DREDIS_COMPILED=1, at the depth
#                             src/local/platform.ts expects when it finds bin/dredis.js)
#   node_modules/@ioredis/commands   the command table src/proxy/commands.ts reads at run time
#                             through require(), which a bundler does not follow
# Run from the package root with its node_modules installed.
set -euo pipefail
out="${1:?usage: bundle.sh OUTPUT_DIR}"
rm -rf "$out/dist" "$out/node_modules"
# The dependencies are CommonJS, whose require() of node's modules an ES module bundle only has
# through a require made with createRequire (named apart from the one src/proxy/commands.ts makes).
npx --no-install esbuild src/cli/main.ts --bundle --platform=node --format=esm --target=node20 \
  --log-level=warning --outfile="$out/dist/cli/main.js" \
  --banner:js='import { createRequire as bundleCreateRequire } from "node:module"; const require = bundleCreateRequire(import.meta.url);'
mkdir -p "$out/node_modules/@ioredis"
cp -r node_modules/@ioredis/commands "$out/node_modules/@ioredis/commands"
