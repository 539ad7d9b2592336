import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';

/**
 * An embedded Postgres for running the gateway with nothing installed: PGlite (Postgres
 * compiled to WebAssembly) keeps its files in a data folder and serves the Postgres wire
 * protocol on a loopback port. The gateway then talks to it through the very same
 * postgres.js driver, drizzle queries and migrations as to a real server.
 *
 * PGlite is a single-connection database, so the server admits one connection and the
 * gateway's pool is sized to one: transactions queue rather than interleave.
 */
export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  // Loaded on demand: a gateway with a DATABASE_URL never pays for the WebAssembly build.
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  // A fresh checkout has no data folder yet.
  await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const port = await freeLoopbackPort();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 1 });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
