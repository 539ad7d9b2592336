/**
 * `npm run replay -- [options] <file.jsonl>...`: replays provider webhooks (fixture sets
 * in fixtures/replay/, or receipts exported by `npm run export-receipts`) against a
 * gateway, in the scenarios that break naive webhook handlers (duplicate storms, late
 * and shuffled batches, the webhook/return-page race, a provider outage), then checks
 * through the gateway's own API that every guarantee held. `--help` lists the options.
 *
 * Exit status: 0 every invariant held, 1 one broke, 2 bad usage or the run could not start.
 */
import { BankReplaySetupError, formatBankSummary, runBankReplay } from './replay/bank.js';
import { parseReplayArgs, USAGE, UsageError } from './replay/options.js';
import { createProgress } from './replay/progress.js';
import { loadReplay, ReplayInputError } from './replay/records.js';
import { ReplaySetupError, runReplay } from './replay/run.js';
import { SandboxControlError } from './replay/sandbox-control.js';
import { formatSummary } from './replay/summary.js';

function finish(code: number, stdout = ''): void {
  // Exit once stdout is flushed; keep-alive sockets would otherwise hold the process a few seconds.
  process.stdout.write(stdout, () => process.exit(code));
}

async function main(): Promise<void> {
  let options;
  try {
    options = parseReplayArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`replay: ${error.message}\n\n${USAGE}\n`);
      return finish(2);
    }
    throw error;
  }
  if (options.help) return finish(0, `${USAGE}\n`);

  const say = (line: string) => process.stderr.write(`replay: ${line}\n`);
  if (options.scenarios.has('bank')) {
    try {
      const bank = { gatewayUrl: options.gatewayUrl, adminToken: options.adminToken!, bankSandbox: options.bankSandbox!, connections: options.bankConnections, rounds: options.bankRounds, graceMs: options.bankGraceMs };
      const report = await runBankReplay(bank, { note: say });
      return finish(report.ok ? 0 : 1, options.json ? `${JSON.stringify(report, null, 2)}\n` : formatBankSummary(report));
    } catch (error) {
      if (!(error instanceof BankReplaySetupError)) throw error;
      say(error.message);
      return finish(2);
    }
  }
  try {
    const loaded = await loadReplay(options.files, { ids: options.ids, account: options.account });
    const progress = createProgress(process.stderr, { enabled: options.progress });
    const report = await runReplay(options, loaded, { progress, note: say });
    return finish(report.ok ? 0 : 1, options.json ? `${JSON.stringify(report, null, 2)}\n` : formatSummary(report));
  } catch (error) {
    if (error instanceof ReplayInputError || error instanceof ReplaySetupError || error instanceof SandboxControlError) {
      say(error.message);
      return finish(2);
    }
    throw error;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`replay failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  finish(2);
});
