/**
 * The machine and the source tree a run measured, for the report.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import postgres from 'postgres';
import { ROOT, SOURCE_ROOT } from './gateway.js';
import { loadAverage } from './proc-stats.js';
import { round } from './common.js';

export interface Machine {
  nproc: number;
  memoryGb: number;
  cpuModel: string;
  node: string;
  postgres: string;
  redis: string | null;
  os: string;
  loadAverageAtStart: [number, number, number];
}

export async function describeMachine(adminSql: postgres.Sql, redisVersion: string | null): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const [row] = await adminSql<{ version: string }[]>`select version()`;
  const version = row?.version ?? 'unknown';
  return {
    nproc: os.availableParallelism(),
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    postgres: version.split(' on ')[0] ?? version,
    redis: redisVersion,
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: await loadAverage(),
  };
}

/** The commit measured, and whether the working tree differed from it (read-only git calls). */
export async function describeSource(): Promise<string> {
  if (SOURCE_ROOT !== ROOT) return `BENCH_GATEWAY_SRC=${SOURCE_ROOT}`;
  const git = (args: string[]) =>
    new Promise<string>((resolve) => {
      const child = spawn('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout!.on('data', (chunk) => (out += chunk));
      child.on('close', () => resolve(out.trim()));
      child.on('error', () => resolve(''));
    });
  const [commit, dirty] = await Promise.all([git(['rev-parse', '--short', 'HEAD']), git(['status', '--porcelain', '--', 'src', 'drizzle'])]);
  return commit ? `${commit}${dirty ? ' + uncommitted changes in src/' : ''}` : 'unknown';
}
