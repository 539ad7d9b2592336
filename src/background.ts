import type { Deps } from './deps.js';
import { BACKGROUND_JOBS } from './jobs.js';

/**
 * The long-running loops of a Node gateway process, one per enabled job (src/jobs.ts).
 * Each takes the shared abort signal and returns when it fires; `stop` waits for all of
 * them, so SIGTERM finishes in-flight work instead of cutting it.
 */
export interface BackgroundJobs {
  stop(): Promise<void>;
}

export function startBackgroundJobs(deps: Deps): BackgroundJobs {
  const controller = new AbortController();
  const { signal } = controller;
  const loops: Promise<void>[] = BACKGROUND_JOBS.filter((job) => job.enabled(deps)).map((job) => job.loop(deps, signal));
  return {
    async stop() {
      controller.abort();
      await Promise.allSettled(loops);
    },
  };
}
