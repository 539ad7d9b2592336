import { MOLLIE_RANK } from '../payments/status-rules.js';
import type { FetchResult, PaymentProvider, PaymentSnapshot, PaymentStatus, ProviderName } from '../providers/types.js';

/**
 * An in-process implementation of the provider port whose payments follow scripted
 * timelines on the wall clock. Processes that share a timeline's start time see the
 * same status at the same moment, which lets tests race several OS processes
 * against one "provider".
 */
export interface TimelineStep {
  /** Milliseconds after the timeline's start at which this status takes effect. */
  atMs: number;
  providerStatus: string;
  refundedMinor?: number;
  chargedBackMinor?: number;
}

export interface ScriptedPayment {
  id: string;
  startedAt: number;
  steps: TimelineStep[];
  amountMinor?: number;
  currency?: string;
}

export interface ScriptedProviderOptions {
  name: ProviderName;
  /** Fetch latency in ms, or a function of the payment id. */
  latencyMs?: number | ((id: string) => number);
  normalise?: (providerStatus: string) => PaymentStatus;
  clock?: () => number;
}

export function createScriptedProvider(options: ScriptedProviderOptions) {
  const payments = new Map<string, ScriptedPayment>();
  const fetches = new Map<string, number>();
  const clock = options.clock ?? Date.now;
  const normalise = options.normalise ?? ((status: string) => {
    if (status in MOLLIE_RANK) return status as PaymentStatus;
    throw new Error(`scripted provider: unknown status ${status}`);
  });

  function stepAt(payment: ScriptedPayment, at: number): TimelineStep | undefined {
    let current: TimelineStep | undefined;
    for (const step of payment.steps) if (payment.startedAt + step.atMs <= at) current = step;
    return current;
  }

  const provider: PaymentProvider & {
    script(payment: ScriptedPayment): void;
    fetchCount(id: string): number;
    /** What a fetch would see at `at`, for assertions. */
    statusAt(id: string, at: number): string | undefined;
  } = {
    name: options.name,
    hasAccount: () => true,
    script(payment) {
      payments.set(payment.id, payment);
    },
    fetchCount: (id) => fetches.get(id) ?? 0,
    statusAt: (id, at) => {
      const payment = payments.get(id);
      return payment && stepAt(payment, at)?.providerStatus;
    },
    async fetchPayment(account, id): Promise<FetchResult> {
      fetches.set(id, (fetches.get(id) ?? 0) + 1);
      const payment = payments.get(id);
      // The provider's answer reflects the moment the request reached it.
      const seenAt = clock();
      const latency = typeof options.latencyMs === 'function' ? options.latencyMs(id) : (options.latencyMs ?? 0);
      if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
      const step = payment && stepAt(payment, seenAt);
      if (!payment || !step) return { kind: 'not_found' };
      const snapshot: PaymentSnapshot = {
        provider: options.name,
        account,
        providerPaymentId: id,
        providerStatus: step.providerStatus,
        status: normalise(step.providerStatus),
        amount: { minor: payment.amountMinor ?? 1000, currency: payment.currency ?? 'EUR' },
        refundedMinor: step.refundedMinor ?? 0,
        chargedBackMinor: step.chargedBackMinor ?? 0,
        mode: 'test',
        method: 'ideal',
        metadata: { scripted: true },
        providerCreatedAt: new Date(payment.startedAt),
        raw: { id, status: step.providerStatus, seenAt: new Date(seenAt).toISOString() },
      };
      return { kind: 'found', snapshot };
    },
  };
  return provider;
}

export type ScriptedProvider = ReturnType<typeof createScriptedProvider>;
