# One image for the gateway and the sandbox services of docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm install --no-save tsx
COPY tsconfig.json ./
COPY drizzle ./drizzle
COPY src ./src
ENV NODE_ENV=production
EXPOSE 8787
CMD ["npx", "tsx", "src/node.ts"]
