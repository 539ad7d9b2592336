import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { lockDataDir } from './embedded-lock.js';

/**
 * An embedded Postgres for running the gateway with nothing installed: PGlite (Postgres
 * compiled to WebAssembly) keeps its files in a data folder and serves the Postgres wire
 * protocol on a loopback port. The gateway then talks to it through the very same
 * postgres.js driver, drizzle queries and migrations as to a real server.
 *
 * PGlite is a single-connection database, so the server admits one connection and the
 * gateway's pool is sized to one: transactions queue rather than interleave.
 *
 * One process per data folder (embedded-lock.ts): a second gateway on the same folder
 * refuses to start, naming the process that holds it.
 */
export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  /** How the data folder is protected from a second process, for the banner. */
  lock: string;
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
  // Before PGlite opens a single file: a second process must not even read pages it would later overwrite.
  const lock = lockDataDir(dataDir);
  try {
    const db = await PGlite.create(dataDir);
    const port = await freeLoopbackPort();
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 1 });
    await server.start();
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      dataDir,
      lock: lock.description,
      async stop() {
        await server.stop();
        await db.close();
        lock.release();
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}
