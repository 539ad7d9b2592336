import { createServer, type Server } from 'node:http';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

/**
 * A sample downstream billing endpoint: verifies each delivery's Standard Webhooks
 * signature with the reference library, de-duplicates on the webhook id, prints one
 * line per event, and keeps what it got for tests and the replay summary.
 */
export interface ReceivedEvent {
  webhookId: string;
  type: string;
  data: Record<string, unknown>;
  receivedAt: Date;
  duplicate: boolean;
}

export interface DownstreamReceiver {
  url: string;
  port: number;
  events: ReceivedEvent[];
  rejected: number;
  close(): Promise<void>;
}

export async function startDownstreamReceiver(options: {
  port?: number;
  hostname?: string;
  secret: string;
  print?: (line: string) => void;
}): Promise<DownstreamReceiver> {
  const verifier = new Webhook(options.secret);
  const events: ReceivedEvent[] = [];
  const seen = new Set<string>();
  const state = { rejected: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      let payload: { type: string; data: Record<string, unknown> };
      try {
        payload = verifier.verify(body, headers) as typeof payload;
      } catch (error) {
        state.rejected++;
        options.print?.(`REJECTED ${headers['webhook-id'] || '(no id)'}: ${error instanceof WebhookVerificationError ? error.message : String(error)}`);
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad signature' }));
        return;
      }
      const duplicate = seen.has(headers['webhook-id']);
      seen.add(headers['webhook-id']);
      events.push({ webhookId: headers['webhook-id'], type: payload.type, data: payload.data, receivedAt: new Date(), duplicate });
      const data = payload.data;
      options.print?.(
        `${duplicate ? 'DUPLICATE ' : ''}${payload.type} ${String(data.provider ?? '')} ${String(data.paymentId ?? '')} ` +
          `${String(data.previousStatus ?? '-')} → ${String(data.status ?? '-')} v${String(data.version ?? '-')}`,
      );
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.hostname ?? '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${options.hostname ?? '127.0.0.1'}:${port}/`,
    port,
    events,
    get rejected() {
      return state.rejected;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
