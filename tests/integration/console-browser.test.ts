/**
 * The operator console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core). The gateway runs in process on a free port against real Postgres and
 * Redis; its data comes from a real race: concurrent return-page syncs and Mollie classic
 * webhooks against the Mollie sandbox, then the relay with one accepting and one failing
 * sink. Screenshots land in test-artifacts/console/.
 */
import { serve, type ServerType } from '@hono/node-server';
import { sql } from 'drizzle-orm';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { pollerHealth } from '../../src/db/schema/poller-health.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { acceptingSink, deadLetterIds, deliveryState, failingSink, relayUntilSettled } from '../helpers/console-fixtures.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { freePort } from '../helpers/processes.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts/console');
/** Concurrent return-page syncs per round, next to one webhook. */
const SYNCS_PER_ROUND = 12;

let database: TestDatabase;
let sandbox: MollieSandbox;
let deps: Deps;
let server: ServerType;
let baseUrl: string;
let userDataDir: string;
let context: BrowserContext;
let page: Page;
let paymentId: string;
const browserProblems: string[] = [];

async function race(): Promise<void> {
  const results = await Promise.all([
    ...Array.from({ length: SYNCS_PER_ROUND }, () =>
      fetch(`${baseUrl}/v1/payments/mollie/${paymentId}/sync`, { method: 'POST', headers: auth }).then((res) => res.status),
    ),
    // One attempt with Mollie's own 15 s timeout: exactly one receipt per round.
    sandbox.notify(paymentId, { url: `${baseUrl}/webhooks/mollie`, schedule: [0], timeoutMs: 15_000 }).then((delivery) => (delivery.delivered ? 200 : 0)),
  ]);
  expect(results.every((status) => status === 200), `statuses (0: the webhook was not answered 200): ${results.join(',')}`).toBe(true);
}

const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = await startMollieSandbox();
  const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url, retryConfig: { strategy: 'none' } });
  deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL }, { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('console-browser') });
  const port = await freePort();
  server = serve({ fetch: createApp(deps).fetch, port, hostname: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${baseUrl}/healthz`)).ok, { what: 'the gateway to listen' });

  // The race: webhook and return page at once, while the payment is open and again once paid.
  paymentId = sandbox.createPayment({ status: 'open', amount: { currency: 'EUR', value: '49.95' }, description: 'Order 1234' }).id;
  await race();
  sandbox.setStatus(paymentId, 'paid');
  await race();
  const [counts] = await deps.db.execute<{ payments: number; transitions: number; events: number; receipts: number }>(sql`
    select (select count(*) from payments where provider_payment_id = ${paymentId})::int as payments,
           (select count(*) from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id = ${paymentId})::int as transitions,
           (select count(*) from outbox where provider_payment_id = ${paymentId})::int as events,
           (select count(*) from webhook_receipts where resource_id = ${paymentId})::int as receipts`);
  expect(counts).toEqual({ payments: 1, transitions: 2, events: 2, receipts: 2 });

  await relayUntilSettled(deps, [acceptingSink(), failingSink()]);
  const now = Date.now();
  await deps.db.insert(pollerHealth).values([
    { provider: 'mollie', account: 'default', state: 'healthy', lastSuccessAt: new Date(now - 30_000), stateChangedAt: new Date(now - 3_600_000) },
    {
      provider: 'gocardless',
      account: 'default',
      state: 'degraded',
      consecutiveFailures: 4,
      lastSuccessAt: new Date(now - 1_800_000),
      lastFailureAt: new Date(now - 20_000),
      lastError: 'GoCardless answered 503 Service Unavailable',
      stateChangedAt: new Date(now - 600_000),
    },
  ]);

  await mkdir(ARTIFACTS, { recursive: true });
  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'console-chromium-'));
  // Playwright passes --user-data-dir itself (the fresh directory above).
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  // A CSP refusal (a style without its hash, a script) or a page error shows up here.
  page.on('console', (message) => {
    if (message.type() === 'error') browserProblems.push(message.text());
  });
  page.on('pageerror', (error) => browserProblems.push(error.message));
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await deps?.close();
  await sandbox?.close();
  await database?.drop();
});

describe('the operator console in Chromium', () => {
  it('signs in (after a wrong token), finds the raced payment, explains it, shows pollers, and re-drives a dead letter', async () => {
    // What the browser was looking at when an assertion failed.
    onTestFailed(async () => {
      await shot('failure').catch(() => {});
      await writeFile(path.join(ARTIFACTS, 'failure.html'), `<!-- ${page.url()} -->\n${await page.content().catch(() => '')}`);
    });
    // Not signed in: sent to the sign-in form.
    await page.goto(`${baseUrl}/console`);
    await page.waitForURL(/\/console\/sign-in\?next=%2Fconsole$/);

    await page.fill('input[name=token]', 'not-the-admin-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('[data-testid=sign-in-error]')).toBe('That is not the admin token.');
    await shot('sign-in-error');

    await page.fill('input[name=token]', TEST_ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${baseUrl}/console`);
    const cookies = await context.cookies(`${baseUrl}/console`);
    const session = cookies.find((cookie) => cookie.name === 'gw_console');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
    expect(session!.value).not.toContain(TEST_ADMIN_TOKEN);
    // The race's two webhooks are on the chart.
    await page.waitForSelector('[data-testid=volume-chart]');
    expect(await page.textContent('[data-testid=stat-webhooks]')).toBe('2');
    expect(await page.textContent('[data-testid=stat-dead-letters]')).toBe('2');
    await shot('overview');

    // Payments: search by id.
    await page.click('header nav >> text=Payments');
    await page.waitForURL(`${baseUrl}/console/payments`);
    await page.fill('input[name=id]', paymentId);
    await page.selectOption('select[name=provider]', 'mollie');
    await page.click('form.search button[type=submit]');
    await page.waitForURL(/\/console\/payments\?provider=mollie&status=&id=/);
    const rows = page.locator('[data-testid=payments-table] tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('paid');
    await shot('payments');

    // The timeline.
    await page.click(`a:text-is("${paymentId}")`);
    await page.waitForURL(`${baseUrl}/console/payments/mollie/${paymentId}`);
    const timeline = page.locator('[data-testid=timeline] tbody tr');
    const kinds = await timeline.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-kind')));
    expect(kinds.filter((kind) => kind === 'receipt')).toHaveLength(2);
    expect(kinds.filter((kind) => kind === 'transition')).toHaveLength(2);
    expect(kinds.filter((kind) => kind === 'event')).toHaveLength(2);
    expect(kinds.filter((kind) => kind === 'delivery')).toHaveLength(4);
    // Chronological: the first transition (v1, open) comes before the event it produced.
    expect(kinds.indexOf('transition')).toBeLessThan(kinds.indexOf('event'));
    const transitions = await page.locator('tr[data-kind=transition]').allTextContents();
    expect(transitions[0]).toMatch(/v1\s*new\s*→\s*open/);
    expect(transitions[1]).toMatch(/v2\s*open\s*→\s*paid/);
    expect(transitions.join(' ')).toMatch(/fence \d+/);
    const events = await page.locator('tr[data-kind=event]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-type')));
    expect(events).toEqual(['payment.open', 'payment.paid']);
    expect(await page.locator('tr[data-kind=delivery][data-state=dead]').count()).toBe(2);
    await shot('timeline');

    // Poller health.
    await page.click('header nav >> text=Pollers');
    await page.waitForURL(`${baseUrl}/console/pollers`);
    expect(await page.textContent('tr[data-provider=gocardless][data-account=default]')).toMatch(/degraded.*4.*503 Service Unavailable/s);
    expect(await page.textContent('tr[data-provider=mollie][data-account=default]')).toContain('healthy');
    await shot('pollers');

    // Dead letters: re-drive one with a click; the database says it is queued again.
    await page.click('header nav >> text=Outbox');
    await page.waitForURL(`${baseUrl}/console/outbox`);
    const dead = await deadLetterIds(deps, paymentId);
    expect(dead).toHaveLength(2);
    await shot('outbox');
    const target = dead[0]!;
    await page.click(`[data-testid=redrive-${target}]`);
    await page.waitForURL(`${baseUrl}/console/outbox?redriven=${target}`);
    expect(await page.textContent('[role=status]')).toContain(`Delivery #${target} is queued again`);
    expect(await deliveryState(deps, target)).toEqual({ state: 'pending', attempts: 0 });
    expect(await deliveryState(deps, dead[1]!)).toMatchObject({ state: 'dead' });
    expect(await page.locator(`[data-testid=redrive-${target}]`).count()).toBe(0);
    await shot('outbox-after-redrive');

    // Sign out: the pages are closed again.
    await page.click('header button:text-is("Sign out")');
    await page.waitForURL(`${baseUrl}/console/sign-in?signed-out`);
    await page.goto(`${baseUrl}/console/payments`);
    await page.waitForURL(/\/console\/sign-in\?next=%2Fconsole%2Fpayments$/);

    // The wrong token's 401 is the only failed load; no CSP refusal, no script error.
    expect(browserProblems.filter((problem) => !/status of 401/.test(problem))).toEqual([]);
  }, 120_000);

  it('fits 1280x800 and 390x844, light and dark: no table overflows the viewport, no header breaks mid-word', async () => {
    onTestFailed(async () => {
      await shot('layout-failure').catch(() => {});
    });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${baseUrl}/console/sign-in`);
    await page.fill('input[name=token]', TEST_ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${baseUrl}/console`);
    const [delivery] = await deps.db.execute<{ id: number; sink_id: string }>(sql`select id, sink_id from event_deliveries order by id limit 1`);
    const pages: Array<[string, string]> = [
      ['overview', '/console?range=6h'],
      ['payments', '/console/payments?provider=mollie&currency=EUR&min=10&max=100'],
      ['payment', `/console/payments/mollie/${paymentId}`],
      ['receipts', '/console/receipts'],
      ['pollers', '/console/pollers'],
      ['accounts', '/console/accounts'],
      ['outbox', '/console/outbox'],
      ['deliveries', '/console/deliveries'],
      ['delivery', `/console/deliveries/${delivery!.id}`],
      ['sink', `/console/sinks/${delivery!.sink_id}`],
      ['audit', '/console/audit'],
    ];
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [width, height] of [[1280, 800], [390, 844]] as const) {
        await page.setViewportSize({ width, height });
        for (const [name, url] of pages) {
          await page.goto(`${baseUrl}${url}`);
          await page.waitForSelector('main h1');
          await shot(`${name}-${width}x${height}-${scheme}`);
          const layout = await page.evaluate(() => {
            const viewport = document.documentElement.clientWidth;
            // A table may be wider than the screen only inside its own scrolling box.
            const overflowing = Array.from(document.querySelectorAll('table'))
              .filter((table) => table.getBoundingClientRect().right > viewport + 1)
              .map((table) => table.getAttribute('data-testid') ?? table.className ?? 'table');
            // A word split over two lines has more than one client rect.
            const broken: string[] = [];
            for (const label of Array.from(document.querySelectorAll('th, .stat .label, .kind'))) {
              const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
              for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                for (const match of (node.textContent ?? '').matchAll(/\S+/g)) {
                  const range = document.createRange();
                  range.setStart(node, match.index!);
                  range.setEnd(node, match.index! + match[0].length);
                  const lines = new Set(Array.from(range.getClientRects()).map((rect) => Math.round(rect.top)));
                  if (lines.size > 1) broken.push(match[0]);
                }
              }
            }
            return { overflowing, broken, pageWidth: document.documentElement.scrollWidth, viewport, background: getComputedStyle(document.body).backgroundColor };
          });
          const where = `${name} at ${width}px, ${scheme}`;
          expect(layout.overflowing, `${where}: tables past the viewport`).toEqual([]);
          expect(layout.broken, `${where}: labels broken mid-word`).toEqual([]);
          expect(layout.pageWidth, `${where}: the page scrolls sideways`).toBeLessThanOrEqual(layout.viewport + 1);
          expect(layout.background, where).toBe(scheme === 'dark' ? 'rgb(18, 22, 29)' : 'rgb(246, 248, 251)');
        }
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    // The overview's cards are links to their pages.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${baseUrl}/console`);
    await page.click('a.card.link:has([data-testid=stat-dead-letters])');
    await page.waitForURL(`${baseUrl}/console/deliveries?state=dead`);
    expect(browserProblems.filter((problem) => !/status of 401/.test(problem))).toEqual([]);
  }, 180_000);
});
