import type { FC } from 'hono/jsx';
import type { BankReadiness } from '../bank/readiness.js';
import { Badge, EmptyRow, Instant, Layout } from './layout.js';

const toneOf = (status: string) => (status === 'linked' || status === 'READY' ? 'ok' : status === 'awaiting_consent' ? 'info' : 'bad');

/** Bank feeds: every connection's state, the broken and expiring ones first, and each account's syncs and calls left. */
export const BankPage: FC<{ bank: BankReadiness; now: Date }> = ({ bank, now }) => (
  <Layout title="Bank feeds" nav="bank" signedIn>
    <h1>Bank feeds</h1>
    {bank.status === 'off' ? (
      <p class="muted">Bank feeds are off: set GOCARDLESS_BANK_SECRET_ID and GOCARDLESS_BANK_SECRET_KEY.</p>
    ) : (
      <>
        <p class="muted" data-testid="bank-counts">
          Connections: {Object.entries(bank.connections).map(([status, count]) => `${count} ${status}`).join(', ') || 'none yet'}.
          Scheduler in this process: {bank.scheduler.running ? 'running' : 'not running'}, last pass <Instant value={bank.scheduler.lastPassAt ? new Date(bank.scheduler.lastPassAt) : null} now={now} empty="never" />.
        </p>
        <h2>Broken</h2>
        <table data-testid="bank-broken">
          <thead>
            <tr>
              <th>Connection</th>
              <th>Reference</th>
              <th>Reason</th>
              <th>Since</th>
            </tr>
          </thead>
          <tbody>
            {bank.broken.length === 0 ? (
              <EmptyRow cols={4}>None.</EmptyRow>
            ) : (
              bank.broken.map((c) => (
                <tr>
                  <td>{c.id}</td>
                  <td>{c.reference}</td>
                  <td>
                    <Badge value={c.reason} tone="bad" />
                  </td>
                  <td>
                    <Instant value={new Date(c.since)} now={now} />
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
        <h2>Consent ending soon</h2>
        <table data-testid="bank-expiring">
          <thead>
            <tr>
              <th>Connection</th>
              <th>Reference</th>
              <th>Consent ends</th>
            </tr>
          </thead>
          <tbody>
            {bank.expiring.length === 0 ? (
              <EmptyRow cols={3}>None within the warning window.</EmptyRow>
            ) : (
              bank.expiring.map((c) => (
                <tr>
                  <td>{c.id}</td>
                  <td>{c.reference}</td>
                  <td>
                    <Instant value={new Date(c.consentExpiresAt)} now={now} />
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
        <h2>Accounts of linked connections</h2>
        <table data-testid="bank-accounts">
          <thead>
            <tr>
              <th>Account</th>
              <th>Connection</th>
              <th>Status</th>
              <th>Last sync</th>
              <th>Next sync</th>
              <th class="num">Calls left today</th>
              <th>Paused by the bank until</th>
            </tr>
          </thead>
          <tbody>
            {bank.accounts.length === 0 ? (
              <EmptyRow cols={7}>No linked account yet.</EmptyRow>
            ) : (
              bank.accounts.map((a) => (
                <tr>
                  <td>{a.id}</td>
                  <td>{a.connectionId}</td>
                  <td>
                    <Badge value={a.status} tone={toneOf(a.status)} />
                  </td>
                  <td>
                    <Instant value={a.lastSyncedAt ? new Date(a.lastSyncedAt) : null} now={now} empty="never" />
                  </td>
                  <td>
                    <Instant value={a.nextSyncAt ? new Date(a.nextSyncAt) : null} now={now} empty="not scheduled" />
                  </td>
                  <td class="num">{String(a.callsLeftToday)}</td>
                  <td>
                    <Instant value={a.pausedUntil ? new Date(a.pausedUntil) : null} now={now} empty="-" />
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </>
    )}
  </Layout>
);
