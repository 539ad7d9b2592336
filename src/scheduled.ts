import type { Deps } from './deps.js';
import { BACKGROUND_JOBS } from './jobs.js';
import { errorMessage } from './primitives/error-message.js';

/**
 * One bounded step of every background job (src/jobs.ts), for runtimes without
 * long-running loops (a Workers Cron Trigger). Each step is small enough to fit a
 * Worker's limits; steps that fail are logged and the others still run. A job the
 * configuration turns off reports null.
 */
export async function runScheduledStep(deps: Deps): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  for (const job of BACKGROUND_JOBS) {
    try {
      results[job.name] = job.enabled(deps) ? await job.step(deps) : null;
    } catch (error) {
      results[job.name] = { error: errorMessage(error) };
      deps.logger.error({ job: `scheduled:${job.name}`, err: results[job.name] }, 'scheduled step failed');
    }
  }
  deps.logger.info({ job: 'scheduled', results }, 'scheduled run');
  return results;
}
