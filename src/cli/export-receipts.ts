/**
 * `npm run export-receipts -- --out receipts.jsonl [options]`: writes the webhook receipts
 * of a gateway's database (DATABASE_URL or --database-url) as JSONL that `npm run replay`
 * reads: provider, account, kind, eventId, the headers that matter, the raw body in
 * base64, receivedAt, and the stored payment's state for seeding a sandbox.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { errorMessage } from '../primitives/error-message.js';
import { PROVIDERS, type ProviderName } from '../providers/types.js';
import { exportReceipts } from './replay/export.js';

const USAGE = `Exports webhook receipts as JSONL for npm run replay.

usage: npm run export-receipts -- --out FILE [options]
  --out FILE             where to write (- for stdout)
  --database-url URL     the gateway's database (default: DATABASE_URL)
  --provider NAME        mollie or gocardless only
  --since ISO-TIME       received at or after
  --until ISO-TIME       received before
  --limit N              at most N receipts, oldest first
  --no-state             leave out the stored payment state (status, amount)
  -h, --help`;

function fail(message: string): never {
  process.stderr.write(`export-receipts: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function date(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) fail(`--${name} must be an ISO 8601 time, got ${JSON.stringify(value)}`);
  return parsed;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        out: { type: 'string' },
        'database-url': { type: 'string' },
        provider: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        limit: { type: 'string' },
        'no-state': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  if (!databaseUrl) fail('no database: pass --database-url or set DATABASE_URL');
  if (!values.out) fail('pass --out FILE (or --out - for stdout)');
  const provider = values.provider;
  if (provider !== undefined && !(PROVIDERS as readonly string[]).includes(provider)) fail(`--provider must be one of ${PROVIDERS.join(', ')}`);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) fail('--limit must be a positive integer');

  const out = values.out === '-' ? process.stdout : createWriteStream(values.out);
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  let count: number;
  try {
    count = await exportReceipts(
      sql,
      { provider: provider as ProviderName | undefined, since: date('since', values.since), until: date('until', values.until), limit, withState: values['no-state'] !== true },
      write,
    );
  } finally {
    await sql.end({ timeout: 5 });
  }
  if (out !== process.stdout) {
    out.end();
    await once(out, 'finish');
  }
  process.stderr.write(`export-receipts: ${count} receipts${values.out === '-' ? '' : ` written to ${values.out}`}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`export-receipts failed: ${errorMessage(error)}\n`);
  process.exit(1);
});
