/**
 * The operator console under /console: server-rendered pages (Hono JSX, no script) that
 * show why a payment is in the state it is in. Signed in with ADMIN_TOKEN; see
 * session.ts for the cookie and the CSRF check.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { consoleActor, listAuditEntries, recordAuditEntry, requestOrigin, AUDIT_ACTIONS, type AuditAction, type AuditEntry } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { readPollerFleet } from '../poller/fleet.js';
import { syncPayment, type SyncDeps } from '../payments/sync-payment.js';
import { errorMessage } from '../primitives/error-message.js';
import { listReceipts, reopenFailedReceipt, RECEIPT_STATES } from '../webhooks/receipts.js';
import { listWebhookRequests } from '../webhooks/inbound-log.js';
import { AuditPage, ReceiptsPage, RequestsPage, type ReceiptSearch } from './activity-pages.js';
import { AppError } from '../http/errors.js';
import { sourceOf, type FailedAttempts } from '../http/failed-attempts.js';
import type { AppEnv } from '../http/middleware.js';
import { PAYMENT_STATUSES, PROVIDERS, isProviderName, type ProviderName } from '../providers/types.js';
import { CONSOLE_CSS_HASH } from './layout.js';
import { readBankReadiness } from '../bank/readiness.js';
import { BankPage } from './bank-page.js';
import { AccountsPage, type AccountSearch } from './accounts-page.js';
import { AccountError, disableAccount } from '../accounts/accounts.js';
import { checkAccountNow, type AccountCheckOutcome } from '../accounts/check-job.js';
import { readAccountsReadiness } from '../accounts/readiness.js';
import { ACCOUNT_STATUSES, getAccount, listAccountRows, type AccountStatus } from '../accounts/store.js';
import { envAccountsJson, toAccountJson } from '../accounts/view.js';
import type { Tone } from './layout.js';
import { DeliveriesPage, DeliveryPage, SinkPage, deliveriesHref, deliveryPath, sinkPath, type DeliverySearch } from './delivery-pages.js';
import { enableSink, listSinkStates } from '../events/deliveries.js';
import {
  DELIVERY_STATES,
  countDeliveries,
  disableSink,
  getDelivery,
  listDeliveries,
  listDeliveryAttempts,
  redriveDeadLetters,
  sendTestEvent,
  sinkAttemptStats,
  type DeliveryFilter,
  type DeliveryState,
} from '../events/delivery-operations.js';
import { OutboxPage, OverviewPage, PollersPage, REFRESH_CHOICES, VOLUME_RANGES, type VolumeRange } from './operations-pages.js';
import { PaymentNotFoundPage, PaymentPage, PaymentsPage, type PaymentFormValues } from './payment-pages.js';
import { currencyExponent } from '../money.js';
import {
  getOutboxSummary,
  getPaymentDetail,
  getPaymentHistory,
  getWebhookVolume,
  listConsoleDeadLetters,
  listPollerHealth,
  countPayments,
  redriveFromConsole,
  searchPayments,
  type PaymentFilter,
} from './queries.js';
import {
  CONSOLE_PATH,
  SESSION_COOKIE,
  SESSION_TTL_SECONDS,
  createSessionValue,
  isHttps,
  isSameOrigin,
  safeNextPath,
  tokenMatches,
  verifySessionValue,
} from './session.js';
import { DisabledPage, ErrorPage, SignInPage } from './sign-in-page.js';
import { buildTimeline } from './timeline.js';

const PAGE_SIZE = 50;
const DEAD_LETTER_PAGE_SIZE = 100;
const PAYMENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Console forms carry a token, an id and a path: a few hundred bytes. */
const FORM_BODY_LIMIT = 8 * 1024;

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src '${CONSOLE_CSS_HASH}'`,
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

type ConsoleContext = Context<AppEnv>;

const positiveInt = (value: string | undefined): number | undefined => {
  if (!value || !/^\d{1,15}$/.test(value)) return undefined;
  const number = Number(value);
  return number > 0 ? number : undefined;
};

/** What the console reads and does: the database, a manual sync, an account check, the bank feed's readiness. */
type ConsoleDeps = SyncDeps & Pick<Deps, 'env' | 'clock' | 'bank' | 'bankSchedulerState' | 'locker'>;

export function consoleRoutes(deps: ConsoleDeps, options: { failedAttempts?: FailedAttempts } = {}) {
  const app = new Hono<AppEnv>();
  const token = deps.env.ADMIN_TOKEN;
  const now = () => deps.clock.now();
  const signedIn = (c: ConsoleContext) => Boolean(token) && verifySessionValue(getCookie(c, SESSION_COOKIE), token!, now());
  /** Every operator action leaves an audit entry: the session (by fingerprint), what, to what, and what came of it. */
  const audit = (c: ConsoleContext, entry: Omit<AuditEntry, 'actor' | 'requestId' | 'userAgent'> & { actor?: string }) =>
    recordAuditEntry(deps.db, { actor: consoleActor(getCookie(c, SESSION_COOKIE) ?? ''), ...entry, ...requestOrigin(c) });

  app.use('*', async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Frame-Options', 'DENY');
    c.header('X-Content-Type-Options', 'nosniff');
    // Not no-referrer: under it browsers send `Origin: null` on form POSTs, which the CSRF check refuses.
    c.header('Referrer-Policy', 'same-origin');
    c.header('Cache-Control', 'no-store');
  });
  app.use('*', bodyLimit({ maxSize: FORM_BODY_LIMIT, onError: () => { throw new AppError('payload_too_large', 'form too large'); } }));

  app.onError((error, c) => {
    const status = error instanceof AppError ? error.status : 500;
    if (!(error instanceof AppError)) {
      c.get('logger')?.error({ err: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error) }, 'console request failed');
    }
    const message = error instanceof AppError ? error.message : 'Something went wrong; the gateway log has the details.';
    return c.html(<ErrorPage status={status} message={message} requestId={c.get('requestId')} signedIn={signedIn(c)} />, status);
  });

  if (!token) {
    app.all('*', (c) => c.html(<DisabledPage />, 503));
    return app;
  }

  // CSRF: every state-changing request must come from a page of this site (the cookie is
  // also SameSite=Strict, so a cross-site POST would arrive without it anyway).
  app.use('*', async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !isSameOrigin(c)) {
      c.get('logger')?.warn({ origin: c.req.header('origin') ?? null, outcome: 'csrf_refused' }, 'console POST from another origin refused');
      throw new AppError('cross_origin', 'This form was not sent from the console itself (Origin header missing or foreign).');
    }
    await next();
  });

  const requireSession: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (signedIn(c)) return next();
    const url = new URL(c.req.url);
    return c.redirect(`${CONSOLE_PATH}/sign-in?next=${encodeURIComponent(safeNextPath(url.pathname + url.search))}`, c.req.method === 'GET' ? 302 : 303);
  };

  // ---- sign-in, sign-out -------------------------------------------------------------

  app.get('/sign-in', (c) => {
    const next = safeNextPath(c.req.query('next'));
    if (signedIn(c)) return c.redirect(next, 302);
    return c.html(<SignInPage next={next} info={c.req.query('signed-out') !== undefined ? 'Signed out.' : undefined} />);
  });

  app.post('/sign-in', async (c) => {
    const form = await c.req.parseBody();
    const given = typeof form.token === 'string' ? form.token : '';
    const next = safeNextPath(typeof form.next === 'string' ? form.next : undefined);
    if (!tokenMatches(given, token)) {
      // Throttled past a few a minute (the right token always passes: it was checked first).
      const waitS = options.failedAttempts?.fail(sourceOf(c)) ?? 0;
      if (waitS > 0) {
        c.header('Retry-After', String(waitS));
        return c.html(<SignInPage next={next} error={`Too many wrong tokens. Try again in ${waitS} s.`} />, 429);
      }
      c.get('logger').warn({ outcome: 'bad_token' }, 'console sign-in refused');
      await audit(c, { actor: 'anonymous', action: 'console.sign_in_refused', outcome: 'refused' });
      return c.html(<SignInPage next={next} error="That is not the admin token." />, 401);
    }
    const session = createSessionValue(token, now());
    setCookie(c, SESSION_COOKIE, session, {
      path: CONSOLE_PATH,
      httpOnly: true,
      sameSite: 'Strict',
      secure: isHttps(c),
      maxAge: SESSION_TTL_SECONDS,
    });
    c.get('logger').info({ outcome: 'signed_in' }, 'console sign-in');
    await audit(c, { actor: consoleActor(session), action: 'console.sign_in', outcome: 'applied' });
    return c.redirect(next, 303);
  });

  app.post('/sign-out', async (c) => {
    if (signedIn(c)) await audit(c, { action: 'console.sign_out', outcome: 'applied' });
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH, httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
    return c.redirect(`${CONSOLE_PATH}/sign-in?signed-out`, 303);
  });

  // ---- pages ---------------------------------------------------------------------------

  app.get('/', requireSession, async (c) => {
    const rangeParam = c.req.query('range');
    const range: VolumeRange = rangeParam && rangeParam in VOLUME_RANGES ? (rangeParam as VolumeRange) : '1h';
    const refreshParam = Number(c.req.query('refresh'));
    const refresh = (REFRESH_CHOICES as readonly number[]).includes(refreshParam) ? refreshParam : 0;
    const [volume, outbox, pollers, fleet] = await Promise.all([
      getWebhookVolume(deps.db, VOLUME_RANGES[range]),
      getOutboxSummary(deps.db),
      listPollerHealth(deps.db),
      readPollerFleet(deps.db, deps.env.POLLER_STALLED_AFTER_MS),
    ]);
    return c.html(<OverviewPage volume={volume} outbox={outbox} pollers={pollers} fleet={fleet} range={range} refresh={refresh} />);
  });

  app.get('/payments', requireSession, async (c) => {
    const { search, filter, problems } = paymentSearchOf(c.req.query());
    const before = positiveInt(c.req.query('before'));
    const after = before === undefined ? positiveInt(c.req.query('after')) : undefined;
    const [rows, total] = await Promise.all([
      searchPayments(deps.db, { ...filter, beforeId: before, afterId: after, limit: PAGE_SIZE + 1 }),
      countPayments(deps.db, filter),
    ]);
    const { page, newer, older } = pageBothWays(rows, { before, after, size: PAGE_SIZE });
    return c.html(
      <PaymentsPage
        search={search}
        rows={page}
        total={total}
        newer={newer}
        older={older}
        now={now()}
        problem={problems.length > 0 ? `Ignored: ${problems.join('; ')}.` : undefined}
      />,
    );
  });

  app.get('/payments/:provider/:id', requireSession, async (c) => {
    const provider = c.req.param('provider');
    const id = c.req.param('id');
    const payment = isProviderName(provider) && PAYMENT_ID.test(id) ? await getPaymentDetail(deps.db, provider, id) : undefined;
    if (!payment) return c.html(<PaymentNotFoundPage provider={isProviderName(provider) ? provider : 'such'} id={id} />, 404);
    const history = await getPaymentHistory(deps.db, payment);
    const redriven = positiveInt(c.req.query('redriven'));
    const reprocessed = positiveInt(c.req.query('reprocessed'));
    const synced = c.req.query('synced');
    const notice =
      redriven !== undefined
        ? { text: `Delivery #${redriven} is queued again.`, tone: 'ok' as const }
        : reprocessed !== undefined
          ? { text: `Receipt #${reprocessed} is pending again; the receipt worker retries it.`, tone: 'ok' as const }
          : synced !== undefined
            ? SYNC_NOTICES[synced as keyof typeof SYNC_NOTICES] ?? undefined
            : undefined;
    return c.html(<PaymentPage payment={payment} timeline={buildTimeline(history)} now={now()} notice={notice?.text} noticeTone={notice?.tone} />);
  });

  app.get('/receipts', requireSession, async (c) => {
    const q = c.req.query();
    const problems: string[] = [];
    const search: ReceiptSearch = {};
    if (q.provider) {
      if (isProviderName(q.provider)) search.provider = q.provider;
      else problems.push(`unknown provider; expected one of ${PROVIDERS.join(', ')}`);
    }
    if (q.state) {
      if ((RECEIPT_STATES as readonly string[]).includes(q.state)) search.state = q.state;
      else problems.push(`unknown state; expected one of ${RECEIPT_STATES.join(', ')}`);
    }
    const resource = q.resource?.trim();
    if (resource) {
      if (PAYMENT_ID.test(resource)) search.resource = resource;
      else problems.push('a resource id is 1-64 letters, digits, _ or -');
    }
    search.before = positiveInt(q.before);
    search.after = search.before === undefined ? positiveInt(q.after) : undefined;
    const rows = await listReceipts(deps.db, {
      provider: search.provider as ReceiptListProvider,
      state: search.state as ReceiptListState,
      resourceId: search.resource,
      beforeId: search.before,
      afterId: search.after,
      limit: RECEIPT_PAGE_SIZE + 1,
    });
    const { page, newer, older } = pageBothWays(rows, { before: search.before, after: search.after, size: RECEIPT_PAGE_SIZE });
    const reprocessed = positiveInt(q.reprocessed);
    const notFailed = positiveInt(q['not-failed']);
    const notice =
      reprocessed !== undefined
        ? { tone: 'ok' as const, text: `Receipt #${reprocessed} is pending again; the receipt worker retries it.` }
        : notFailed !== undefined
          ? { tone: 'warn' as const, text: `Receipt #${notFailed} is not failed (any more); nothing changed.` }
          : undefined;
    return c.html(
      <ReceiptsPage
        search={search}
        rows={page}
        newer={newer}
        older={older}
        now={now()}
        notice={notice}
        problem={problems.length > 0 ? `Ignored: ${problems.join('; ')}.` : undefined}
      />,
    );
  });

  app.get('/requests', requireSession, async (c) => {
    const provider = c.req.query('provider');
    const outcome = c.req.query('outcome')?.trim();
    const filter = {
      provider: provider && isProviderName(provider) ? provider : undefined,
      outcome: outcome && /^[a-z_]{1,40}$/.test(outcome) ? outcome : undefined,
    };
    const rows = await listWebhookRequests(deps.db, { ...filter, beforeId: positiveInt(c.req.query('before')), limit: RECEIPT_PAGE_SIZE + 1 });
    const page = rows.slice(0, RECEIPT_PAGE_SIZE);
    return c.html(<RequestsPage rows={page} {...filter} older={rows.length > RECEIPT_PAGE_SIZE ? (page.at(-1)?.id ?? null) : null} now={now()} />);
  });

  app.get('/audit', requireSession, async (c) => {
    const action = c.req.query('action');
    const filter = (AUDIT_ACTIONS as readonly string[]).includes(action ?? '') ? (action as AuditAction) : undefined;
    const rows = await listAuditEntries(deps.db, { beforeId: positiveInt(c.req.query('before')), limit: AUDIT_PAGE_SIZE + 1, action: filter });
    const page = rows.slice(0, AUDIT_PAGE_SIZE);
    return c.html(<AuditPage rows={page} action={filter} older={rows.length > AUDIT_PAGE_SIZE ? (page.at(-1)?.id ?? null) : null} now={now()} />);
  });

  app.get('/pollers', requireSession, async (c) => c.html(<PollersPage pollers={await listPollerHealth(deps.db)} now={now()} />));

  app.get('/accounts', requireSession, async (c) => {
    const q = c.req.query();
    const problems: string[] = [];
    const search: AccountSearch = {};
    if (q.provider) {
      if (isProviderName(q.provider)) search.provider = q.provider;
      else problems.push(`unknown provider; expected one of ${PROVIDERS.join(', ')}`);
    }
    if (q.status) {
      if ((ACCOUNT_STATUSES as readonly string[]).includes(q.status)) search.status = q.status;
      else problems.push(`unknown status; expected one of ${ACCOUNT_STATUSES.join(', ')}`);
    }
    const after = positiveInt(q.after);
    const origin = consoleOrigin(c);
    const [rows, summary] = await Promise.all([
      listAccountRows(deps.db, {
        provider: search.provider as ProviderName | undefined,
        status: search.status as AccountStatus | undefined,
        afterId: after,
        limit: ACCOUNT_PAGE_SIZE + 1,
      }),
      readAccountsReadiness(deps.db),
    ]);
    const page = rows.slice(0, ACCOUNT_PAGE_SIZE);
    // The env-configured accounts head the first page (read-only: no buttons).
    const envRows = after === undefined ? envAccountsJson(deps.env, origin).filter((a) => (!search.provider || a.provider === search.provider) && (!search.status || a.status === search.status)) : [];
    const checked = q.checked;
    const notice =
      checked !== undefined && q.account
        ? { tone: (checked === 'working' ? 'ok' : 'warn') as Tone, text: `${q.account}: ${ACCOUNT_CHECK_NOTICES[checked as AccountCheckOutcome] ?? 'checked.'}` }
        : q.disabled !== undefined && q.account
          ? { tone: 'warn' as const, text: `${q.account} is disabled: no polling, and its webhooks are answered as for an unknown account.` }
          : undefined;
    return c.html(
      <AccountsPage
        rows={[...envRows, ...page.map((row) => toAccountJson(row, origin))]}
        summary={summary}
        search={search}
        next={rows.length > ACCOUNT_PAGE_SIZE ? (page.at(-1)?.id ?? null) : null}
        intervalMs={deps.env.ACCOUNT_CHECK_INTERVAL_MS}
        now={now()}
        notice={notice}
        problem={problems.length > 0 ? `Ignored: ${problems.join('; ')}.` : undefined}
      />,
    );
  });

  app.get('/bank', requireSession, async (c) => c.html(<BankPage bank={await readBankReadiness(deps)} now={now()} />));

  app.get('/outbox', requireSession, async (c) => {
    const after = positiveInt(c.req.query('after'));
    const [summary, rows] = await Promise.all([
      getOutboxSummary(deps.db),
      listConsoleDeadLetters(deps.db, { afterId: after, limit: DEAD_LETTER_PAGE_SIZE + 1 }),
    ]);
    const deadLetters = rows.slice(0, DEAD_LETTER_PAGE_SIZE);
    const redriven = positiveInt(c.req.query('redriven'));
    const missing = positiveInt(c.req.query('not-dead'));
    const notice =
      redriven !== undefined
        ? { tone: 'ok' as const, text: `Delivery #${redriven} is queued again; the relay picks it up on its next pass.` }
        : missing !== undefined
          ? { tone: 'warn' as const, text: `Delivery #${missing} is not a dead letter (any more); nothing changed.` }
          : undefined;
    return c.html(
      <OutboxPage
        summary={summary}
        deadLetters={deadLetters}
        nextAfter={rows.length > DEAD_LETTER_PAGE_SIZE ? (deadLetters.at(-1)?.id ?? null) : null}
        now={now()}
        notice={notice}
      />,
    );
  });

  app.get('/deliveries', requireSession, async (c) => {
    const q = c.req.query();
    const { search, filter, problems } = deliverySearchOf(q);
    const before = positiveInt(q.before);
    const after = before === undefined ? positiveInt(q.after) : undefined;
    const [rows, total, deadMatching, sinks] = await Promise.all([
      listDeliveries(deps.db, { ...filter, beforeId: before, afterId: after, limit: DELIVERY_PAGE_SIZE + 1 }),
      countDeliveries(deps.db, filter),
      filter.state === undefined || filter.state === 'dead' ? countDeliveries(deps.db, { ...filter, state: 'dead' }) : Promise.resolve(0),
      listSinkStates(deps.db),
    ]);
    const { page, newer, older } = pageBothWays(rows, { before, after, size: DELIVERY_PAGE_SIZE });
    const redriven = q['bulk-redriven'];
    const notice =
      redriven !== undefined && /^\d{1,6}$/.test(redriven)
        ? { tone: 'ok' as const, text: `${redriven === '1' ? '1 dead letter is' : `${redriven} dead letters are`} queued again${q.more !== undefined ? '; more match: re-drive again for the rest' : ''}.` }
        : undefined;
    return c.html(
      <DeliveriesPage
        search={search}
        sinks={sinks}
        rows={page}
        total={total}
        deadMatching={deadMatching}
        newer={newer}
        older={older}
        now={now()}
        notice={notice}
        problem={problems.length > 0 ? `Ignored: ${problems.join('; ')}.` : undefined}
      />,
    );
  });

  app.get('/deliveries/:id', requireSession, async (c) => {
    const id = positiveInt(c.req.param('id'));
    const delivery = id === undefined ? null : await getDelivery(deps.db, id);
    if (!delivery) throw new AppError('delivery_not_found', 'No such delivery (retention may have deleted it).');
    const attempts = await listDeliveryAttempts(deps.db, delivery.id);
    const notice = c.req.query('redriven') !== undefined ? { tone: 'ok' as const, text: `Delivery #${delivery.id} is queued again.` } : c.req.query('test') !== undefined ? { tone: 'ok' as const, text: 'A gateway.test event is queued for this sink alone; reload to see the attempt.' } : undefined;
    return c.html(<DeliveryPage delivery={delivery} attempts={attempts} now={now()} notice={notice} />);
  });

  app.get('/sinks/:id', requireSession, async (c) => {
    const id = c.req.param('id');
    const [sink] = SINK_ID.test(id) ? await listSinkStates(deps.db, { id }) : [];
    if (!sink) throw new AppError('sink_not_found', 'No such sink.');
    const stats = await sinkAttemptStats(deps.db, sink.id, SINK_STATS_HOURS);
    const changed = c.req.query('changed');
    const notice = changed === 'enabled' ? { tone: 'ok' as const, text: 'Enabled: its waiting events are delivered in order.' } : changed === 'disabled' ? { tone: 'warn' as const, text: 'Disabled: its events wait until it is enabled again.' } : undefined;
    return c.html(<SinkPage sink={sink} stats={stats} now={now()} notice={notice} />);
  });

  // ---- actions ---------------------------------------------------------------------------

  app.post('/deliveries/redrive', requireSession, async (c) => {
    const form = await c.req.parseBody();
    const fields = Object.fromEntries(Object.entries(form).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
    const { search, filter, problems } = deliverySearchOf(fields);
    // A form that does not say what it means re-drives nothing.
    if (problems.length > 0) throw new AppError('bad_request', `Not re-driven: ${problems.join('; ')}.`);
    const result = await redriveDeadLetters(deps.db, { sinkId: filter.sinkId, type: filter.type, from: filter.from, to: filter.to });
    c.get('logger').info({ ...search, redriven: result.redriven, more: result.more }, 'console bulk re-drive');
    await audit(c, {
      action: 'delivery.bulk_redrive',
      target: 'deliveries',
      outcome: result.redriven > 0 ? 'applied' : 'no_change',
      detail: { filter: { sink: search.sink, type: search.type, from: search.from, to: search.to }, redriven: result.redriven, more: result.more },
    });
    const back = deliveriesHref({ sink: search.sink, type: search.type, from: search.from, to: search.to });
    return c.redirect(`${back}${back.includes('?') ? '&' : '?'}bulk-redriven=${result.redriven}${result.more ? '&more' : ''}`, 303);
  });

  const changeSink = (change: 'enable' | 'disable') => async (c: ConsoleContext) => {
    const id = c.req.param('id') ?? '';
    if (!SINK_ID.test(id)) throw new AppError('sink_not_found', 'No such sink.');
    const applied = change === 'enable' ? await enableSink(deps.db, id) : await disableSink(deps.db, id, 'disabled by an operator');
    await audit(c, { action: change === 'enable' ? 'sink.enable' : 'sink.disable', target: `sink:${id}`, outcome: applied ? 'applied' : 'no_change' });
    if (!applied) throw new AppError('sink_not_found', 'No such sink.');
    return c.redirect(`${sinkPath(id)}?changed=${change}d`, 303);
  };
  app.post('/sinks/:id/enable', requireSession, changeSink('enable'));
  app.post('/sinks/:id/disable', requireSession, changeSink('disable'));

  app.post('/sinks/:id/test', requireSession, async (c) => {
    const id = c.req.param('id');
    const sent = SINK_ID.test(id) ? await sendTestEvent(deps.db, { sinkId: id, requestedBy: consoleActor(getCookie(c, SESSION_COOKIE) ?? '') }) : null;
    await audit(c, { action: 'sink.test', target: `sink:${id}`, outcome: sent ? 'applied' : 'no_change', detail: sent ? { ...sent } : undefined });
    if (!sent) throw new AppError('sink_not_found', 'No such sink.');
    return c.redirect(`${deliveryPath(sent.deliveryId)}?test`, 303);
  });


  app.post('/dead-letters/:id/redrive', requireSession, async (c) => {
    const id = positiveInt(c.req.param('id'));
    if (id === undefined) throw new AppError('bad_request', 'a delivery id is a positive number');
    const form = await c.req.parseBody();
    const redriven = await redriveFromConsole(deps.db, id);
    c.get('logger').info({ deliveryId: id, outcome: redriven ? 'redriven' : 'not_dead' }, 'console re-drive');
    await audit(c, { action: 'delivery.redrive', target: `delivery:${id}`, outcome: redriven ? 'applied' : 'no_change' });
    // Back to the page the button was on (a console path only), saying what happened.
    const back = safeNextPath(typeof form.back === 'string' ? form.back.split('?')[0] : undefined);
    const target = (back.startsWith(`${CONSOLE_PATH}/payments/`) || back.startsWith(`${CONSOLE_PATH}/deliveries/`)) && redriven ? back : `${CONSOLE_PATH}/outbox`;
    return c.redirect(`${target}?${redriven ? 'redriven' : 'not-dead'}=${id}`, 303);
  });

  app.post('/receipts/:id/reprocess', requireSession, async (c) => {
    const id = positiveInt(c.req.param('id'));
    if (id === undefined) throw new AppError('bad_request', 'a receipt id is a positive number');
    const form = await c.req.parseBody();
    const reopened = await reopenFailedReceipt(deps.db, id);
    c.get('logger').info({ receiptId: id, outcome: reopened ? 'reprocessed' : 'not_failed' }, 'console re-process');
    await audit(c, { action: 'receipt.reprocess', target: `receipt:${id}`, outcome: reopened ? 'applied' : 'no_change' });
    const back = safeNextPath(typeof form.back === 'string' ? form.back : undefined);
    const [path, search] = back.split('?');
    const params = new URLSearchParams(search);
    params.set(reopened ? 'reprocessed' : 'not-failed', String(id));
    return c.redirect(`${path}?${params.toString()}`, 303);
  });

  /** An account named in a console path, or a console error page. */
  const accountOf = (c: ConsoleContext): { provider: ProviderName; name: string } => {
    const provider = c.req.param('provider') ?? '';
    const name = c.req.param('name') ?? '';
    if (!isProviderName(provider) || !ACCOUNT_NAME.test(name)) throw new AppError('not_found', 'No such account.');
    return { provider, name };
  };
  const backToAccount = (provider: string, name: string, result: string) =>
    `${CONSOLE_PATH}/accounts?${new URLSearchParams({ account: `${provider}/${name}`, ...(result === 'disabled' ? { disabled: '' } : { checked: result }) }).toString()}`;

  app.post('/accounts/:provider/:name/check', requireSession, async (c) => {
    const { provider, name } = accountOf(c);
    const target = `account:${provider}/${name}`;
    let result: Awaited<ReturnType<typeof checkAccountNow>>;
    try {
      result = await checkAccountNow(deps, provider, name);
    } catch (error) {
      const refusal = accountRefusal(error);
      await audit(c, { action: 'account.check', target, outcome: refusal ? 'refused' : 'failed', detail: { error: errorMessage(error).slice(0, 300) } });
      throw refusal ?? error;
    }
    c.get('logger').info({ provider, account: name, outcome: result.outcome }, 'console account check');
    await audit(c, { action: 'account.check', target, outcome: 'applied', detail: { result: result.outcome, status: result.account.status } });
    return c.redirect(backToAccount(provider, name, result.outcome), 303);
  });

  app.post('/accounts/:provider/:name/disable', requireSession, async (c) => {
    const { provider, name } = accountOf(c);
    const target = `account:${provider}/${name}`;
    const before = await getAccount(deps.db, provider, name);
    try {
      await disableAccount({ db: deps.db, env: deps.env, secrets: null }, provider, name);
    } catch (error) {
      const refusal = accountRefusal(error);
      await audit(c, { action: 'account.disable', target, outcome: refusal ? 'refused' : 'failed', detail: { error: errorMessage(error).slice(0, 300) } });
      throw refusal ?? error;
    }
    c.get('logger').info({ provider, account: name, outcome: 'disabled' }, 'console account disable');
    await audit(c, { action: 'account.disable', target, outcome: before?.status === 'disabled' ? 'no_change' : 'applied' });
    return c.redirect(backToAccount(provider, name, 'disabled'), 303);
  });

  app.post('/payments/:provider/:id/sync', requireSession, async (c) => {
    const provider = c.req.param('provider');
    const id = c.req.param('id');
    const payment = isProviderName(provider) && PAYMENT_ID.test(id) ? await getPaymentDetail(deps.db, provider, id) : undefined;
    if (!payment || !isProviderName(provider)) throw new AppError('payment_not_found', 'no such payment');
    const target = `payment:${provider}/${id}`;
    let outcome: keyof typeof SYNC_NOTICES;
    try {
      const result = await syncPayment(deps, { provider, account: payment.account, providerPaymentId: id, source: 'sync', lockWaitMs: CONSOLE_SYNC_LOCK_WAIT_MS });
      outcome = result.outcome;
    } catch (error) {
      outcome = 'failed';
      c.get('logger').warn({ provider, paymentId: id, err: errorMessage(error) }, 'console sync failed');
      await audit(c, { action: 'payment.sync', target, outcome: 'failed', detail: { error: (errorMessage(error)).slice(0, 300) } });
      return c.redirect(`${paymentPathOf(provider, id)}?synced=${outcome}`, 303);
    }
    await audit(c, { action: 'payment.sync', target, outcome: outcome === 'changed' ? 'applied' : 'no_change', detail: { result: outcome } });
    return c.redirect(`${paymentPathOf(provider, id)}?synced=${outcome}`, 303);
  });

  return app;
}

/**
 * A newest-first page fetched with one row past it (`size + 1` rows), by `before` (older
 * ids) or `after` (newer ids): the extra row says whether there is more that way, the
 * last (oldest) row paging back, the first (newest) paging forward. Returns the page and
 * the ids the "Newer" and "Older" links start from (null: no such link).
 */
export function pageBothWays<T extends { id: number }>(rows: T[], at: { before?: number; after?: number; size: number }): { page: T[]; newer: number | null; older: number | null } {
  const more = rows.length > at.size;
  const forward = at.after !== undefined;
  const page = forward ? rows.slice(more ? 1 : 0) : rows.slice(0, at.size);
  const paged = at.before !== undefined || forward;
  const newer = (forward ? more : paged) && page[0] ? page[0].id : null;
  const older = (forward || more) && page.at(-1) ? page.at(-1)!.id : null;
  return { page, newer, older };
}

const ACCOUNT = /^[A-Za-z0-9_.-]{1,64}$/;
/** A stored account's name (the /v1/accounts rule). */
const ACCOUNT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ACCOUNT_PAGE_SIZE = 100;
const ACCOUNT_CHECK_NOTICES: Record<AccountCheckOutcome, string> = {
  working: 'the provider accepts the credentials.',
  refused: 'the provider REFUSES the credentials: the account is broken until new ones are given.',
  identity_changed: 'the credentials now belong to another provider identity: the account is broken.',
  outage: 'the provider could not answer (an outage, not a broken account); see the last error.',
  unreadable: 'the stored credentials cannot be opened with the configured keys; see the last error.',
};

/** An account verb's refusal as the console's error page (404, 409, 503), or null for anything else. */
function accountRefusal(error: unknown): AppError | null {
  if (!(error instanceof AccountError)) return null;
  switch (error.code) {
    case 'not_found':
      return new AppError('not_found', 'No such account.');
    case 'read_only':
      return new AppError('account_read_only', error.message);
    case 'secrets_not_configured':
      return new AppError('secrets_not_configured', error.message);
    default:
      return new AppError('bad_request', error.message);
  }
}

/** The address the operator reached the console at (a TLS-terminating proxy's forwarded host and scheme honoured), for webhook URLs. */
function consoleOrigin(c: ConsoleContext): string {
  const url = new URL(c.req.url);
  const host = c.req.header('x-forwarded-host')?.split(',')[0]?.trim() || url.host;
  return `${isHttps(c) ? 'https' : 'http'}://${host}`;
}
const METHOD = /^[a-z0-9_]{1,40}$/;
const META_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const AMOUNT = /^\d{1,12}(\.\d{1,3})?$/;

/** An amount as typed ("49.95", "50") in minor units of the currency (two decimals when none is given). */
function amountToMinor(value: string, currency: string | undefined): number | undefined {
  if (!AMOUNT.test(value)) return undefined;
  const exponent = currencyExponent(currency ?? 'EUR');
  const [whole, fraction = ''] = value.split('.');
  if (fraction.length > exponent) return undefined;
  return Number(whole) * 10 ** exponent + Number(fraction.padEnd(exponent, '0') || '0');
}

/** The payments filter from the search form's query: what the page echoes, what the query takes, what was not understood. */
function paymentSearchOf(q: Record<string, string | undefined>): { search: PaymentFormValues; filter: PaymentFilter; problems: string[] } {
  const search: PaymentFormValues = {};
  const filter: PaymentFilter = {};
  const problems: string[] = [];
  const text = (key: keyof PaymentFormValues) => q[key]?.trim() || undefined;
  const provider = text('provider');
  if (provider) {
    if (isProviderName(provider)) search.provider = filter.provider = provider;
    else problems.push(`unknown provider; expected one of ${PROVIDERS.join(', ')}`);
  }
  const status = text('status');
  if (status) {
    if ((PAYMENT_STATUSES as readonly string[]).includes(status)) search.status = filter.status = status;
    else problems.push(`unknown status; expected one of ${PAYMENT_STATUSES.join(', ')}`);
  }
  const id = text('id');
  if (id) {
    if (PAYMENT_ID.test(id)) search.id = filter.id = id;
    else problems.push('a payment id is 1-64 letters, digits, _ or -');
  }
  const account = text('account');
  if (account) {
    if (ACCOUNT.test(account)) search.account = filter.account = account;
    else problems.push('an account is 1-64 letters, digits, _, . or -');
  }
  const method = text('method');
  if (method) {
    if (METHOD.test(method)) search.method = filter.method = method;
    else problems.push('a method looks like ideal, creditcard or sepa_core');
  }
  const currency = text('currency')?.toUpperCase();
  if (currency) {
    if (/^[A-Z]{3}$/.test(currency)) search.currency = filter.currency = currency;
    else problems.push('a currency is three letters (EUR)');
  }
  for (const [key, bound] of [['min', 'minMinor'], ['max', 'maxMinor']] as const) {
    const value = text(key);
    if (!value) continue;
    const minor = amountToMinor(value, filter.currency);
    if (minor === undefined) problems.push(`${key} is an amount such as 49.95`);
    else {
      search[key] = value;
      filter[bound] = minor;
    }
  }
  for (const key of ['from', 'to'] as const) {
    const value = text(key);
    if (!value) continue;
    const day = DAY.test(value) ? new Date(`${value}T00:00:00Z`) : null;
    if (!day || Number.isNaN(day.getTime())) problems.push(`${key} is a date, YYYY-MM-DD`);
    else {
      search[key] = value;
      filter[key] = key === 'to' ? new Date(day.getTime() + 86_400_000) : day;
    }
  }
  const meta = text('meta');
  if (meta) {
    const at = meta.indexOf('=');
    const key = at === -1 ? meta : meta.slice(0, at).trim();
    const value = at === -1 ? undefined : meta.slice(at + 1).trim();
    if (META_KEY.test(key) && (value === undefined || value.length <= 200)) {
      search.meta = meta;
      filter.metaKey = key;
      filter.metaValue = value;
    } else problems.push('metadata is a key (orderId) or key=value, the key 1-64 letters, digits, _, . or -');
  }
  return { search, filter, problems };
}

const DELIVERY_PAGE_SIZE = 50;
const SINK_STATS_HOURS = 24;
const SINK_ID = /^snk_[0-9a-f]{16}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const EVENT_TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$/;

/**
 * The deliveries filter from a query or a form: what the page echoes back, what the
 * queries take (the "to" day is inclusive, so it ends at the next midnight UTC), and
 * what was not understood.
 */
function deliverySearchOf(q: Record<string, string | undefined>): { search: DeliverySearch; filter: DeliveryFilter; problems: string[] } {
  const search: DeliverySearch = {};
  const filter: DeliveryFilter = {};
  const problems: string[] = [];
  if (q.sink) {
    if (SINK_ID.test(q.sink)) search.sink = filter.sinkId = q.sink;
    else problems.push('a sink id looks like snk_<16 hex digits>');
  }
  if (q.state) {
    if ((DELIVERY_STATES as readonly string[]).includes(q.state)) search.state = filter.state = q.state as DeliveryState;
    else problems.push(`unknown state; expected one of ${DELIVERY_STATES.join(', ')}`);
  }
  const type = q.type?.trim();
  if (type) {
    if (type.length <= 100 && EVENT_TYPE.test(type)) search.type = filter.type = type;
    else problems.push('an event type looks like payment.paid, or a prefix like payment.');
  }
  for (const key of ['from', 'to'] as const) {
    const value = q[key];
    if (!value) continue;
    const day = DAY.test(value) ? new Date(`${value}T00:00:00Z`) : null;
    if (!day || Number.isNaN(day.getTime())) {
      problems.push(`${key} is a date, YYYY-MM-DD`);
      continue;
    }
    search[key] = value;
    filter[key] = key === 'to' ? new Date(day.getTime() + 86_400_000) : day;
  }
  return { search, filter, problems };
}

type ReceiptListProvider = Parameters<typeof listReceipts>[1]['provider'];
type ReceiptListState = Parameters<typeof listReceipts>[1]['state'];
const RECEIPT_PAGE_SIZE = 50;
const AUDIT_PAGE_SIZE = 50;
/** An operator clicking "Sync now" waits a little longer for a busy payment than a webhook does. */
const CONSOLE_SYNC_LOCK_WAIT_MS = 5000;
const paymentPathOf = (provider: string, id: string) => `${CONSOLE_PATH}/payments/${encodeURIComponent(provider)}/${encodeURIComponent(id)}`;
const SYNC_NOTICES = {
  changed: { text: 'Synced: the provider had news, and the payment is updated.', tone: 'ok' as const },
  unchanged: { text: 'Synced: the provider says nothing changed.', tone: 'ok' as const },
  not_found: { text: 'The provider does not know this payment (any more).', tone: 'warn' as const },
  failed: { text: 'The sync failed (the provider or the lock); the payment stays due for the poller. The gateway log has the details.', tone: 'warn' as const },
};
