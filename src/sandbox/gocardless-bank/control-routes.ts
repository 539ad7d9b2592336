/**
 * The sandbox's control API under `/__sandbox`, for tests, the stack and the
 * benchmark in other processes: script transactions and statuses, move the clock,
 * read what the gateway called.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { ACCOUNT_STATUSES, REQUISITION_STATUSES } from '../../providers/gocardless-bank/schemas.js';
import type { BankSandboxState, SandboxAccount } from './state.js';
import { bookPending, generateTransactions, reissuePending, vanishPending } from './transactions.js';

const txSchema = z.looseObject({ transactionAmount: z.object({ amount: z.string(), currency: z.string() }) });

export function bankControlRoutes(state: BankSandboxState) {
  const app = new Hono();
  const body = async <T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> => schema.parse(await c.req.json().catch(() => ({})));
  const account = (c: Context): SandboxAccount => {
    const found = state.accounts.get(c.req.param('id')!);
    if (!found) throw new NotFound(`account ${c.req.param('id')}`);
    return found;
  };

  app.onError((err, c) => {
    if (err instanceof NotFound) return c.json({ error: err.message }, 404);
    if (err instanceof z.ZodError) return c.json({ error: err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') }, 400);
    return c.json({ error: String(err) }, 500);
  });

  app.get('/stats', (c) => c.json({ ...state.stats, requisitions: state.requisitions.size, accounts: state.accounts.size, clockOffsetMs: state.clockOffsetMs }));
  app.get('/calls', (c) => c.json(state.calls));
  app.post('/clock', async (c) => {
    const { advanceMs } = await body(c, z.object({ advanceMs: z.number() }));
    state.advanceClock(advanceMs);
    return c.json({ clockOffsetMs: state.clockOffsetMs, now: state.iso() });
  });
  app.get('/requisitions', (c) => c.json([...state.requisitions.values()]));
  app.post('/requisitions/:id/consent', async (c) => {
    const { outcome } = await body(c, z.object({ outcome: z.enum(['link', 'reject']).default('link') }));
    const requisition = state.completeConsent(c.req.param('id'), outcome);
    return requisition ? c.json(requisition) : c.json({ error: 'unknown requisition' }, 404);
  });
  app.post('/requisitions/:id/status', async (c) => {
    const { status } = await body(c, z.object({ status: z.enum(REQUISITION_STATUSES) }));
    const requisition = state.requisitions.get(c.req.param('id'));
    if (!requisition) return c.json({ error: 'unknown requisition' }, 404);
    requisition.status = status;
    return c.json(requisition);
  });
  app.get('/accounts/:id/transactions', (c) => {
    const target = account(c);
    return c.json({ booked: target.booked, pending: target.pending });
  });
  app.post('/accounts/:id/status', async (c) => {
    const { status } = await body(c, z.object({ status: z.enum(ACCOUNT_STATUSES) }));
    account(c).status = status;
    return c.json({ id: c.req.param('id'), status });
  });
  app.post('/accounts/:id/transactions', async (c) => {
    const input = await body(c, z.object({ booked: z.array(txSchema).default([]), pending: z.array(txSchema).default([]) }));
    const target = account(c);
    target.booked.push(...input.booked);
    target.pending.push(...input.pending);
    return c.json({ booked: target.booked.length, pending: target.pending.length });
  });
  app.post('/accounts/:id/generate', async (c) => {
    const input = await body(c, z.object({ booked: z.number().int().min(0), pending: z.number().int().min(0), endDate: z.string().optional(), currency: z.string().optional() }));
    const target = account(c);
    generateTransactions(target, input);
    return c.json({ booked: target.booked.length, pending: target.pending.length });
  });
  app.post('/accounts/:id/pending/reissue', (c) => {
    const target = account(c);
    reissuePending(target);
    return c.json({ pending: target.pending.length });
  });
  app.post('/accounts/:id/pending/:index/book', async (c) => {
    const input = await body(c, z.object({ internalTransactionId: z.string().optional(), bookingDate: z.string().optional(), remittance: z.string().optional() }));
    const booked = bookPending(account(c), Number(c.req.param('index')), input);
    return booked ? c.json(booked) : c.json({ error: 'no such pending row' }, 404);
  });
  app.post('/accounts/:id/pending/:index/vanish', (c) => {
    const removed = vanishPending(account(c), Number(c.req.param('index')));
    return removed ? c.json(removed) : c.json({ error: 'no such pending row' }, 404);
  });
  return app;
}

class NotFound extends Error {
  constructor(what: string) {
    super(`${what} not found`);
  }
}
