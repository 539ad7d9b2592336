/**
 * An open-loop load at an even pace: request n is sent at start + n / rate, whether or
 * not earlier ones were answered, and its latency is counted from that scheduled time
 * (so a stall cannot hide the requests it delayed: no coordinated omission).
 *
 * Why not only autocannon's `overallRate`: autocannon gives each connection a quota per
 * one-second window and sends it back to back when the window opens, so every second
 * starts with a burst of up to `connections` simultaneous requests and then goes quiet.
 * At half the maximum rate that is a burst as deep as the max-rate pass, followed by
 * idleness; its p99 measures the burst. Webhooks from a provider arrive independently,
 * closer to this even pace.
 */
import http from 'node:http';

export interface PacedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface PacedResult {
  targetRate: number;
  sent: number;
  ok: number;
  rate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How late the driver itself sent a request (its own event loop stalls), p99 and max. */
  sendLagP99Ms: number;
  sendLagMaxMs: number;
  non2xx: number;
  errors: number;
  /** Transport failures by code (ECONNRESET, timeout, ...). */
  errorCodes: Record<string, number>;
  statusCodes: Record<string, number>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function pacedLoad(options: {
  url: string;
  rate: number;
  seconds: number;
  next: () => PacedRequest;
  /** Sockets kept open for the requests in flight. */
  maxSockets?: number;
  timeoutMs?: number;
}): Promise<PacedResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
  const total = Math.max(1, Math.round(options.rate * options.seconds));
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  let ok = 0;
  const inFlight = new Set<Promise<void>>();

  const sendLags: number[] = [];
  const fire = (scheduledAt: number) => {
    sendLags.push(performance.now() - scheduledAt);
    const request = options.next();
    const done = new Promise<void>((resolve) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: request.method,
          path: request.path,
          headers: { ...request.headers, ...(request.body !== undefined ? { 'content-length': String(Buffer.byteLength(request.body)) } : {}) },
          agent,
          timeout: options.timeoutMs ?? 30_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - scheduledAt);
            const status = res.statusCode ?? 0;
            statusCodes[status] = (statusCodes[status] ?? 0) + 1;
            if (status >= 200 && status < 300) ok++;
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (error: NodeJS.ErrnoException) => {
        errors++;
        const code = error.code ?? error.message;
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        resolve();
      });
      req.end(request.body);
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  const interval = 1000 / options.rate;
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    // Everything due by now goes out now: the schedule is kept even if a timer fires late.
    while (sent < total && started + sent * interval <= now) fire(started + sent++ * interval);
    if (sent < total) await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + sent * interval - performance.now())));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  sendLags.sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  return {
    targetRate: options.rate,
    sent,
    ok,
    rate: round(ok / Math.max(elapsed, options.seconds)),
    p50Ms: round(percentile(latencies, 50)),
    p90Ms: round(percentile(latencies, 90)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(latencies.at(-1) ?? 0),
    sendLagP99Ms: round(percentile(sendLags, 99)),
    sendLagMaxMs: round(sendLags.at(-1) ?? 0),
    non2xx: sent - ok - errors,
    errors,
    errorCodes,
    statusCodes,
  };
}
