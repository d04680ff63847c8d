#!/usr/bin/env bash
# Builds the Pulumi engine from Go modules, at pinned versions, into a cache folder outside the
# repository, and prints the PATH to use:
#   eval "$(bash scripts/pulumi-engine.sh)"      # then: pulumi version
#   bash scripts/pulumi-engine.sh --bin-dir      # prints only the folder of the binaries
# npm and Debian have no Pulumi CLI, and the CLI's own installer downloads a binary, which these
# machines cannot fetch. A second run reuses what is built (seconds). Set DREDIS_ENGINE_DIR to
# move the cache. Progress and the summary go to stderr; stdout carries only the PATH line.
#
# What is built, and from what:
# - pulumi (the CLI): github.com/pulumi/pulumi/pkg/v3/cmd/pulumi. pkg/v3's go.mod replaces sdk/v3
#   by a relative path, so `go install pkg@v` is refused: a wrapper module requires pkg/v3 and
#   sdk/v3 at the same version and repeats pkg/v3's one non-relative replace (a clipboard fork).
# - pulumi-language-nodejs: the Go module proxy does not serve pulumi's language-host modules
#   (403 at every version), so this is scripts/engine/pulumi-language-nodejs.go, a minimal host
#   on sdk/v3 that starts @pulumi/pulumi's own run script (and run-plugin, for source plugins).
# - pulumi-language-python: refused by the proxy the same way, and the PyPI `pulumi` wheel has no
#   host nor exec script, so this is scripts/engine/pulumi-language-python.go, a minimal host on
#   pkg/v3 (its Python code generator, for `pulumi package add`) and sdk/v3, built in a wrapper
#   module like the CLI's, plus scripts/engine/pulumi-language-python-exec copied beside it.
# - pulumi-resource-kubernetes: github.com/pulumi/pulumi-kubernetes/provider/v4, which has no
#   tagged versions on the proxy (a pseudo-version is what it serves). Its main package embeds
#   schema-embed.json and terraform-mapping-embed.json that `go generate` (generate.go) makes
#   from the schema.json and terraform-mapping.json shipped in the module: the module is copied
#   out of the read-only module cache, those two files are made the way generate.go makes them
#   (the schema's version set, both re-serialised compactly), and it is built as the main module.
set -euo pipefail

PULUMI_VERSION=3.260.0
KUBERNETES_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
KUBERNETES_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
CLIPBOARD_FORK=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${DREDIS_ENGINE_DIR:-$HOME/.cache/distributed-redis/pulumi-$PULUMI_VERSION}"
bin="$dir/bin"
mode="${1:-}"

say() { printf 'pulumi-engine: %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}

GO="${GO:-}"
if [ -z "$GO" ]; then
  if [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; else GO="$(command -v go || true)"; fi
fi
[ -n "$GO" ] || fail "no Go toolchain (need Go >= 1.25 at /usr/local/go/bin/go or on PATH, or GO=...)"
go_version="$("$GO" env GOVERSION 2>/dev/null)" || fail "$GO does not run: need Go >= 1.25 (GO=... to choose one)"
go_minor="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$go_version")"
[ "$go_minor" -ge 25 ] 2>/dev/null || fail "$go_version is too old: pkg/v3 $PULUMI_VERSION needs Go >= 1.25"
# Builds share two cores with everything else on the machine.
gobuild() { nice -n 10 "$GO" "$@"; }

mkdir -p "$bin" "$dir/src"
# One build at a time per cache folder: a second run (two test runs at once, or a worktree's)
# would delete the source trees the first is compiling from and both would fail. The second
# waits, then reuses what the first built.
exec 9>"$dir/.lock"
if ! flock -n 9; then
  say "another build of this engine is running in $dir; waiting for it"
  flock 9
fi
declare -a summary=()
status=0

# stamp NAME RECIPE: true when NAME's binary exists and was built from RECIPE.
fresh() { [ -x "$bin/$1" ] && [ -f "$dir/src/$1.stamp" ] && [ "$(cat "$dir/src/$1.stamp")" = "$2" ]; }
stamp() { printf '%s' "$2" >"$dir/src/$1.stamp"; }

build_cli() {
  local t0=$SECONDS
  local recipe="pkg/v3@v$PULUMI_VERSION sdk/v3@v$PULUMI_VERSION $CLIPBOARD_FORK"
  if fresh pulumi "$recipe"; then
    summary+=("pulumi: reused")
    return
  fi
  local src="$dir/src/pulumi"
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    printf 'module dredis.local/engine/pulumi\n\ngo 1.25\n' >go.mod
    "$GO" mod edit -replace "github.com/atotto/clipboard=$CLIPBOARD_FORK"
    gobuild get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" \
      "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    gobuild build -o "$bin/pulumi" \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  ) >"$dir/src/pulumi.log" 2>&1 || {
    summary+=("pulumi: NOT BUILT (see $dir/src/pulumi.log: $(tail -n 3 "$dir/src/pulumi.log" | tr '\n' ' '))")
    status=1
    return
  }
  stamp pulumi "$recipe"
  summary+=("pulumi: built in $((SECONDS - t0)) s")
}

build_nodejs_host() {
  local t0=$SECONDS
  local source="$repo/scripts/engine/pulumi-language-nodejs.go"
  local recipe
  recipe="sdk/v3@v$PULUMI_VERSION $(sha256sum "$source" | cut -c1-16)"
  if fresh pulumi-language-nodejs "$recipe"; then
    summary+=("pulumi-language-nodejs: reused")
    return
  fi
  local src="$dir/src/pulumi-language-nodejs"
  rm -rf "$src" && mkdir -p "$src"
  cp "$source" "$src/main.go"
  (
    cd "$src"
    printf 'module dredis.local/engine/language-nodejs\n\ngo 1.25\n' >go.mod
    gobuild get "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    gobuild mod tidy
    gobuild build -o "$bin/pulumi-language-nodejs" -ldflags "-X main.version=$PULUMI_VERSION" .
  ) >"$dir/src/pulumi-language-nodejs.log" 2>&1 || {
    summary+=("pulumi-language-nodejs: NOT BUILT (see $dir/src/pulumi-language-nodejs.log)")
    status=1
    return
  }
  stamp pulumi-language-nodejs "$recipe"
  summary+=("pulumi-language-nodejs: built in $((SECONDS - t0)) s (minimal host from scripts/engine, sdk/v3 v$PULUMI_VERSION)")
}

build_python_host() {
  local t0=$SECONDS
  local source="$repo/scripts/engine/pulumi-language-python.go"
  local exec_script="$repo/scripts/engine/pulumi-language-python-exec"
  local recipe
  recipe="pkg/v3@v$PULUMI_VERSION sdk/v3@v$PULUMI_VERSION $CLIPBOARD_FORK $(cat "$source" "$exec_script" | sha256sum | cut -c1-16)"
  if fresh pulumi-language-python "$recipe" && [ -x "$bin/pulumi-language-python-exec" ]; then
    summary+=("pulumi-language-python: reused")
    return
  fi
  local src="$dir/src/pulumi-language-python"
  rm -rf "$src" && mkdir -p "$src"
  cp "$source" "$src/main.go"
  (
    set -e
    cd "$src"
    printf 'module dredis.local/engine/language-python\n\ngo 1.25\n' >go.mod
    "$GO" mod edit -replace "github.com/atotto/clipboard=$CLIPBOARD_FORK"
    gobuild get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    gobuild mod tidy
    gobuild build -o "$bin/pulumi-language-python" -ldflags "-X main.version=$PULUMI_VERSION" .
    install -m 0755 "$exec_script" "$bin/pulumi-language-python-exec"
  ) >"$dir/src/pulumi-language-python.log" 2>&1 || {
    summary+=("pulumi-language-python: NOT BUILT (see $dir/src/pulumi-language-python.log: $(tail -n 3 "$dir/src/pulumi-language-python.log" | tr '\n' ' '))")
    status=1
    return
  }
  stamp pulumi-language-python "$recipe"
  summary+=("pulumi-language-python: built in $((SECONDS - t0)) s (minimal host from scripts/engine, pkg/v3 + sdk/v3 v$PULUMI_VERSION)")
}

build_kubernetes() {
  local t0=$SECONDS
  local recipe="$KUBERNETES_MODULE@$KUBERNETES_MODULE_VERSION"
  if fresh pulumi-resource-kubernetes "$recipe"; then
    summary+=("pulumi-resource-kubernetes: reused")
    return
  fi
  local src="$dir/src/pulumi-kubernetes"
  rm -rf "$src"
  (
    set -e
    moddir="$("$GO" mod download -json "$recipe" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    [ -d "$moddir" ] || { echo "module download failed"; exit 1; }
    cp -r "$moddir" "$src"
    chmod -R u+w "$src"
    cd "$src"
    # The module's go.mod replaces its sdk/v4 by a sibling folder that is not in the module.
    "$GO" mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4
    gobuild mod download github.com/pulumi/pulumi-kubernetes/sdk/v4
    # What `go generate` (cmd/pulumi-resource-kubernetes/generate.go) does, without building
    # pkg/v3's schema package for it: set the schema's version, write both files compactly.
    cd cmd/pulumi-resource-kubernetes
    VERSION="${KUBERNETES_MODULE_VERSION#v}" node -e '
      const fs = require("fs");
      const schema = JSON.parse(fs.readFileSync("schema.json", "utf8"));
      schema.version = process.env.VERSION;
      fs.writeFileSync("schema-embed.json", JSON.stringify(schema));
      const mapping = JSON.parse(fs.readFileSync("terraform-mapping.json", "utf8"));
      fs.writeFileSync("terraform-mapping-embed.json", JSON.stringify(mapping));
    '
    cd ../..
    gobuild build -o "$bin/pulumi-resource-kubernetes" \
      -ldflags "-X $KUBERNETES_MODULE/pkg/version.Version=${KUBERNETES_MODULE_VERSION#v}" \
      ./cmd/pulumi-resource-kubernetes
  ) >"$dir/src/pulumi-resource-kubernetes.log" 2>&1 || {
    summary+=("pulumi-resource-kubernetes: NOT BUILT (see $dir/src/pulumi-resource-kubernetes.log: $(tail -n 3 "$dir/src/pulumi-resource-kubernetes.log" | tr '\n' ' '))")
    status=1
    return
  }
  stamp pulumi-resource-kubernetes "$recipe"
  summary+=("pulumi-resource-kubernetes: built in $((SECONDS - t0)) s ($KUBERNETES_MODULE_VERSION)")
}

started=$SECONDS
build_cli
build_nodejs_host
build_python_host
build_kubernetes

# Check what is there, by running it.
if [ -x "$bin/pulumi" ]; then
  got="$("$bin/pulumi" version 2>&1 || true)"
  summary+=("checked: pulumi version -> $got")
  [ "$got" = "v$PULUMI_VERSION" ] || {
    summary+=("pulumi version says '$got', expected v$PULUMI_VERSION")
    status=1
  }
fi
if [ -x "$bin/pulumi-language-nodejs" ]; then
  got="$("$bin/pulumi-language-nodejs" -version 2>&1 || true)"
  summary+=("checked: pulumi-language-nodejs -version -> $got")
  [ "$got" = "$PULUMI_VERSION" ] || {
    summary+=("pulumi-language-nodejs -version says '$got', expected $PULUMI_VERSION")
    status=1
  }
fi
if [ -x "$bin/pulumi-language-python" ]; then
  got="$("$bin/pulumi-language-python" -version 2>&1 || true)"
  summary+=("checked: pulumi-language-python -version -> $got")
  [ "$got" = "$PULUMI_VERSION" ] || {
    summary+=("pulumi-language-python -version says '$got', expected $PULUMI_VERSION")
    status=1
  }
fi
if [ -x "$bin/pulumi-resource-kubernetes" ]; then
  got="$("$GO" version -m "$bin/pulumi-resource-kubernetes" | sed -n 's/.*pkg\/version\.Version=\([^ "]*\).*/\1/p')"
  summary+=("checked: pulumi-resource-kubernetes built as version $got")
  [ "$got" = "${KUBERNETES_MODULE_VERSION#v}" ] || {
    summary+=("pulumi-resource-kubernetes was built with version '$got', expected ${KUBERNETES_MODULE_VERSION#v}")
    status=1
  }
fi
summary+=("pulumi-resource-docker, pulumi-resource-random: NOT BUILT: their modules replace source trees that are not published as modules")

say "in $dir ($((SECONDS - started)) s)"
for line in "${summary[@]}"; do say "  $line"; done
[ "$status" -eq 0 ] || fail "the engine is incomplete (above)"
if [ "$mode" = "--bin-dir" ]; then
  printf '%s\n' "$bin"
else
  say "use it with: export PATH=\"$bin:\$PATH\""
  printf 'export PATH="%s:$PATH"\n' "$bin"
fi
