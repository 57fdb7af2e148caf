# MyEtcd container image: two stages, a build with the TypeScript compiler and a slim runtime.
# Build:  docker build -t myetcd .
# Run:    docker run -p 2379:2379 -v myetcd-data:/var/lib/myetcd myetcd
# Every setting is a flag or an environment variable (MYETCD_* or etcd's ETCD_*), see
# docs/configuration.md; the defaults below listen on all interfaces inside the container.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# The sources come first: `npm ci` runs the package's "prepare" script, which is `tsc -p .`.
# package.json's "overrides" pins uWebSockets.js to a registry build that loads on bookworm.
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY actors ./actors
COPY bin ./bin
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# A fixed glibc mmap threshold of 4 MiB returns large chunks to the system when they are
# freed (a snapshot's dumps left 45–90 MiB resident in malloc's arenas without it; session 14
# of docs/performance.md). Huge pages for malloc are not asked for: on a VM that hands freed
# memory back to its host they made the start after a kill -9 slower (session 25).
ENV NODE_ENV=production \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304 \
    MYETCD_DATA_DIR=/var/lib/myetcd \
    MYETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    MYETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380
WORKDIR /app
RUN groupadd --system myetcd && useradd --system --gid myetcd --home /var/lib/myetcd myetcd \
    && mkdir -p /var/lib/myetcd && chown myetcd:myetcd /var/lib/myetcd
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
USER myetcd
VOLUME ["/var/lib/myetcd"]
EXPOSE 2379 2380
# /health answers 200 {"health":"true"} when this member has a leader (as etcd's /health).
# The check dials the member's own first --listen-client-urls (read from pid 1's arguments and
# environment, a wildcard address replaced by loopback), so a changed port stays healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "dist/src/server/healthcheck.js", "1"]
# Exec form: node is pid 1 and receives `docker stop`'s SIGTERM itself; the member stops
# accepting requests, finishes those in flight, closes the WAL and exits 0.
# Flags given to `docker run` are appended, e.g. `docker run myetcd --name n1`.
ENTRYPOINT ["node", "dist/src/main.js"]
