# syntax=docker/dockerfile:1
# Agent Chassis: build with the dev dependencies, run with production ones only, as a non-root user.
# Node 24 is the current LTS line (package.json "engines" lists the supported ones).
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 and @node-rs/argon2 ship prebuilt binaries for linux-x64/arm64 glibc; these are for
# a platform without one, where npm falls back to compiling.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL=sqlite:/app/data/agent-chassis.db \
    MCP_CONFIG_PATH=/app/config/mcp_config.json
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
# The code is root's and read-only to the app; only the data directory is the app's.
RUN mkdir -p /app/data /app/config && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 8000
# Liveness only (/health is cheap); an orchestrator should also probe GET /ready.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1's only process and gets SIGTERM itself (it drains runs, then exits);
# `init: true` in compose (or `docker run --init`) adds a zombie reaper in front of it.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
