# One image for the gateway and the sandbox services of docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs it (postinstall): patches postgres.js so a Postgres restart cannot crash the gateway.
COPY scripts/patch-postgres.mjs ./scripts/
RUN npm ci --omit=dev --no-audit --no-fund && npm install --no-save tsx
COPY tsconfig.json ./
COPY drizzle ./drizzle
COPY src ./src
ENV NODE_ENV=production
EXPOSE 8787
CMD ["npx", "tsx", "src/node.ts"]
