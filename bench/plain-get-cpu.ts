/**
 * CPU per Mollie payment read of the direct GET's two transports, side by side:
 *
 *   npx tsx bench/plain-get-cpu.ts [--reads=5000] [--rounds=3] [--concurrency=32]
 *
 * The Mollie sandbox runs in a child process with one paid payment; this process reads it
 * through `createDirectPaymentGet` (src/providers/mollie/direct-get.ts, the webhook's hot
 * path: the request, the body, the schema check) over `fetch` and over Node's own http
 * (src/providers/plain-get-node.ts), alternating round by round, and prints this process's
 * CPU microseconds (user + system) per read. The sandbox's CPU is not counted.
 */
import { fork } from 'node:child_process';
import { createDirectPaymentGet } from '../src/providers/mollie/direct-get.js';
import { fetchPlainGet } from '../src/providers/plain-get.js';
import { nodePlainGet } from '../src/providers/plain-get-node.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox } from '../src/sandbox/mollie-api.js';

if (process.argv[2] === '--sandbox') {
  const sandbox = await startMollieSandbox({ port: 0, hostname: '127.0.0.1' });
  const payment = sandbox.createPayment({ status: 'paid', method: 'ideal', metadata: { invoiceId: 'INV-1' } });
  process.send!({ url: sandbox.url, id: payment.id });
} else {
  const option = (name: string, fallback: number) => Number(process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
  const reads = option('reads', 5000);
  const rounds = option('rounds', 3);
  const concurrency = option('concurrency', 32);
  const child = fork(new URL(import.meta.url).pathname, ['--sandbox'], { execArgv: ['--import', 'tsx'] });
  const { url, id } = await new Promise<{ url: string; id: string }>((resolve) => child.once('message', (message) => resolve(message as { url: string; id: string })));
  const transports = {
    fetch: fetchPlainGet((input, init) => fetch(input, init)),
    'node:http': nodePlainGet(),
  };
  const readers = Object.entries(transports).map(([name, get]) => ({ name, read: createDirectPaymentGet({ serverURL: url, get, timeoutMs: 4000, backoff: null }) }));

  async function pass(read: (typeof readers)[number]['read']): Promise<number> {
    let left = reads;
    const before = process.cpuUsage();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) {
          const result = await read(SANDBOX_DEFAULT_API_KEY, id);
          if (result.kind !== 'found') throw new Error(`expected the payment, got ${result.kind}`);
        }
      }),
    );
    const used = process.cpuUsage(before);
    return (used.user + used.system) / reads;
  }

  // A warm-up of each first: the JIT and the connection pools.
  for (const reader of readers) await pass(reader.read);
  const results: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const reader of readers) (results[reader.name] ??= []).push(await pass(reader.read));
  }
  for (const [name, perRead] of Object.entries(results)) {
    const sorted = [...perRead].sort((a, b) => a - b);
    console.log(`${name.padEnd(10)} CPU per read: ${perRead.map((us) => us.toFixed(0)).join(', ')} µs (median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)})`);
  }
  child.kill();
  process.exit(0);
}
