/** Applies pending migrations to DATABASE_URL and exits (npm run db:migrate). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDatabase, runMigrations } from '../db/client.js';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('DATABASE_URL is required\n');
  process.exit(78);
}
await ensureDatabase(url);
await runMigrations(url, path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../drizzle'));
process.stdout.write('migrations applied\n');
