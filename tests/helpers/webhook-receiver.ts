import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got, as it arrived on the wire. */
export interface ReceivedRequest {
  n: number;
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** webhook-id header */
  id: string;
  /** The parsed body; undefined when it was not JSON. */
  json: { id: string; type: string; timestamp: string; data: Record<string, unknown> } | undefined;
  /** What the receiver answered (null: it never answered). */
  status: number | null;
}

export type Reply = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang';
export type Behaviour = (request: ReceivedRequest) => Reply;

export interface WebhookReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Requests the receiver answered with a 2xx, in arrival order. */
  accepted(): ReceivedRequest[];
  behave(behaviour: Behaviour): void;
  close(): Promise<void>;
}

/** A real HTTP endpoint on 127.0.0.1 and a port of its own, scripted per request. */
export async function startReceiver(behaviour: Behaviour = () => ({ status: 204 })): Promise<WebhookReceiver> {
  let current = behaviour;
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: ReceivedRequest['json'];
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const request: ReceivedRequest = { n: requests.length, at: Date.now(), headers: req.headers, body, id: String(req.headers['webhook-id'] ?? ''), json, status: null };
      requests.push(request);
      const reply = current(request);
      if (reply === 'hang') {
        hanging.add(res);
        return;
      }
      const send = () => {
        request.status = reply.status;
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/billing`,
    requests,
    accepted: () => requests.filter((request) => request.status !== null && request.status >= 200 && request.status < 300),
    behave(next) {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
