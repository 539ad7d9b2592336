# One image for the gateway and the sandbox services of docker-compose.yml.
#   docker build -t payment-webhook-gateway .
#   docker run -p 8787:8787 -e DATABASE_URL=... -e REDIS_URL=... -e ADMIN_TOKEN=... payment-webhook-gateway

# Build stage: the full dependency tree (TypeScript builds dist/), then pruned to production.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs scripts/patch-postgres.mjs (postinstall): a Postgres restart cannot crash the gateway.
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY drizzle ./drizzle
COPY src ./src
# The gateway runs as plain node on dist/ (scripts/build.mjs), as `npm start` does; the
# sandboxes keep running from src/ under tsx (a runtime dependency).
RUN node scripts/build.mjs && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: no compiler, no npm cache, no dev dependencies; runs as the image's
# unprivileged `node` user (uid 1000), which owns nothing but the embedded database's folder.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    EMBEDDED_DATA_DIR=/app/.data/pglite
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/src ./src
COPY --from=build /app/drizzle ./drizzle
COPY --from=build /app/scripts ./scripts
COPY --from=build /app/tsconfig.json ./
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 8787
# /healthz answers while the process serves HTTP; readiness (Postgres) is /readyz, for
# orchestrators that route traffic (deploy/k8s/ uses both).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs", "/healthz"]
# exec: node replaces the shell as PID 1 and gets SIGTERM itself (graceful shutdown).
CMD ["sh", "-c", "exec node --enable-source-maps --max-old-space-size=${GATEWAY_HEAP_MB:-192} --heap-growing-percent=150 dist/node.js"]
