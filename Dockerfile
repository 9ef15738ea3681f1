# The runbooks worker image (also runs `runbook` CLI commands, e.g. the codec server).
#
#   docker build -t durable-runbooks-worker .          # from the project root (see .dockerignore)
#   docker run --rm -v $PWD/runbooks.yaml:/etc/runbooks/runbooks.yaml:ro \
#     -v /var/run/docker.sock:/var/run/docker.sock durable-runbooks-worker
#
# Stage 1 installs every dependency and builds: TypeScript to dist/ and the workflow bundle
# (dist/workflow-bundle.js), so the worker starts without webpack. Stage 2 keeps production
# dependencies and dist/ only, and runs as the unprivileged `node` user.
# NODE_IMAGE must be Debian-based (glibc; the Temporal core bridge is a native module).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
# The tools the runbooks call: pg_dump/pg_restore (PostgreSQL 15 client, as new as the servers it dumps),
# the docker CLI (service stop/start through the mounted socket), tini as PID 1 (signals reach node).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 docker.io tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
ENV NODE_ENV=production RUNBOOKS_CONFIG=/etc/runbooks/runbooks.yaml
# backups.root for the compose stack's volume: created here so the volume starts owned by `node`.
RUN mkdir -p /var/lib/runbooks/backups && chown node:node /var/lib/runbooks/backups
# Non-root. Docker steps need the socket's group: run with `--group-add <gid of docker.sock>`
# (docker-compose.temporal.yml sets DOCKER_GID). Backups go to a volume owned by this user.
USER node
EXPOSE 9464
ENTRYPOINT ["/usr/bin/tini", "--", "node"]
CMD ["dist/workers/main.js"]
