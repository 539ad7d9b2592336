/**
 * The Mollie sandbox's misbehaviour on request: scripted error answers, latency (for all
 * of /v2 or one payment), and sleeps that close() can cut short.
 */
import { SandboxError, type MollieSandboxState, type SandboxFault } from './state.js';

export function createMollieFaults(state: Pick<MollieSandboxState, 'faults' | 'latencyMs' | 'paymentLatencyMs'>) {
  const pendingSleeps = new Set<() => void>();

  function sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        pendingSleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      pendingSleeps.add(wake);
    });
  }

  function failNext(fault: SandboxFault): void {
    if (!Number.isInteger(fault.count) || fault.count < 1) throw new SandboxError('fault count must be a positive integer');
    state.faults.push({ ...fault, remaining: fault.count });
  }

  function setLatency(ms: number, paymentId?: string): void {
    if (paymentId === undefined) state.latencyMs = ms;
    else if (ms > 0) state.paymentLatencyMs.set(paymentId, ms);
    else state.paymentLatencyMs.delete(paymentId);
  }

  function takeFault(paymentId: string | undefined): SandboxFault | null {
    const index = state.faults.findIndex((f) => f.paymentId === undefined || f.paymentId === paymentId);
    if (index < 0) return null;
    const fault = state.faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) state.faults.splice(index, 1);
    return fault;
  }

  /** Ends every pending sleep now (the sandbox is closing). */
  function wakeAll(): void {
    for (const wake of [...pendingSleeps]) wake();
  }

  return { sleep, wakeAll, failNext, setLatency, takeFault };
}

export type MollieFaults = ReturnType<typeof createMollieFaults>;
