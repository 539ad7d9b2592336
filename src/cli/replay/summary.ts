import type { ReplayReport, RequestTally } from './run.js';

const LISTED_PAYMENTS = 20;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const LISTED_PROBLEMS = 30;

function statuses(tally: RequestTally): string {
  const entries = Object.entries(tally.byStatus).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '' : ` (${entries.map(([status, n]) => `${status}×${n}`).join(', ')})`;
}

/** The human summary: what was sent, what came back, what the gateway made of it. */
export function formatSummary(report: ReplayReport): string {
  const lines: string[] = [];
  const scenarios = report.scenarios.length > 0 ? report.scenarios.join(', ') : 'in order';
  lines.push(`replay of ${plural(report.webhooks, 'webhook')} from ${report.files.join(', ')} → ${report.gateway}`);
  lines.push(`  scenario       ${scenarios}${report.seed !== null ? ` (seed ${report.seed})` : ''}`);
  if (report.idSuffix) lines.push(`  ids            suffixed with ${report.idSuffix} (--keep-ids sends them as written)`);
  if (report.outage) lines.push(`  outage         providers down after ${report.outage.startedAfterMs} ms, for ${report.outage.downMs} ms`);
  lines.push(
    `  sent           ${plural(report.sent, 'request')}: ${plural(report.webhookRequests.sent, 'webhook')}${statuses(report.webhookRequests)}, ${plural(report.syncRequests.sent, 'return-page sync')}${statuses(report.syncRequests)}`,
  );
  lines.push(`  acknowledged   ${report.acknowledged}`);
  lines.push(`  5xx            ${report.serverErrors}${report.outageErrors ? ` (+${report.outageErrors} sync 502/503 while a provider was down, as documented)` : ''}`);
  if (report.checked) {
    lines.push(
      `  payments       ${report.payments.found} found of ${report.payments.checked} checked (${report.payments.expected} expected), ${report.payments.settled} settled in ${report.settleMs} ms`,
    );
    lines.push(`  events         ${plural(report.events.payment, 'payment event')}, ${plural(report.events.forwarded, 'forwarded GoCardless event')}`);
    lines.push(`  duplicates     ${report.duplicates}`);
  }
  if (report.database) {
    lines.push(
      `  database       ${report.database.rows} rows (${report.database.duplicateRows} provider ids with more than one), receipts pending ${report.database.pendingReceipts}, failed ${report.database.failedReceipts}`,
    );
  }
  if (report.payments.list.length > 0 && report.payments.list.length <= LISTED_PAYMENTS) {
    lines.push('  payment                                  status (provider)         version  events');
    for (const payment of report.payments.list) {
      const state = payment.status === null ? 'not at the gateway' : `${payment.status} (${payment.providerStatus})`;
      lines.push(
        `    ${`${payment.provider} ${payment.id}`.padEnd(38)} ${state.padEnd(25)} ${String(payment.version ?? '-').padEnd(8)} ${payment.events.join(', ') || '-'}`,
      );
    }
  }
  for (const warning of report.warnings.slice(0, LISTED_PROBLEMS)) lines.push(`  warning: ${warning}`);
  if (report.violations.length === 0) {
    lines.push(report.checked ? 'OK: every invariant held' : 'OK: every webhook was acknowledged (invariants not checked)');
  } else {
    lines.push(`FAILED: ${report.violations.length} invariant violation(s)`);
    for (const violation of report.violations.slice(0, LISTED_PROBLEMS)) lines.push(`  - ${violation}`);
    if (report.violations.length > LISTED_PROBLEMS) lines.push(`  ... and ${report.violations.length - LISTED_PROBLEMS} more (--json lists them all)`);
  }
  return `${lines.join('\n')}\n`;
}
