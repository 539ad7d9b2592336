import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/**
 * One process per embedded data folder. PGlite has no postmaster to refuse a second
 * opener: two gateways on one folder each keep their own pages in memory and overwrite
 * each other's files, and acknowledged payments vanish after a restart.
 *
 * The lock is flock(2) on `<dataDir>/gateway.lock`, taken by util-linux's (or busybox's)
 * `flock` command on a file descriptor this process opened and lends it: flock locks
 * belong to the open file, not to the process that called flock, so the lock stays
 * with us after the command exits and the kernel drops it when our descriptor closes,
 * which it does when the process dies however it dies (SIGKILL, OOM kill, power-off of a
 * container). Why not something else:
 * - Node has no flock binding, and the npm packages that add one are native builds
 *   (install scripts);
 * - a pid file needs a liveness check that a reused pid, or a pid in another container's
 *   pid namespace sharing the volume, fools, and its stale-lock takeover races;
 * - a loopback port is scoped to a network namespace, not to the data: two containers
 *   mounting the same volume would each "hold" it.
 * flock lives on the file itself, so it also holds across containers on one host.
 * Where no `flock` command exists (macOS has none by default) the gateway starts with a
 * warning in its banner: nothing there stops a second process.
 */
export interface DataDirLock {
  /** How the folder is protected, for the start-up banner. */
  readonly description: string;
  release(): void;
}

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(readonly dataDir: string, readonly holder: LockHolder | null) {
    super(
      `EMBEDDED_DATA_DIR ${dataDir} is in use by another gateway process (${holder ? describeHolder(holder) : 'pid not yet written'}). ` +
        'Two processes on one embedded database lose acknowledged data: stop that one first, or set DATABASE_URL so that several gateways share a Postgres server.',
    );
  }
}

export interface LockHolder {
  pid: number;
  host: string;
  since: string;
}

function describeHolder(holder: LockHolder): string {
  return `pid ${holder.pid} on ${holder.host}, since ${holder.since}`;
}

export const LOCK_FILE = 'gateway.lock';

export function lockDataDir(dataDir: string): DataDirLock {
  const file = path.join(dataDir, LOCK_FILE);
  // Not truncated on open: the holder's pid stays readable for the message below.
  const fd = openSync(file, 'a+');
  const taken = spawnSync('flock', ['--exclusive', '--nonblock', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  const missing = (taken.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  if (missing) {
    // Held open anyway, harmlessly; released with the process.
    return { description: `NOT LOCKED (no flock command on this system): never start a second gateway on ${dataDir}`, release: () => closeSync(fd) };
  }
  if (taken.error) {
    closeSync(fd);
    throw taken.error;
  }
  if (taken.status !== 0) {
    closeSync(fd);
    // flock exits 1 when the lock is held; anything else is a real failure worth its stderr.
    if (taken.status !== 1) throw new Error(`could not lock ${file}: flock exited ${taken.status}: ${taken.stderr.toString().trim()}`);
    throw new DataDirLockedError(dataDir, readHolder(file));
  }
  const holder: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  ftruncateSync(fd, 0);
  writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
  return { description: `locked (flock on ${file}, pid ${process.pid})`, release: () => closeSync(fd) };
}

function readHolder(file: string): LockHolder | null {
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof holder.pid === 'number' ? { pid: holder.pid, host: String(holder.host), since: String(holder.since) } : null;
  } catch {
    // The holder has the lock but has not written its pid yet.
    return null;
  }
}
