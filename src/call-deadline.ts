/**
 * A time limit for one outbound call that lets go of everything the moment the call ends.
 *
 * `AbortSignal.timeout(ms)` cannot be cancelled: its timer, and whatever hangs off the
 * signal (the Request, `AbortSignal.any` followers, listeners), stay reachable for the
 * full `ms` after the call has finished. At hundreds of calls per second with a 4 s
 * limit that is thousands of dead requests kept alive long enough to be promoted to the
 * old generation, and the garbage collector later pays for them in one long pause.
 */
export interface CallDeadline {
  readonly signal: AbortSignal;
  /** True once the limit itself (not the caller's signal) aborted the call. */
  readonly timedOut: boolean;
  /** Stops the timer and detaches from the caller's signal; call it in `finally`. */
  end(): void;
}

export function callDeadline(ms: number, outer?: AbortSignal | null): CallDeadline {
  const controller = new AbortController();
  let timedOut = false;
  const fromOuter = () => controller.abort(outer?.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
  }, ms);
  if (outer?.aborted) fromOuter();
  else outer?.addEventListener('abort', fromOuter, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    end() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', fromOuter);
    },
  };
}
