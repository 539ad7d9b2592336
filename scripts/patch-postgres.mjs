#!/usr/bin/env node
/**
 * Patches postgres.js (the `postgres` package) after install, so that a connection the
 * server closes under load cannot crash the whole gateway process.
 *
 * The defect (postgres 3.4.9 and earlier; porsager/postgres#1154, #1208; fixes proposed in
 * #1168 and #1209, unreleased when this was written): `closed()` sets the connection's
 * `socket` to null, but a query can still be written on that connection afterwards. The
 * gateway hits it on every Postgres restart: a transaction (sql.begin) whose connection
 * is terminated mid-way issues its ROLLBACK on the dead connection. A write under 1024
 * bytes is deferred with setImmediate(nextWrite), and `nextWrite` then calls
 * `socket.write` on null. The TypeError is thrown from an immediate callback, where no
 * caller can catch it: the process exits, and every request in flight is lost with it.
 *
 * The patch: when `nextWrite` finds no socket, it drops the buffered bytes and settles
 * instead of throwing. It calls the connection's own `error()` with the driver's
 * CONNECTION_CLOSED error, the path `closed()` itself uses, so the pending query (the
 * ROLLBACK) and anything queued behind it are rejected with an error the caller can
 * catch (the gateway turns it into 503 database_unavailable). Returning without
 * settling would not do: the query would wait forever.
 *
 * Idempotent: a file that carries the marker is left alone; a file whose `nextWrite`
 * already guards the socket (a fixed upstream release) is left alone. Anything else it
 * does not recognise fails the install loudly rather than leaving the crash in place.
 * Run by `npm ci` / `npm install` (package.json "postinstall"), or by hand:
 * `node scripts/patch-postgres.mjs`.
 */
import { execFileSync } from 'node:child_process';
import console from 'node:console';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const MARKER = 'gateway-patch:nextWrite-closed-socket';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = path.join(ROOT, 'node_modules', 'postgres');
/** The ESM build (Node), the CommonJS build, and the Cloudflare Workers build. */
const FILES = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'];

const ORIGINAL = /( *)function nextWrite\(fn\) \{\n\s*const x = socket\.write\(chunk, fn\)\n/;

function replacement(indent) {
  const i = (depth) => indent + '  '.repeat(depth);
  return [
    `${i(0)}function nextWrite(fn) {`,
    `${i(1)}// ${MARKER} (scripts/patch-postgres.mjs, see porsager/postgres#1208):`,
    `${i(1)}// the socket is gone (closed() ran), so settle the pending queries with`,
    `${i(1)}// CONNECTION_CLOSED instead of throwing a TypeError from an immediate callback.`,
    `${i(1)}if (!socket) {`,
    `${i(2)}nextWriteTimer !== null && clearImmediate(nextWriteTimer)`,
    `${i(2)}chunk = nextWriteTimer = null`,
    `${i(2)}error(Errors.connection('CONNECTION_CLOSED', options))`,
    `${i(2)}return false`,
    `${i(1)}}`,
    `${i(1)}const x = socket.write(chunk, fn)`,
    '',
  ].join('\n');
}

/** The body of `function nextWrite` up to its closing brace at the same indent. */
function nextWriteBody(source) {
  const start = source.search(/function nextWrite\(/);
  if (start < 0) return null;
  const end = source.indexOf('\n  }\n', start);
  return source.slice(start, end < 0 ? undefined : end);
}

function upstreamGuards(body) {
  // A released fix checks the socket before writing (`if (!socket)`, `socket === null`, `socket &&`, ...).
  return /!socket\b|socket\s*===?\s*null|socket\s*&&|socket\?\.write/.test(body.split('socket.write')[0] ?? '');
}

function patchFile(relative) {
  const file = path.join(PACKAGE, relative);
  if (!existsSync(file)) return { file: relative, result: 'absent' };
  const source = readFileSync(file, 'utf8');
  if (source.includes(MARKER)) return { file: relative, result: 'already patched' };
  const body = nextWriteBody(source);
  if (body === null) throw new Error(`${relative}: no function nextWrite found; postgres.js changed, review scripts/patch-postgres.mjs`);
  if (upstreamGuards(body)) return { file: relative, result: 'fixed upstream, left alone' };
  const match = ORIGINAL.exec(source);
  if (!match) throw new Error(`${relative}: nextWrite does not look like postgres 3.4.x's; review scripts/patch-postgres.mjs`);
  const patched = source.replace(ORIGINAL, replacement(match[1]));
  writeFileSync(file, patched);
  verify(file, relative);
  return { file: relative, result: 'patched' };
}

/** Reads the file back: the guard is in place, before the write, and the file still parses. */
function verify(file, relative) {
  const body = nextWriteBody(readFileSync(file, 'utf8')) ?? '';
  if (!body.includes(MARKER) || !upstreamGuards(body) || !body.includes("error(Errors.connection('CONNECTION_CLOSED', options))")) {
    throw new Error(`${relative}: the patch did not apply as expected`);
  }
  execFileSync(process.execPath, ['--check', file], { stdio: 'pipe' });
}

function main() {
  if (!existsSync(path.join(PACKAGE, 'package.json'))) {
    console.log('patch-postgres: postgres is not installed here; nothing to patch');
    return;
  }
  const { version } = JSON.parse(readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'));
  const results = FILES.map(patchFile);
  if (!results.some((r) => r.result !== 'absent')) throw new Error('no connection.js found in the postgres package');
  console.log(`patch-postgres: postgres@${version}: ${results.map((r) => `${r.file} ${r.result}`).join('; ')}`);
}

try {
  main();
} catch (error) {
  console.error(`patch-postgres: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  console.error('patch-postgres: without this patch a Postgres restart can crash the gateway (porsager/postgres#1208)');
  process.exit(1);
}
