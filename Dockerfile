# The runtime image: the `dredis` CLI (proxy host, cluster administration), redis-cli for health
# checks, and keepalived for master-backup proxy pairs on Docker. HAProxy runs from its stock image.
# The runtime is one bundled file (scripts/image/bundle.sh): none of the package's Pulumi SDKs,
# OpenTelemetry, TypeScript or tsx, which only the Pulumi program and development use.

# Any Debian 12 image with Node.js 20 (npm, and a `node` user of uid 1000) in /usr/local/bin.
# Where no registry is reachable, scripts/image/build.sh makes one with debootstrap.
ARG BASE_IMAGE=node:20-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: nothing the bundle needs runs one (esbuild finds its binary without it).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/image/bundle.sh ./scripts/image/
RUN bash scripts/image/bundle.sh /runtime
# The workers' native socket I/O (native/io.c), against the Node headers beside node
# (/usr/local/include/node, in node:20-slim as in scripts/image/base.sh's stand-in). Required: an
# image whose proxy fell back to Node's streams would cost more CPU per request, silently.
RUN apt-get update \
  && apt-get install -y --no-install-recommends gcc libc6-dev \
  && rm -rf /var/lib/apt/lists/*
COPY native/io.c ./native/
COPY scripts/build-native.mjs ./scripts/
RUN node scripts/build-native.mjs --required && mkdir -p /runtime/native/build \
  && cp native/build/dredis-io.node /runtime/native/build/

FROM ${BASE_IMAGE}
RUN apt-get update \
  && apt-get install -y --no-install-recommends redis-tools keepalived \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json ./
COPY bin ./bin
COPY --from=build /runtime ./
# Plain node on the bundle in dist/: no TypeScript loader in the image's processes.
ENV DREDIS_COMPILED=1
RUN chmod +x bin/dredis.js && ln -s /app/bin/dredis.js /usr/local/bin/dredis
# The image's unprivileged user; keepalived containers run as root (they need NET_ADMIN anyway).
USER node
ENTRYPOINT ["dredis"]
