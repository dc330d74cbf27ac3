# tierwatch: a daemon that records the history of QFEX leverage tiers in SQLite.
#
#   docker build -t tierwatch .
#   docker run -d -v tierwatch-data:/data --env-file .env tierwatch          # the daemon (`run`)
#   docker run --rm -v tierwatch-data:/data tierwatch changes --since 1d    # any other command
#
# The base images are build arguments so that a locally built Node 24 bookworm image can stand in
# for the official ones where Docker Hub cannot be reached (see test/docker/build-base.sh).
# Classic-builder compatible on purpose (no BuildKit-only syntax): Debian's engine 20.10 builds it.
ARG BUILD_IMAGE=node:24-bookworm
ARG RUNTIME_IMAGE=node:24-bookworm-slim

# ---- deps: production dependencies only --------------------------------------------------------
FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts keeps `prepare` (tsc) from running; better-sqlite3 13 needs no install script,
# it loads the prebuilt binary shipped in its package (checked by the require below).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()" \
 && npm cache clean --force

# ---- build: compile the TypeScript (dev dependencies present) -----------------------------------
FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script compiles, and the sources are not here yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# Only src/ is copied, so only the application is compiled (no tests, benchmarks or tooling);
# source maps point at .ts files the image does not ship, so they go too.
# tsc is run by path: with --ignore-scripts the `node` dev dependency's bin stub is not set up.
RUN node node_modules/typescript/bin/tsc -p tsconfig.json \
 && test -f dist/src/cli.js \
 && find dist -name '*.map' -delete

# ---- runtime ------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# OCI labels (https://specs.opencontainers.org/image-spec/annotations/). VERSION and REVISION are
# build arguments: `docker build --build-arg VERSION=$(node -p "require('./package.json').version")
# --build-arg REVISION=$(git rev-parse HEAD) .`
ARG RUNTIME_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tierwatch" \
      org.opencontainers.image.description="Keeps a queryable history of QFEX leverage tiers in SQLite" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
ENV NODE_ENV=production \
    TIERWATCH_DB=/data/tierwatch.db
WORKDIR /app
# Application files belong to root and are read-only to the service user; only /data is writable.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY migrations ./migrations
COPY migrations-pg ./migrations-pg
COPY --from=build /app/dist/src ./dist/src
COPY docker/healthcheck.sh ./healthcheck.sh
RUN chmod 0755 dist/src/cli.js healthcheck.sh \
 && ln -s /app/dist/src/cli.js /usr/local/bin/tierwatch \
 && mkdir -p /data \
 && chown node:node /data
# The official images' unprivileged user (uid/gid 1000). A bind-mounted /data or a compose secret
# must be readable (and /data writable) by uid 1000: see docker-compose.yml.
USER node
VOLUME ["/data"]
# The HTTP server (/healthz, /metrics) listens here when TIERWATCH_HTTP_PORT=9464 is set; it is off
# by default (prom-client costs ~10 MB). EXPOSE documents the port; publishing it is the operator's
# choice (see docker-compose.yml).
EXPOSE 9464
# Healthy while every account's last successful sweep is recent enough: the daemon's /healthz when
# the HTTP server is on (bash, no Node process), `tierwatch health` otherwise (see healthcheck.sh).
# The daemon sweeps once at start; the start period covers that first sweep.
HEALTHCHECK --interval=30s --timeout=10s --start-period=2m --retries=3 \
  CMD ["/app/healthcheck.sh"]
# Exec form: Node is PID 1's direct child under `init: true` (or PID 1 itself) and receives
# SIGTERM, which makes the daemon finish or abort its sweep and exit 0.
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["run"]
