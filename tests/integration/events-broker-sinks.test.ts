import { setTimeout as pause } from 'node:timers/promises';
import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { configuredSinks, type EventSink } from '../../src/events/sinks.js';
import type { OutboundEvent } from '../../src/events/payment-events.js';
import {
  consumeExchange,
  createNatsStream,
  deleteExchange,
  drainQueue,
  SHARED_AMQP_URL,
  SHARED_NATS_URL,
  startPrivateNats,
  startPrivateRabbit,
  uniqueName,
  type BrokerMessage,
} from '../helpers/brokers.js';
import { eventually } from '../helpers/deps.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { newPaymentId, SINK_SECRET, writeGatewayEvent, writePaymentHistory } from '../helpers/outbound-events.js';
import { sinkTestHarness } from '../helpers/relay-harness.js';

/**
 * NATS JetStream and RabbitMQ sinks against real brokers: the machine's shared ones with
 * stream, exchange and queue names of each test's own, and private ones (started on a
 * free port, stopped and started by pid) where a test takes the broker away.
 */
const harness = sinkTestHarness();
const { cleanups, startRelay } = harness;
let sql: postgres.Sql;
beforeAll(() => {
  sql = harness.sql;
});
const later = <T extends { close?: () => Promise<unknown>; destroy?: () => Promise<unknown> }>(thing: T): T => {
  cleanups.push(() => (thing.destroy ?? thing.close)!.call(thing));
  return thing;
};
const deps = (env: Record<string, string>) => harness.deps(env);

async function deliveredCount(sinkId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from event_deliveries where sink_id = ${sinkId} and state = 'delivered'`;
  return row!.n;
}

/** The outbox events of these payments (and extra event ids), by event id. */
async function written(paymentIds: string[], extra: string[] = []): Promise<Map<string, OutboundEvent>> {
  const rows = await sql<{ event_id: string; payload: OutboundEvent }[]>`
    select event_id, payload from outbox where provider_payment_id = any(${paymentIds}) or event_id = any(${extra})`;
  return new Map(rows.map((row) => [row.event_id, row.payload]));
}

/**
 * What a consumer that de-duplicates on the message id sees: each event once, from the
 * first copy; checks that every copy is signed validly and carries the event as HTTP does.
 */
function consume(messages: BrokerMessage[], expected: Map<string, OutboundEvent>) {
  const verifier = new Webhook(SINK_SECRET);
  const firsts = new Map<string, BrokerMessage>();
  for (const message of messages) {
    const event = expected.get(message.messageId);
    if (!event) continue; // another test's event on the shared broker
    expect(message.headers['webhook-id']).toBe(message.messageId);
    expect(verifier.verify(message.body, message.headers)).toMatchObject({ id: event.id, type: event.type, data: event.data });
    expect(Object.keys(JSON.parse(message.body))).toEqual(['id', 'type', 'timestamp', 'data']);
    if (!firsts.has(message.messageId)) firsts.set(message.messageId, message);
  }
  const ordered = [...firsts.values()];
  const versions = (paymentId: string) =>
    ordered.map((m) => JSON.parse(m.body) as OutboundEvent).filter((e) => e.data.paymentId === paymentId).map((e) => e.data.version as number);
  return { unique: ordered, versions, copies: messages.filter((m) => expected.has(m.messageId)).length };
}

async function writeRace(d: Deps, payments: number) {
  const ids = Array.from({ length: payments }, () => newPaymentId());
  await Promise.all(ids.map((id) => writePaymentHistory(d.db, id, 2)));
  const gatewayEvent = await writeGatewayEvent(d.db, 'broker');
  return { ids, gatewayEvent };
}

const sinkOf = (d: Deps, kind: EventSink['kind']) => configuredSinks(d).find((sink) => sink.kind === kind)!;

describe('NATS JetStream sink', () => {
  it('two relays publish concurrent payments once per event id (Nats-Msg-Id), in version order, signed, on <prefix>.<type>.<provider>', async () => {
    const prefix = uniqueName('gwtest');
    const stream = later(await createNatsStream(SHARED_NATS_URL, prefix));
    const env = { EVENT_NATS_URL: SHARED_NATS_URL, EVENT_NATS_SUBJECT: prefix };
    const a = deps(env);
    const b = deps(env);
    const sink = sinkOf(a, 'nats');
    expect(sink.target).toBe(`nats://127.0.0.1:4222 ${prefix}.>`);
    const { ids, gatewayEvent } = await writeRace(a, 8);
    const expected = await written(ids, [gatewayEvent]);
    expect(expected.size).toBe(8 * 5 + 1);
    startRelay(a);
    startRelay(b);
    await eventually(async () => (await deliveredCount(sink.id)) === expected.size, { timeoutMs: 30_000, what: 'every event published' });

    // Publishing an event again (a retry after a lost acknowledgement) stores nothing new.
    const again = expected.get(gatewayEvent)!;
    expect(await sinkOf(b, 'nats').deliver(again)).toEqual({ kind: 'delivered', status: null });

    const messages = await stream.messages();
    const seen = consume(messages, expected);
    expect(seen.copies).toBe(expected.size);
    expect(seen.unique).toHaveLength(expected.size);
    for (const id of ids) expect(seen.versions(id)).toEqual([1, 2, 3, 4, 5]);
    for (const message of messages) {
      const event = expected.get(message.messageId)!;
      expect(message.subject).toBe(`${prefix}.${event.type}.${event.data.provider ?? 'none'}`);
    }
    expect(messages.find((m) => m.messageId === gatewayEvent)!.subject).toBe(`${prefix}.gateway.poller.degraded.mollie`);
  });

  it('a subject no stream takes is a failed attempt that says what to create', async () => {
    const prefix = uniqueName('gwnostream');
    const d = deps({ EVENT_NATS_URL: SHARED_NATS_URL, EVENT_NATS_SUBJECT: prefix, EVENT_SINK_TIMEOUT_MS: '2000' });
    const outcome = await sinkOf(d, 'nats').deliver({ id: 'evt_test', type: 'payment.paid', timestamp: new Date().toISOString(), data: { provider: 'mollie' } });
    expect(outcome).toMatchObject({ kind: 'failed', error: expect.stringContaining(`create one whose subjects cover ${prefix}.>`) });
  });
});

describe('RabbitMQ sink', () => {
  it('two relays publish concurrent payments confirmed, persistent, routed by type; a consumer de-duplicating on message_id sees each once, in version order, signed', async () => {
    const exchange = uniqueName('gw-test-');
    const consumer = later(await consumeExchange(SHARED_AMQP_URL, exchange));
    const env = { EVENT_AMQP_URL: SHARED_AMQP_URL, EVENT_AMQP_EXCHANGE: exchange };
    const a = deps(env);
    const b = deps(env);
    const sink = sinkOf(a, 'amqp');
    expect(sink.target).toBe(`amqp://127.0.0.1:5672 exchange ${exchange}`);
    const { ids, gatewayEvent } = await writeRace(a, 8);
    const expected = await written(ids, [gatewayEvent]);
    startRelay(a);
    startRelay(b);
    await eventually(async () => (await deliveredCount(sink.id)) === expected.size, { timeoutMs: 30_000, what: 'every event confirmed' });
    // A retry after a lost confirm reaches the queue twice; the consumer drops the copy.
    expect(await sinkOf(b, 'amqp').deliver(expected.get(gatewayEvent)!)).toEqual({ kind: 'delivered', status: null });
    await eventually(async () => consumer.received.filter((m) => expected.has(m.messageId)).length === expected.size + 1, { what: 'the consumer to get them' });

    const seen = consume(consumer.received, expected);
    expect(seen.unique).toHaveLength(expected.size);
    for (const id of ids) expect(seen.versions(id)).toEqual([1, 2, 3, 4, 5]);
    for (const message of consumer.received) {
      expect(message.routingKey).toBe(expected.get(message.messageId)!.type);
      expect(message.persistent).toBe(true);
    }
  });

  it('declares its exchange when missing; a message no queue takes (returned) is a failed attempt, delivered once a queue is bound', async () => {
    const exchange = uniqueName('gw-unroutable-');
    cleanups.push(() => deleteExchange(SHARED_AMQP_URL, exchange));
    const d = deps({ EVENT_AMQP_URL: SHARED_AMQP_URL, EVENT_AMQP_EXCHANGE: exchange });
    const event: OutboundEvent = { id: `evt_${uniqueName('')}`, type: 'payment.paid', timestamp: new Date().toISOString(), data: { provider: 'mollie' } };
    expect(await sinkOf(d, 'amqp').deliver(event)).toMatchObject({
      kind: 'failed',
      error: `returned unroutable: no queue is bound to exchange ${exchange} for routing key payment.paid`,
    });
    const consumer = later(await consumeExchange(SHARED_AMQP_URL, exchange));
    expect(await sinkOf(d, 'amqp').deliver(event)).toEqual({ kind: 'delivered', status: null });
    await eventually(async () => consumer.received.length === 1, { what: 'the message' });
    expect(consumer.received[0]!.messageId).toBe(event.id);
  });

  it('a connection that goes silent (no confirm, never closed) is given up: the next attempt opens a fresh one and is delivered', async () => {
    const exchange = uniqueName('gw-silent-');
    cleanups.push(() => deleteExchange(SHARED_AMQP_URL, exchange));
    const proxy = later(await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(SHARED_AMQP_URL).port || 5672) }));
    const proxied = new URL(SHARED_AMQP_URL);
    proxied.host = `127.0.0.1:${proxy.port}`;
    const sink = sinkOf(deps({ EVENT_AMQP_URL: proxied.toString(), EVENT_AMQP_EXCHANGE: exchange, EVENT_SINK_TIMEOUT_MS: '1000' }), 'amqp');
    cleanups.push(() => sink.close?.() ?? Promise.resolve());
    const consumer = later(await consumeExchange(SHARED_AMQP_URL, exchange));
    const event = (n: number): OutboundEvent => ({ id: `evt_${uniqueName('')}_${n}`, type: 'payment.paid', timestamp: new Date().toISOString(), data: { provider: 'mollie' } });
    const first = event(1);
    expect(await sink.deliver(first)).toEqual({ kind: 'delivered', status: null });

    proxy.freeze();
    const unanswered = await sink.deliver(event(2));
    expect(unanswered).toMatchObject({ kind: 'failed', error: expect.stringContaining('no publisher confirm within 1000 ms') });
    // The silent connection stays open (nothing closed it); the sink does not wait on it again.
    const third = event(3);
    expect(await sink.deliver(third)).toEqual({ kind: 'delivered', status: null });
    await eventually(async () => consumer.received.some((message) => message.messageId === third.id), { what: 'the message sent over the fresh connection' });
    expect(consumer.received.map((message) => message.messageId)).toEqual([first.id, third.id]);
  });
});

/**
 * The broker is killed 3 s into a storm of payment changes and started again 10 s later,
 * with the default retry schedule (5 s, 5 min, ...): every event arrives, once per event
 * id after de-duplication, in version order, and an HTTP sink beside it is not held up.
 */
async function stormWithOutage(options: {
  broker: { stop(): Promise<void>; start(): Promise<void> };
  env: Record<string, string>;
  kind: 'nats' | 'amqp';
  messages: () => Promise<BrokerMessage[]>;
}) {
  const http = await harness.receiver(() => ({ status: 204 }));
  const d = deps({ ...options.env, EVENT_SINK_URLS: http.url, EVENT_SINK_TIMEOUT_MS: '2000' });
  const sink = sinkOf(d, options.kind);
  const httpSink = sinkOf(d, 'http');
  startRelay(d);

  const ids: string[] = [];
  const storm = (async () => {
    const started = Date.now();
    for (let i = 0; Date.now() - started < 16_000; i++) {
      const id = newPaymentId();
      ids.push(id);
      await writePaymentHistory(d.db, id, 1);
      // The storm's pace: about ten payments (forty events) a second.
      await pause(started + (i + 1) * 100 - Date.now());
    }
  })();

  await eventually(async () => (await deliveredCount(sink.id)) >= 20, { timeoutMs: 10_000, what: 'the broker sink to be delivering' });
  await options.broker.stop();
  const stoppedAt = Date.now();
  // Attempts confirmed just before the kill are recorded a moment later.
  await pause(2000);
  const brokerAtStop = await deliveredCount(sink.id);
  await pause(stoppedAt + 10_000 - Date.now());
  // Meanwhile the HTTP sink kept up with the storm: before the broker is back, it has every
  // event written up to a moment ago, including those written after the broker went away.
  const writtenSoFar = await written(ids.slice(0, -5));
  const afterStop = await sql<{ n: number }[]>`
    select count(*)::int as n from outbox where event_id = any(${[...writtenSoFar.keys()]}) and created_at > to_timestamp(${stoppedAt / 1000})`;
  expect(afterStop[0]!.n).toBeGreaterThan(0);
  await eventually(
    async () => {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from event_deliveries where sink_id = ${httpSink.id} and state = 'delivered' and event_id = any(${[...writtenSoFar.keys()]})`;
      return row!.n === writtenSoFar.size;
    },
    { timeoutMs: 15_000, intervalMs: 100, what: 'the HTTP sink to have the events written while the broker was down' },
  );
  // ...while the broker sink delivered nothing: the broker really was away.
  expect(await deliveredCount(sink.id)).toBe(brokerAtStop);
  await options.broker.start();
  await storm;

  const expected = await written(ids);
  expect(expected.size).toBe(ids.length * 4);
  // A wait bound, not a promise: the property is that nothing is lost. A node restarted on a
  // loaded machine (CI runs suites side by side) can take a while to accept connections, and
  // the deliveries that failed meanwhile come back on their retry schedule.
  await eventually(async () => (await deliveredCount(sink.id)) === expected.size, { timeoutMs: 120_000, intervalMs: 200, what: 'every event after the broker came back' }).catch(
    async (error: unknown) => {
      // Say where the missing ones were, so a slow run and a stuck one can be told apart.
      const pending = await sql`
        select state, attempts, awaiting_retry, count(*)::int as n, min(next_attempt_at) as next_min, max(next_attempt_at) as next_max
        from event_deliveries where sink_id = ${sink.id} and state <> 'delivered' group by 1, 2, 3 order by 1, 2, 3`;
      const errors = await sql`
        select outcome, error, count(*)::int as n, max(started_at) as last from event_delivery_attempts
        where sink_id = ${sink.id} and outcome <> 'delivered' group by 1, 2 order by 4 desc limit 8`;
      throw new Error(`${(error as Error).message}; now ${new Date().toISOString()}; not delivered: ${JSON.stringify(pending)}; failed attempts: ${JSON.stringify(errors)}`);
    },
  );
  expect(await deliveredCount(httpSink.id)).toBe(expected.size);
  expect(brokerAtStop).toBeLessThan(expected.size);

  let seen: ReturnType<typeof consume> | undefined;
  await eventually(async () => {
    seen = consume(await options.messages(), expected);
    return seen.unique.length === expected.size;
  }, { timeoutMs: 20_000, what: 'every event at the consumer' });
  for (const id of ids) expect(seen!.versions(id)).toEqual([1, 2, 3, 4]);
  return seen!;
}

describe('a broker that goes away during a storm', () => {
  it('NATS (private nats-server, killed for 10 s): nothing lost, each event stored once, in order', async () => {
    const broker = later(await startPrivateNats());
    const prefix = uniqueName('gwstorm');
    const stream = later(await createNatsStream(broker.url, prefix));
    const seen = await stormWithOutage({ broker, env: { EVENT_NATS_URL: broker.url, EVENT_NATS_SUBJECT: prefix }, kind: 'nats', messages: () => stream.messages() });
    // JetStream's duplicate window kept the stream itself free of copies.
    expect(seen.copies).toBe(seen.unique.length);
  }, 240_000);

  it('RabbitMQ (private node, killed for 10 s): nothing lost, each event once by message_id, in order', async () => {
    const broker = later(await startPrivateRabbit());
    const exchange = uniqueName('gw-storm-');
    // A durable queue on the private node: it keeps what it holds across the node's restart.
    // The consumer's connection dies with the node; what it had not taken is read afresh after.
    const consumer = later(await consumeExchange(broker.url, exchange));
    const drained: BrokerMessage[] = [];
    await stormWithOutage({
      broker,
      env: { EVENT_AMQP_URL: broker.url, EVENT_AMQP_EXCHANGE: exchange },
      kind: 'amqp',
      messages: async () => {
        drained.push(...(await drainQueue(broker.url, consumer.queue)));
        return [...consumer.received, ...drained];
      },
    });
  }, 240_000);
});
