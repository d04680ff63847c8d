#!/usr/bin/env bash
# Makes a local stand-in for the image's default base (node:20-slim) where no registry is reachable:
# a Debian 12 minbase root made with debootstrap, imported with `docker import`, plus this machine's
# Node.js and npm (Debian 12 packages Node 18 only; 20 as in node:20-slim, a newer one with a note)
# and the `node` user (uid 1000) the real base has.
# The debootstrap root is cached as a tarball under ~/.cache/distributed-redis/image/ and reused.
# Prints the base image's tag. Needs root (debootstrap), a reachable Debian mirror on a cold cache,
# and a Docker engine that `docker` reaches (scripts/image/dockerd.sh starts one).
set -euo pipefail
cache="${DREDIS_CACHE:-$HOME/.cache/distributed-redis}/image"
mirror="${DREDIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
rootfs_tar="$cache/debootstrap-$suite-slim.tar"

die() { echo "image base: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is missing: install Node.js 20 (the base copies this machine's node)"
node_version="$(node --version)"
major="${node_version#v}"
major="${major%%.*}"
[ "$major" -ge 20 ] || die "node $node_version found; the base needs Node.js 20 (the image's node:20-slim)"
[ "$major" = 20 ] || echo "image base: this machine's node is $node_version; node:20-slim has Node.js 20" >&2
node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(dirname "$node_bin")/../lib/node_modules/npm"
[ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found beside $node_bin (looked in $npm_dir)"
# What Debian's slim images (debian:bookworm-slim, under node:20-slim) do to a debootstrapped root
# (debuerreotype's slimify and apt settings): no docs, manuals or translations, and apt keeps no
# package cache in the image's layers. Without it the stand-in base and every apt-get layer on it
# would be bigger than what users build on, and the image's size would say little.
slim() {
  local root="$1"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/info/"* "$root/usr/share/linda/"* "$root/usr/share/lintian/overrides/"* \
    "$root/usr/share/locale/"* "$root/usr/share/man/"*
  rm -rf "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
}

if [ ! -f "$rootfs_tar" ]; then
  [ "$(id -u)" = 0 ] || die "debootstrap needs root (to make $rootfs_tar once)"
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap (or npm run setup)"
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/debootstrap.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "image base: debootstrap $suite from $mirror (once; cached in $rootfs_tar)" >&2
  debootstrap --variant=minbase "$suite" "$work/root" "$mirror" >"$work/log" 2>&1 ||
    { tail -20 "$work/log" >&2; die "debootstrap failed (is $mirror reachable?)"; }
  slim "$work/root"
  tar -C "$work/root" -cf "$rootfs_tar.partial" .
  mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf "$work"
  trap - EXIT
fi

# The Debian root, then a layer with node, npm and the node user, as node:20-slim lays them out,
# and the CAs this machine trusts: where an egress proxy inspects TLS, npm in the build must trust
# what the host's npm trusts (node:20-slim itself has no CA bundle; node carries its own).
plain="distributed-redis-base:$suite-debootstrap"
docker image inspect "$plain" >/dev/null 2>&1 || docker import "$rootfs_tar" "$plain" >/dev/null
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$node_bin" "$context/node"
cp -r "$npm_dir" "$context/npm"
# node's headers, where node:20-slim has them: the image's build compiles native/io.c against them.
headers="$(dirname "$(dirname "$node_bin")")/include/node"
[ -f "$headers/node_api.h" ] || die "no Node headers at $headers (node_api.h): the image's build needs them"
cp -r "$headers" "$context/include-node"
cas=/etc/ssl/certs/ca-certificates.crt
if [ -f "$cas" ]; then cp "$cas" "$context/ca-certificates.crt"; else : >"$context/ca-certificates.crt"; fi
cat >"$context/Dockerfile" <<DOCKERFILE
FROM $plain
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY include-node /usr/local/include/node
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
  && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
CMD ["node"]
DOCKERFILE
# Named by what it is made of, so a new root, node, CA bundle or recipe makes a new base.
sum="$({ docker image inspect -f "{{.Id}}" "$plain"; cat "$context/Dockerfile" "$context/ca-certificates.crt"; } | sha256sum | cut -c1-12)"
tag="distributed-redis-base:$suite-node${node_version#v}-$sum"
docker image inspect "$tag" >/dev/null 2>&1 || DOCKER_BUILDKIT=0 docker build --quiet --network host -t "$tag" "$context" >/dev/null
echo "$tag"
