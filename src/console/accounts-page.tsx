import type { FC } from 'hono/jsx';
import type { AccountsReadiness } from '../accounts/readiness.js';
import type { AccountJson } from '../accounts/view.js';
import { Badge, EmptyRow, Instant, Layout, Notice, type Tone } from './layout.js';

export interface AccountSearch {
  provider?: string;
  status?: string;
}

const toneOf = (status: string): Tone => (status === 'active' ? 'ok' : status === 'broken' ? 'bad' : 'none');

export const accountPath = (provider: string, name: string) => `/console/accounts/${encodeURIComponent(provider)}/${encodeURIComponent(name)}`;

function accountsHref(search: AccountSearch & { after?: number }): string {
  const params = new URLSearchParams();
  if (search.provider) params.set('provider', search.provider);
  if (search.status) params.set('status', search.status);
  if (search.after !== undefined) params.set('after', String(search.after));
  const query = params.toString();
  return `/console/accounts${query ? `?${query}` : ''}`;
}

/**
 * Merchant accounts: each one's connection (status, last check, last error, broken since),
 * the webhook URL to paste into the provider's dashboard, and Check now / Disable. The
 * env-configured `default` accounts are listed first, read-only.
 */
export const AccountsPage: FC<{
  rows: AccountJson[];
  summary: AccountsReadiness;
  search: AccountSearch;
  /** The id the next page starts after; null: no more. */
  next: number | null;
  intervalMs: number;
  now: Date;
  notice?: { tone: Tone; text: string };
  problem?: string;
}> = ({ rows, summary, search, next, intervalMs, now, notice, problem }) => (
  <Layout title="Accounts" nav="accounts" signedIn>
    <h1>Accounts</h1>
    {notice ? <Notice tone={notice.tone}>{notice.text}</Notice> : null}
    {problem ? <Notice tone="warn">{problem}</Notice> : null}
    {summary.broken.count > 0 ? (
      <Notice tone="bad">
        {summary.broken.count === 1 ? '1 account is broken' : `${summary.broken.count} accounts are broken`}: the provider refuses the credentials, and its payments are not synced until new ones are given (PATCH /v1/accounts/…).{' '}
        <a href={accountsHref({ status: 'broken' })}>Show the broken ones</a>
      </Notice>
    ) : null}
    <p class="muted" data-testid="account-counts">
      {Object.entries(summary.counts)
        .map(([provider, counts]) => `${provider}: ${Object.entries(counts).map(([status, count]) => `${count} ${status}`).join(', ')}`)
        .join('; ') || 'No stored account yet.'}{' '}
      Each active and broken account is checked with its provider every {Math.round(intervalMs / 1000)} s, traffic or not.
    </p>
    <form method="get" action="/console/accounts" class="search">
      <label>
        Provider
        <select name="provider">
          <option value="">any</option>
          {['mollie', 'gocardless'].map((provider) => (
            <option value={provider} selected={search.provider === provider}>
              {provider}
            </option>
          ))}
        </select>
      </label>
      <label>
        Status
        <select name="status">
          <option value="">any</option>
          {['active', 'broken', 'disabled'].map((status) => (
            <option value={status} selected={search.status === status}>
              {status}
            </option>
          ))}
        </select>
      </label>
      <button class="primary" type="submit">
        Filter
      </button>
    </form>
    <table data-testid="accounts">
      <thead>
        <tr>
          <th>Provider</th>
          <th>Name</th>
          <th>Status</th>
          <th>Last check</th>
          <th>Last error</th>
          <th>Broken since</th>
          <th>Webhook URL</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <EmptyRow cols={8}>No account matches.</EmptyRow>
        ) : (
          rows.map((a) => (
            <tr data-testid={`account-${a.provider}-${a.name}`}>
              <td>{a.provider}</td>
              <td>
                <code>{a.name}</code>
                <div class="muted small">
                  {a.externalId ?? 'from the environment'} · {a.credentials.kind} …{a.credentials.last4}
                </div>
              </td>
              <td>
                <Badge value={a.status} tone={toneOf(a.status)} />
              </td>
              <td>
                <Instant value={a.lastCheckedAt ? new Date(a.lastCheckedAt) : null} now={now} empty={a.source === 'environment' ? 'not stored' : 'never'} />
              </td>
              <td class="small">{a.lastError ?? <span class="muted">—</span>}</td>
              <td>
                <Instant value={a.brokenSince ? new Date(a.brokenSince) : null} now={now} empty="-" />
              </td>
              <td>
                <code>{a.webhookUrl}</code>
              </td>
              <td>
                {a.source === 'environment' ? (
                  <span class="muted small">read-only (environment)</span>
                ) : (
                  <>
                    <form method="post" action={`${accountPath(a.provider, a.name)}/check`} class="inline">
                      <button class="action" type="submit" data-testid="account-check">
                        Check now
                      </button>
                    </form>{' '}
                    {a.status === 'disabled' ? null : (
                      <form method="post" action={`${accountPath(a.provider, a.name)}/disable`} class="inline">
                        <button class="action" type="submit" data-testid="account-disable">
                          Disable
                        </button>
                      </form>
                    )}
                  </>
                )}
              </td>
            </tr>
          ))
        )}
      </tbody>
    </table>
    <p class="muted small">
      The webhook URL is built from the address this console was reached at; with ADMIN_PORT, use the public host instead.
    </p>
    {next !== null ? (
      <div class="pager">
        <a href={accountsHref({ ...search, after: next })}>Next page</a>
      </div>
    ) : null}
  </Layout>
);
