/**
 * The app's real route table, read from Hono's own list: what the 405 answer's `Allow`
 * comes from, and what the test that every route is documented walks.
 */
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

/** What is read of a Hono app: its route list. */
export interface RoutedApp {
  routes: ReadonlyArray<{ method: string; path: string }>;
}

export interface RouteEntry {
  method: string;
  /** Hono's syntax: /v1/payments/:provider/:id */
  path: string;
}

/** Every method+path an app answers, without middleware (registered for ALL methods). */
export function appRoutes(app: RoutedApp): RouteEntry[] {
  const seen = new Map<string, RouteEntry>();
  for (const route of app.routes) {
    if (route.method === 'ALL') continue;
    seen.set(`${route.method} ${route.path}`, { method: route.method, path: route.path });
  }
  return [...seen.values()];
}

function compile(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}/?$`);
}

export interface RouteTable {
  /** The methods a path has (HEAD with GET), or none when no route has this path. */
  allowedMethods(path: string): string[];
}

/**
 * The app's route table, made once by createApp. Its patterns are compiled on the first
 * question, when every route has been registered (the 405 handler is set up before the routes).
 */
export function createRouteTable(app: RoutedApp): RouteTable {
  let table: Array<{ method: string; pattern: RegExp }> | undefined;
  return {
    allowedMethods(path) {
      table ??= appRoutes(app).map((route) => ({ method: route.method, pattern: compile(route.path) }));
      const methods = new Set(table.filter((entry) => entry.pattern.test(path)).map((entry) => entry.method));
      if (methods.has('GET')) methods.add('HEAD');
      return [...methods].sort();
    },
  };
}

/**
 * The operator console's pages are plain Hono JSX routes (HTML forms for people, not an
 * API to build on); they are listed in the document so that it names every route.
 */
const CONSOLE_PAGES: Array<{ method: 'get' | 'post'; path: string; summary: string }> = [
  { method: 'get', path: '/console', summary: 'Overview' },
  { method: 'get', path: '/console/sign-in', summary: 'Sign-in form' },
  { method: 'post', path: '/console/sign-in', summary: 'Sign in with ADMIN_TOKEN (sets the session cookie)' },
  { method: 'post', path: '/console/sign-out', summary: 'Sign out' },
  { method: 'get', path: '/console/payments', summary: 'Payment search' },
  { method: 'get', path: '/console/payments/{provider}/{id}', summary: 'One payment: state, history, receipts, deliveries' },
  { method: 'get', path: '/console/pollers', summary: 'Poller health per provider account' },
  { method: 'get', path: '/console/outbox', summary: 'Outbox and dead letters' },
  { method: 'post', path: '/console/dead-letters/{id}/redrive', summary: 'Re-drive a dead letter (form)' },
  { method: 'get', path: '/console/receipts', summary: 'Webhook receipts by provider, state and resource id' },
  { method: 'post', path: '/console/receipts/{id}/reprocess', summary: 'Re-process a failed receipt (form)' },
  { method: 'post', path: '/console/payments/{provider}/{id}/sync', summary: 'Sync a payment now (form)' },
  { method: 'get', path: '/console/requests', summary: 'The inbound log: every request to a webhook route' },
  { method: 'get', path: '/console/audit', summary: 'The audit trail of operator actions' },
  { method: 'get', path: '/console/accounts', summary: 'Merchant accounts: status, last check, last error, broken since, webhook URL' },
  { method: 'post', path: '/console/accounts/{provider}/{name}/check', summary: "Check an account's credentials with its provider now (form)" },
  { method: 'post', path: '/console/accounts/{provider}/{name}/disable', summary: 'Disable an account (form)' },
  { method: 'get', path: '/console/bank', summary: 'Bank feeds: connections, accounts, syncs, calls left, broken and expiring ones' },
  { method: 'get', path: '/console/deliveries', summary: 'Deliveries by sink, state, event type and date, with a bulk re-drive of the dead letters matching' },
  { method: 'get', path: '/console/deliveries/{id}', summary: 'One delivery and every attempt at it' },
  { method: 'post', path: '/console/deliveries/redrive', summary: 'Re-drive the dead letters a filter matches (form)' },
  { method: 'get', path: '/console/sinks/{id}', summary: 'One sink: success rate, enable or disable, send a test event' },
  { method: 'post', path: '/console/sinks/{id}/enable', summary: 'Enable a sink (form)' },
  { method: 'post', path: '/console/sinks/{id}/disable', summary: 'Disable a sink (form)' },
  { method: 'post', path: '/console/sinks/{id}/test', summary: 'Send a gateway.test event to one sink (form)' },
];

export function registerConsolePaths(registry: OpenAPIRegistry): void {
  for (const page of CONSOLE_PAGES) {
    const names = [...page.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
    registry.registerPath({
      method: page.method,
      path: page.path,
      tags: ['Operator console'],
      summary: page.summary,
      ...(names.length > 0
        ? { parameters: names.map((name) => ({ name, in: 'path' as const, required: true, schema: { type: 'string' as const } })) }
        : {}),
      responses: {
        200: { description: 'An HTML page', content: { 'text/html': { schema: { type: 'string' } } } },
        302: { description: 'Not signed in: to the sign-in page' },
        303: { description: 'After a form post: to the next page' },
        401: { description: 'Sign-in refused (an HTML page)' },
        403: { description: 'A form post from another origin (CSRF check; an HTML page)' },
      },
    });
  }
}
