# One image for the gateway and the sandbox services of docker-compose.yml.
FROM node:20-bookworm-slim
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
ENV NODE_ENV=production
EXPOSE 8787
# exec: node is PID 1's replacement and gets SIGTERM itself (graceful shutdown).
CMD ["sh", "-c", "exec node --enable-source-maps --max-old-space-size=${GATEWAY_HEAP_MB:-192} --heap-growing-percent=150 dist/node.js"]
