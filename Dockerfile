# The runtime image: the `dredis` CLI (proxy host, cluster administration), redis-cli for health
# checks, and keepalived for master-backup proxy pairs on Docker. HAProxy runs from its stock image.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends redis-tools keepalived \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
# Plain node on the compiled build: no TypeScript loader in the image's processes.
ENV DREDIS_COMPILED=1
RUN chmod +x bin/dredis.js && ln -s /app/bin/dredis.js /usr/local/bin/dredis
# The image's unprivileged user; keepalived containers run as root (they need NET_ADMIN anyway).
USER node
ENTRYPOINT ["dredis"]
