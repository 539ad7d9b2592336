import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy to `target` that can go silent: `freeze()` stops forwarding on every
 * connection open now, in both directions, without closing any (a half-open socket, as
 * after a network fault, or a peer that stops answering); connections made later are
 * forwarded as usual.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  const live = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  const server = createServer((client) => {
    const upstream = createConnection(target);
    const pair = { client, upstream, frozen: false };
    live.add(pair);
    client.on('data', (chunk) => pair.frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => pair.frozen || client.write(chunk));
    const end = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the proxy has no port');
  return {
    port: address.port,
    freeze() {
      for (const pair of live) pair.frozen = true;
    },
    async close() {
      for (const pair of live) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
