import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect as amqpConnect, type ConsumeMessage } from 'amqplib';
import { eventually } from './deps.js';
import { freePort } from './processes.js';

/**
 * The machine's real brokers (shared: never stopped by a test; every test uses names of
 * its own) and private ones a test starts on a free port and stops by pid.
 */
export const SHARED_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const SHARED_AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const uniqueName = (label: string) => `${label}${randomBytes(4).toString('hex')}`;

/** One message as a consumer sees it, from either broker. */
export interface BrokerMessage {
  subject: string;
  messageId: string;
  body: string;
  headers: Record<string, string>;
  persistent?: boolean;
}

// ---------------------------------------------------------------- NATS JetStream

/** A stream of its own capturing `<prefix>.>`; `messages()` reads every stored message in order. */
export async function createNatsStream(url: string, prefix: string) {
  const nc = await natsConnect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const jsm = await jetstreamManager(nc);
  const name = prefix.replace(/[^A-Za-z0-9_-]/g, '_').toUpperCase();
  await jsm.streams.add({ name, subjects: [`${prefix}.>`] });
  return {
    name,
    async messages(): Promise<BrokerMessage[]> {
      const info = await jsm.streams.info(name);
      const out: BrokerMessage[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const stored = await jsm.streams.getMessage(name, { seq });
        if (!stored) continue;
        const headers: Record<string, string> = {};
        for (const [key] of stored.header ?? []) headers[key.toLowerCase()] = stored.header!.get(key);
        out.push({ subject: stored.subject, messageId: headers['nats-msg-id'] ?? '', body: new TextDecoder().decode(stored.data), headers });
      }
      return out;
    },
    async close() {
      await jsm.streams.delete(name).catch(() => {});
      await nc.close().catch(() => {});
    },
  };
}

export interface PrivateBroker {
  url: string;
  port: number;
  /** Kills the server (SIGKILL, by pid) and waits until its port is closed. */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage, and waits until it answers. */
  start(): Promise<void>;
  /** Stops it for good and removes its storage. */
  destroy(): Promise<void>;
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A nats-server with JetStream of the test's own (/usr/sbin/nats-server). */
export async function startPrivateNats(): Promise<PrivateBroker> {
  const port = await freePort();
  const storeDir = mkdtempSync(path.join(tmpdir(), 'gw-nats-'));
  let child: ChildProcess | null = null;
  let output = '';
  const start = async () => {
    output = '';
    child = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const started = child;
    await eventually(
      async () => {
        if (started.exitCode !== null) throw new Error(`nats-server exited ${started.exitCode}: ${output}`);
        return portOpen(port);
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the private nats-server' },
    );
  };
  const stop = async () => {
    const running = child;
    child = null;
    if (!running?.pid) return;
    running.kill('SIGKILL');
    await eventually(async () => running.exitCode !== null || running.signalCode !== null, { timeoutMs: 10_000, intervalMs: 20, what: 'nats-server to exit' });
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- RabbitMQ

/**
 * A queue of its own bound to the exchange for every routing key, consumed from the
 * start: `received` holds every delivery in arrival order (duplicates included).
 */
export async function consumeExchange(url: string, exchange: string) {
  const model = await amqpConnect(url);
  model.on('error', () => {});
  const channel = await model.createChannel();
  channel.on('error', () => {});
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await channel.assertQueue(uniqueName(`${exchange}-q-`), { durable: true, autoDelete: false });
  await channel.bindQueue(queue, exchange, '#');
  const received: (BrokerMessage & { routingKey: string })[] = [];
  await channel.consume(queue, (message: ConsumeMessage | null) => {
    if (!message) return;
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(message.properties.headers ?? {})) headers[key] = String(value);
    received.push({
      subject: message.fields.routingKey,
      routingKey: message.fields.routingKey,
      messageId: String(message.properties.messageId ?? ''),
      body: message.content.toString('utf8'),
      headers,
      persistent: message.properties.deliveryMode === 2,
    });
    channel.ack(message);
  });
  return {
    queue,
    received,
    async close() {
      await channel.deleteQueue(queue).catch(() => {});
      await channel.deleteExchange(exchange).catch(() => {});
      await model.close().catch(() => {});
    },
  };
}

/** Takes (and acknowledges) everything waiting in a queue, with a connection of its own. */
export async function drainQueue(url: string, queue: string): Promise<BrokerMessage[]> {
  const model = await amqpConnect(url);
  model.on('error', () => {});
  const channel = await model.createChannel();
  const out: BrokerMessage[] = [];
  try {
    for (;;) {
      const message = await channel.get(queue, { noAck: false });
      if (!message) break;
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(message.properties.headers ?? {})) headers[key] = String(value);
      out.push({ subject: message.fields.routingKey, messageId: String(message.properties.messageId ?? ''), body: message.content.toString('utf8'), headers, persistent: message.properties.deliveryMode === 2 });
      channel.ack(message);
    }
  } finally {
    await model.close().catch(() => {});
  }
  return out;
}

/** Deletes an exchange the sink declared (tests that bound no queue to it). */
export async function deleteExchange(url: string, exchange: string): Promise<void> {
  const model = await amqpConnect(url);
  const channel = await model.createChannel();
  await channel.deleteExchange(exchange).catch(() => {});
  await model.close().catch(() => {});
}

/**
 * A RabbitMQ node of the test's own: its own node name, AMQP and distribution ports,
 * config, database and logs under a temporary directory (owned by the rabbitmq user, as
 * the server script drops to it). Stopped by killing the node's pid from its pid file.
 */
export async function startPrivateRabbit(): Promise<PrivateBroker> {
  const port = await freePort();
  const distPort = await freePort();
  const base = mkdtempSync(path.join(tmpdir(), 'gw-rabbit-'));
  const nodeName = `${uniqueName('gwtest')}@localhost`;
  for (const dir of ['mnesia', 'log']) mkdirSync(path.join(base, dir));
  writeFileSync(path.join(base, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users = none\n`);
  writeFileSync(path.join(base, 'enabled_plugins'), '[].\n');
  const uid = Number(execFileSync('id', ['-u', 'rabbitmq']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'rabbitmq']).toString().trim());
  for (const entry of ['', 'mnesia', 'log', 'rabbitmq.conf', 'enabled_plugins']) chownSync(path.join(base, entry), uid, gid);
  const pidFile = path.join(base, 'rabbit.pid');
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: path.join(base, 'rabbitmq.conf'),
    RABBITMQ_MNESIA_BASE: path.join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(base, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(base, 'enabled_plugins'),
    RABBITMQ_PID_FILE: pidFile,
  };
  let output = '';
  let launcher: ChildProcess | null = null;
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const start = async () => {
    rmSync(pidFile, { force: true });
    output = '';
    launcher = spawn('rabbitmq-server', [], { env, cwd: base, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    launcher.stdout!.on('data', (chunk) => (output += chunk));
    launcher.stderr!.on('data', (chunk) => (output += chunk));
    const started = launcher;
    await eventually(
      async () => {
        if (started.exitCode !== null) throw new Error(`rabbitmq-server exited ${started.exitCode}: ${output.slice(-2000)}`);
        if (!(await portOpen(port))) return false;
        const model = await amqpConnect(url).catch(() => null);
        await model?.close().catch(() => {});
        return model !== null;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `the private RabbitMQ node on ${port}` },
    );
  };
  const stop = async () => {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!pid) throw new Error('the private RabbitMQ node wrote no pid');
    process.kill(pid, 'SIGKILL');
    await eventually(async () => !pidAlive(pid) && !(await portOpen(port)), { timeoutMs: 20_000, intervalMs: 50, what: 'the private RabbitMQ node to exit' });
    launcher = null;
  };
  await start();
  return {
    url,
    port,
    stop,
    start,
    async destroy() {
      await stop().catch(() => {});
      rmSync(base, { recursive: true, force: true });
    },
  };
}
