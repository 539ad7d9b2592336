import { createBankSchedulerState, type BankSchedulerState } from './bank/scheduler.js';
import type { Env } from './config/env.js';
import { createRelayState, type RelayState } from './events/relay.js';
import { createConfiguredSinks, type ConfiguredSinks } from './events/sinks.js';
import type { Logger } from './observability/logger.js';
import { createPollerProcessState, type PollerProcessState } from './poller/poller.js';
import type { Redis } from 'ioredis';

/**
 * What this process's background jobs remember between steps. buildDeps creates it with
 * everything else, so it lives and dies with the deps: two gateways in one process (the
 * tests run several) never share a lease owner, a rate limiter or a sink connection, and
 * deps.close() closes the sinks it built.
 */
export interface JobState {
  pollerState: PollerProcessState;
  relayState: RelayState;
  /** Built on first use: a deps object that never relays opens no broker connection. */
  eventSinks: ConfiguredSinks;
  bankSchedulerState: BankSchedulerState;
}

export function createJobState(deps: { env: Env; redis: Redis[]; logger: Logger }): JobState {
  return {
    pollerState: createPollerProcessState(),
    relayState: createRelayState(),
    eventSinks: createConfiguredSinks(deps),
    bankSchedulerState: createBankSchedulerState(),
  };
}
