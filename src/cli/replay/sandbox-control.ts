/**
 * Drives the sandbox providers through their HTTP control APIs (`/__sandbox`), so the
 * replay works against sandboxes in any process: the local stack, docker-compose, a test.
 *
 * States are applied quietly: Mollie payments get no webhookUrl and GoCardless status
 * changes emit no event, so the only webhooks the gateway sees are the ones replayed.
 */
import type { ProviderName } from '../../providers/types.js';
import type { GoCardlessSandboxPayment, MollieSandboxPayment, SandboxState } from './records.js';

export interface SandboxUrls {
  mollie: string | null;
  gocardless: string | null;
}

export class SandboxControlError extends Error {
  override readonly name = 'SandboxControlError';
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const url = `${base.replace(/\/+$/, '')}/__sandbox${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new SandboxControlError(`sandbox ${method} ${url} failed: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`);
  }
  return { status: response.status, text: await response.text() };
}

function expect(result: { status: number; text: string }, ok: number[], what: string): void {
  if (!ok.includes(result.status)) throw new SandboxControlError(`${what}: sandbox answered ${result.status} ${result.text.slice(0, 300)}`);
}

async function applyMollie(base: string, payment: MollieSandboxPayment, seed: 'set' | 'create'): Promise<void> {
  const { refunds = [], chargebacks = [], ...fields } = payment;
  const created = await call(base, 'POST', '/payments', fields);
  if (created.status === 409 && seed === 'create') return;
  if (created.status === 409) {
    expect(await call(base, 'POST', `/payments/${payment.id}/status`, { status: payment.status }), [200], `set ${payment.id} ${payment.status}`);
  } else {
    expect(created, [201], `create ${payment.id}`);
  }
  for (const refund of refunds) {
    const added = await call(base, 'POST', `/payments/${payment.id}/refunds`, refund);
    if (added.status === 409) expect(await call(base, 'POST', `/refunds/${refund.id}/status`, { status: refund.status }), [200], `set refund ${refund.id}`);
    else expect(added, [201], `refund ${refund.id} of ${payment.id}`);
  }
  for (const chargeback of chargebacks) {
    const added = await call(base, 'POST', `/payments/${payment.id}/chargebacks`, chargeback);
    if (added.status === 409) {
      if (chargeback.reversed) expect(await call(base, 'POST', `/chargebacks/${chargeback.id}/reverse`), [200], `reverse ${chargeback.id}`);
    } else {
      expect(added, [201], `chargeback ${chargeback.id} of ${payment.id}`);
    }
  }
}

async function applyGoCardless(base: string, payment: GoCardlessSandboxPayment, seed: 'set' | 'create'): Promise<void> {
  const created = await call(base, 'POST', '/payments', { ...payment, emitEvent: false });
  if (created.status === 409 && seed === 'create') return;
  if (created.status === 409) {
    expect(await call(base, 'POST', `/payments/${payment.id}/status`, { status: payment.status, emitEvent: false }), [200], `set ${payment.id} ${payment.status}`);
  } else {
    expect(created, [201], `create ${payment.id}`);
  }
}

/**
 * Creates the payment. When the sandbox has it already, 'set' moves it to the given state
 * (a fixture's next step) and 'create' leaves it as it is (an export replayed where it was taken).
 */
export async function applySandboxState(urls: SandboxUrls, state: SandboxState, seed: 'set' | 'create' = 'set'): Promise<boolean> {
  if (state.provider === 'mollie') {
    if (!urls.mollie) return false;
    await applyMollie(urls.mollie, state.payment, seed);
    return true;
  }
  if (!urls.gocardless) return false;
  await applyGoCardless(urls.gocardless, state.payment, seed);
  return true;
}

export type OutageMode = 'error' | 'reset';

/** Every API request answers 5xx ('error') or has its connection dropped ('reset'); null heals. */
export async function setSandboxDown(urls: SandboxUrls, provider: ProviderName, mode: OutageMode | null): Promise<void> {
  if (provider === 'mollie' && urls.mollie) {
    expect(await call(urls.mollie, 'POST', '/down', { mode }), [200], `mollie down ${String(mode)}`);
  }
  if (provider === 'gocardless' && urls.gocardless) {
    const down = mode === null ? false : mode === 'error' ? 'unavailable' : 'reset';
    expect(await call(urls.gocardless, 'PUT', '/faults', { down }), [200], `gocardless down ${String(mode)}`);
  }
}
