import { describe, expect, it } from 'vitest';
import { callDeadline } from '../../src/call-deadline.js';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('callDeadline', () => {
  it('aborts with a TimeoutError once the limit passes, and says so', async () => {
    const deadline = callDeadline(20);
    expect(deadline.signal.aborted).toBe(false);
    await wait(60);
    expect(deadline.signal.aborted).toBe(true);
    expect((deadline.signal.reason as DOMException).name).toBe('TimeoutError');
    expect(deadline.timedOut).toBe(true);
    deadline.end();
  });

  it('never aborts once ended before the limit', async () => {
    const deadline = callDeadline(20);
    deadline.end();
    await wait(60);
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.timedOut).toBe(false);
  });

  it("follows the caller's signal, with its reason, without counting it as a timeout", () => {
    const outer = new AbortController();
    const deadline = callDeadline(10_000, outer.signal);
    const reason = new Error('caller gave up');
    outer.abort(reason);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe(reason);
    expect(deadline.timedOut).toBe(false);
    deadline.end();
  });

  it("starts aborted when the caller's signal already is, and lets go of it when ended", () => {
    const aborted = new AbortController();
    aborted.abort();
    const first = callDeadline(10_000, aborted.signal);
    expect(first.signal.aborted).toBe(true);
    first.end();

    const outer = new AbortController();
    const second = callDeadline(10_000, outer.signal);
    second.end();
    outer.abort();
    expect(second.signal.aborted).toBe(false);
  });
});
