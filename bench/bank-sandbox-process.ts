/**
 * The bank sandbox in a process of its own for bench/bank.ts, so that its work (answering
 * 400 accounts' transactions) neither shares the gateway's event loop nor its memory.
 * Prints `URL <url>` once listening; scripted over its HTTP control API.
 */
import { startBankSandbox } from '../src/sandbox/gocardless-bank/server.js';

// The benchmark measures the import, not the banks' four calls a day.
const perAccount = Number(process.env.BENCH_BANK_TRANSACTIONS ?? 500);
const pending = Math.round(perAccount / 10);
// Accounts are born with their transactions at consent, so whenever the gateway links one, its data is there.
const sandbox = await startBankSandbox({ dailyLimit: 1_000_000, accountsPerRequisition: 2, seedTransactions: { booked: perAccount - pending, pending } });
process.stdout.write(`URL ${sandbox.url}\n`);
process.on('SIGTERM', () => void sandbox.close().finally(() => process.exit(0)));
