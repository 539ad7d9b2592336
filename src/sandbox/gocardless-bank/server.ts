/**
 * The GoCardless Bank Account Data sandbox: a real HTTP server speaking the API's
 * wire format (api-routes.ts) with a control API (control-routes.ts) over one state
 * (state.ts). Used by the tests, the local stack and the benchmark.
 *
 * Simplifications: one company (one secret id/key pair); every institution behaves
 * the same; GoCardless's own per-minute limits are not enforced, only the banks'
 * daily limit per account and scope.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bankApiRoutes } from './api-routes.js';
import { bankControlRoutes } from './control-routes.js';
import { createBankSandboxState, type BankSandboxOptions, type BankSandboxState } from './state.js';

export * from './state.js';

export interface BankSandbox {
  url: string;
  port: number;
  state: BankSandboxState;
  close(): Promise<void>;
}

export async function startBankSandbox(options: BankSandboxOptions & { port?: number; hostname?: string } = {}): Promise<BankSandbox> {
  const state = createBankSandboxState(options);
  const app = new Hono();
  app.route('/__sandbox', bankControlRoutes(state));
  app.route('/', bankApiRoutes(state));
  const hostname = options.hostname ?? '127.0.0.1';
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port ?? 0, hostname }, () => resolve(started as Server));
    started.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${hostname}:${port}`;
  state.setLinkBase(url);
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    state,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
