/**
 * The operator console under /console: server-rendered pages (Hono JSX, no script) that
 * show why a payment is in the state it is in. Signed in with ADMIN_TOKEN; see
 * session.ts for the cookie and the CSRF check.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Deps } from '../deps.js';
import { AppError } from '../http/errors.js';
import type { AppEnv } from '../http/middleware.js';
import { PAYMENT_STATUSES, PROVIDERS, isProviderName } from '../providers/types.js';
import { CONSOLE_CSS_HASH } from './layout.js';
import { readBankReadiness } from '../bank/readiness.js';
import { BankPage } from './bank-page.js';
import { OutboxPage, OverviewPage, PollersPage } from './operations-pages.js';
import { PaymentNotFoundPage, PaymentPage, PaymentsPage } from './payment-pages.js';
import {
  getOutboxSummary,
  getPaymentDetail,
  getPaymentHistory,
  getWebhookVolume,
  listConsoleDeadLetters,
  listPollerHealth,
  redriveFromConsole,
  searchPayments,
  type PaymentSearch,
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
const VOLUME_MINUTES = 60;
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

export function consoleRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  const token = deps.env.ADMIN_TOKEN;
  const now = () => deps.clock.now();
  const signedIn = (c: ConsoleContext) => Boolean(token) && verifySessionValue(getCookie(c, SESSION_COOKIE), token!, now());

  app.use('*', async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Frame-Options', 'DENY');
    c.header('X-Content-Type-Options', 'nosniff');
    // Not no-referrer: under it browsers send `Origin: null` on form POSTs, which the CSRF check refuses.
    c.header('Referrer-Policy', 'same-origin');
    c.header('Cache-Control', 'no-store');
  });
  app.use('*', bodyLimit({ maxSize: FORM_BODY_LIMIT, onError: () => { throw new AppError(413, 'payload_too_large', 'form too large'); } }));

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
      throw new AppError(403, 'cross_origin', 'This form was not sent from the console itself (Origin header missing or foreign).');
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
      c.get('logger').warn({ outcome: 'bad_token' }, 'console sign-in refused');
      return c.html(<SignInPage next={next} error="That is not the admin token." />, 401);
    }
    setCookie(c, SESSION_COOKIE, createSessionValue(token, now()), {
      path: CONSOLE_PATH,
      httpOnly: true,
      sameSite: 'Strict',
      secure: isHttps(c),
      maxAge: SESSION_TTL_SECONDS,
    });
    c.get('logger').info({ outcome: 'signed_in' }, 'console sign-in');
    return c.redirect(next, 303);
  });

  app.post('/sign-out', (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH, httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
    return c.redirect(`${CONSOLE_PATH}/sign-in?signed-out`, 303);
  });

  // ---- pages ---------------------------------------------------------------------------

  app.get('/', requireSession, async (c) => {
    const [volume, outbox, pollers] = await Promise.all([
      getWebhookVolume(deps.db, { minutes: VOLUME_MINUTES }),
      getOutboxSummary(deps.db),
      listPollerHealth(deps.db),
    ]);
    return c.html(<OverviewPage volume={volume} outbox={outbox} pollers={pollers} />);
  });

  app.get('/payments', requireSession, async (c) => {
    const query = c.req.query();
    const problems: string[] = [];
    const search: PaymentSearch = { limit: PAGE_SIZE + 1 };
    if (query.provider) {
      if ((PROVIDERS as readonly string[]).includes(query.provider)) search.provider = query.provider;
      else problems.push(`unknown provider; expected one of ${PROVIDERS.join(', ')}`);
    }
    if (query.status) {
      if ((PAYMENT_STATUSES as readonly string[]).includes(query.status)) search.status = query.status;
      else problems.push(`unknown status; expected one of ${PAYMENT_STATUSES.join(', ')}`);
    }
    const id = query.id?.trim();
    if (id) {
      if (PAYMENT_ID.test(id)) search.id = id;
      else problems.push('a payment id is 1-64 letters, digits, _ or -');
    }
    search.beforeId = positiveInt(query.before);
    const rows = await searchPayments(deps.db, search);
    const page = rows.slice(0, PAGE_SIZE);
    return c.html(
      <PaymentsPage
        search={{ ...search, limit: PAGE_SIZE }}
        rows={page}
        hasMore={rows.length > PAGE_SIZE}
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
    return c.html(
      <PaymentPage
        payment={payment}
        timeline={buildTimeline(history)}
        now={now()}
        notice={redriven !== undefined ? `Delivery #${redriven} is queued again.` : undefined}
      />,
    );
  });

  app.get('/pollers', requireSession, async (c) => c.html(<PollersPage pollers={await listPollerHealth(deps.db)} now={now()} />));

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

  // ---- actions ---------------------------------------------------------------------------

  app.post('/dead-letters/:id/redrive', requireSession, async (c) => {
    const id = positiveInt(c.req.param('id'));
    if (id === undefined) throw new AppError(400, 'bad_request', 'a delivery id is a positive number');
    const form = await c.req.parseBody();
    const redriven = await redriveFromConsole(deps.db, id);
    c.get('logger').info({ deliveryId: id, outcome: redriven ? 'redriven' : 'not_dead' }, 'console re-drive');
    // Back to the page the button was on (a console path only), saying what happened.
    const back = safeNextPath(typeof form.back === 'string' ? form.back.split('?')[0] : undefined);
    const target = back.startsWith(`${CONSOLE_PATH}/payments/`) && redriven ? back : `${CONSOLE_PATH}/outbox`;
    return c.redirect(`${target}?${redriven ? 'redriven' : 'not-dead'}=${id}`, 303);
  });

  return app;
}
