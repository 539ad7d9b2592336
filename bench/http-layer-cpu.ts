/**
 * CPU per request of the HTTP layer, for comparing two source trees on one machine:
 *
 *   npx tsx bench/http-layer-cpu.ts before=/tmp/tree-a after=. [--requests=20000] [--rounds=5]
 *
 * Each tree's app runs in its own process (bench/http-layer-server.ts, under tsx, logging
 * at info to a file as a log shipper would take it); the rounds alternate between them, each
 * firing the same requests with autocannon at a cheap route (GET /healthz) and at the
 * Mollie webhook route (no provider configured: the whole middleware chain, a refusal, an
 * inbound-log row), and print the server's CPU microseconds per request.
 * Needs Postgres (BENCH_DATABASE_URL, default a gw_http_bench database) and Redis.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => Number(args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const trees = args.filter((arg) => !arg.startsWith('--')).map((arg) => {
  // label=dir, or label=dir,buffer=4096 for the log through a buffered destination.
  const label = arg.slice(0, arg.indexOf('='));
  const [dir, buffer] = arg.slice(label.length + 1).split(',buffer=');
  return { label, dir: path.resolve(dir!), buffer };
});
const requests = option('requests', 20000);
const rounds = option('rounds', 5);
const connections = option('connections', 10);
const logDir = process.env.BENCH_LOG_DIR ?? '/tmp';

interface Server {
  label: string;
  child: ChildProcess;
  port: number;
}

function ask<T>(child: ChildProcess, message?: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (reply) => resolve(reply as T));
    if (message) child.send(message);
  });
}

async function start(label: string, dir: string, buffer?: string): Promise<Server> {
  const fd = openSync(path.join(logDir, `http-layer-${label}.log`), 'w');
  const child = fork(path.join(import.meta.dirname, 'http-layer-server.ts'), [dir], {
    execArgv: ['--import', 'tsx'],
    cwd: dir,
    stdio: ['ignore', fd, fd, 'ipc'],
    env: {
      ...process.env,
      DATABASE_URL: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/gw_http_bench',
      REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      WEBHOOK_REFETCH_WINDOW_MS: '0',
      ...(buffer ? { BENCH_LOG_BUFFER: buffer } : {}),
    },
  });
  closeSync(fd);
  const { port } = await ask<{ port: number }>(child);
  return { label, child, port };
}

const routes = {
  healthz: { method: 'GET', path: '/healthz' },
  webhook: { method: 'POST', path: '/webhooks/mollie', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=tr_benchmark1' },
} as const;

async function fire(server: Server, route: keyof typeof routes, amount: number): Promise<{ micros: number; statuses: Record<string, number> }> {
  const before = await ask<{ cpuMicros: number }>(server.child, 'cpu');
  const result = await autocannon({ url: `http://127.0.0.1:${server.port}`, connections, amount, requests: [routes[route]] });
  const after = await ask<{ cpuMicros: number }>(server.child, 'cpu');
  const statuses: Record<string, number> = {};
  for (const key of ['1xx', '2xx', '3xx', '4xx', '5xx'] as const) if (result[key]) statuses[key] = result[key];
  return { micros: (after.cpuMicros - before.cpuMicros) / amount, statuses };
}

const servers: Server[] = [];
for (const tree of trees) servers.push(await start(tree.label, tree.dir, tree.buffer));
const samples = new Map<string, number[]>();
try {
  for (const server of servers) for (const route of Object.keys(routes) as (keyof typeof routes)[]) await fire(server, route, Math.min(5000, requests)); // warm-up
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const route of Object.keys(routes) as (keyof typeof routes)[]) {
      for (const server of order) {
        const { micros, statuses } = await fire(server, route, requests);
        const key = `${route} ${server.label}`;
        samples.set(key, [...(samples.get(key) ?? []), micros]);
        console.log(`round ${round + 1} ${key}: ${micros.toFixed(1)} µs CPU/request ${JSON.stringify(statuses)}`);
      }
    }
  }
} finally {
  for (const server of servers) server.child.kill('SIGTERM');
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (const [key, values] of samples) console.log(`${key}: median ${median(values).toFixed(1)} µs, min ${Math.min(...values).toFixed(1)} µs (${values.map((v) => v.toFixed(0)).join(', ')})`);
