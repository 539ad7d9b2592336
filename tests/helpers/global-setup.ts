import path from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { runMigrations } from '../../src/db/client.js';
import { Redis } from 'ioredis';

/**
 * Prepares one migrated template database per test run; every test file clones it
 * (CREATE DATABASE ... TEMPLATE), so files run in parallel on databases of their own.
 * Postgres and Redis are required: a missing service fails the run, it never skips.
 */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function withDatabase(url: string, name: string): string {
  const next = new URL(url);
  next.pathname = `/${name}`;
  return next.toString();
}

export default async function setup(project: TestProject) {
  // The run id starts with the start time, so leftovers can be aged.
  const runId = `${Date.now().toString(36)}x${process.pid.toString(36)}`;
  const template = `gw_tpl_${runId}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin`select 1`;
  } catch (error) {
    throw new Error(
      `the tests need PostgreSQL at ${ADMIN_URL} (set TEST_DATABASE_URL to change it): ${(error as Error).message}`,
      { cause: error },
    );
  }
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`the tests need Redis at ${TEST_REDIS_URL} (set TEST_REDIS_URL to change it): ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    redis.disconnect();
  }

  // Leftovers of runs killed before their teardown. Only runs older than a few hours:
  // another run may be using its databases right now on the same server.
  const stale = await admin<{ datname: string }[]>`select datname from pg_database where datname like 'gw\\_t%'`;
  const cutoff = Date.now() - 3 * 3600_000;
  for (const { datname } of stale) {
    const started = parseInt(/^gw_t(?:pl)?_([0-9a-z]+)x/.exec(datname)?.[1] ?? '', 36);
    if (Number.isFinite(started) && started < cutoff) await admin.unsafe(`drop database if exists "${datname}" with (force)`).catch(() => {});
  }

  await admin.unsafe(`create database "${template}"`);
  await runMigrations(withDatabase(ADMIN_URL, template), path.resolve(import.meta.dirname, '../../drizzle'));
  project.provide('templateDatabase', template);
  project.provide('runId', runId);

  return async () => {
    const created = await admin<{ datname: string }[]>`select datname from pg_database where datname like ${`gw\\_t%${runId}%`}`;
    for (const { datname } of created) await admin.unsafe(`drop database if exists "${datname}" with (force)`).catch(() => {});
    await admin.end();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
    runId: string;
  }
}
