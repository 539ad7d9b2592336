/**
 * The benchmark's own databases, created through BENCH_DATABASE_ADMIN_URL and dropped at
 * the end.
 */
import path from 'node:path';
import postgres from 'postgres';
import { runMigrations } from '../src/db/client.js';
import { ROOT } from './gateway.js';
import { cleanups } from './common.js';
import { ADMIN_URL } from './config.js';

export async function createDatabase(adminSql: postgres.Sql, name: string): Promise<string> {
  await adminSql.unsafe(`create database "${name}"`);
  cleanups.push(() => adminSql.unsafe(`drop database if exists "${name}" with (force)`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  await runMigrations(url.toString(), path.join(ROOT, 'drizzle'));
  return url.toString();
}
