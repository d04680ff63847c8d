#!/usr/bin/env bash
# Lays out what the runtime image carries besides bin/ and package.json, in the folder $1:
#   dist/cli/main.js          src/cli/main.ts and every dependency it imports, bundled by esbuild
#                             (where bin/dredis.js looks when DREDIS_COMPILED=1, at the depth
#                             src/local/platform.ts expects when it finds bin/dredis.js)
#   dist/cli/role-main.js     src/proxy/role-main.ts: what a proxy host's workers and busy proxy
#                             run (src/proxy/host.ts looks for it beside its own code), so they load
#                             neither the command line nor the config parser
#   dist/cli/chunk-*.js       the code these share, and each role's own modules (the dynamic
#                             import()s of src/proxy/host.ts and src/cli/main.ts), split by esbuild:
#                             a process loads only the chunks it imports. Every module a process
#                             loads stays in its heap (bench/results/memory.md: 351 MB idle for a
#                             host of 2 workers as one file, whose children ran the whole CLI)
#   node_modules/@ioredis/commands   the command table src/proxy/commands.ts reads at run time
#                             through require(), which a bundler does not follow
# Run from the package root with its node_modules installed.
set -euo pipefail
out="${1:?usage: bundle.sh OUTPUT_DIR}"
rm -rf "$out/dist" "$out/node_modules"
# The dependencies are CommonJS, whose require() of node's modules an ES module bundle only has
# through a require made with createRequire (named apart from the one src/proxy/commands.ts makes).
# Chunks beside the entries (not in a subfolder): code that finds files from import.meta.url
# (host.ts's role-main.js, commands.ts's node_modules) sees the same folder from any of them.
npx --no-install esbuild src/cli/main.ts src/proxy/role-main.ts --bundle --splitting --platform=node \
  --format=esm --target=node20 --log-level=warning --outdir="$out/dist/cli" \
  --entry-names='[name]' --chunk-names='chunk-[hash]' \
  --banner:js='import { createRequire as bundleCreateRequire } from "node:module"; const require = bundleCreateRequire(import.meta.url);'
mkdir -p "$out/node_modules/@ioredis"
cp -r node_modules/@ioredis/commands "$out/node_modules/@ioredis/commands"
