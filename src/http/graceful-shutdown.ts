import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { errorStatus, type ErrorCode } from './error-codes.js';

const SHUTTING_DOWN: ErrorCode = 'shutting_down';

/**
 * SIGTERM for the Node server, so that every request that reached the process gets an
 * answer: the ones being handled are finished and answered (with `Connection: close`),
 * the ones that arrive on an open connection while we drain get 503 with
 * `Connection: close` and `Retry-After`, and nothing is reset.
 *
 * Node's own `server.close()` does not do that: it destroys every idle keep-alive
 * connection at once (a client writing its next request on one that instant gets
 * ECONNRESET), and it stops the server's request and header timeouts, so a client whose
 * body never finishes holds the process open until it gives up. Instead the listener
 * alone is closed, idle connections are left to the server's normal keep-alive timeout,
 * and after `graceMs` the connections still idle or still sending a body are cut off.
 * A request whose body has arrived is never cut: its handler runs to the end (even if
 * its client left) and its answer is written before the socket closes.
 */
type Fetch = (request: Request, ...rest: any[]) => Response | Promise<Response>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface GracefulShutdownOptions {
  /** How long idle connections and unfinished request bodies get once draining starts. */
  graceMs: number;
  /** What a request refused while draining is told to wait before retrying. */
  retryAfterSeconds?: number;
}

export interface GracefulShutdown {
  /** The app's fetch, tracked; answers 503 once draining. */
  fetch: Fetch;
  /** Starts tracking the server's connections; call right after the server is created. */
  attach(server: Pick<Server, 'on'>): void;
  readonly draining: boolean;
  /** Stops accepting, answers or cuts every open request, and resolves when every connection is closed. */
  drain(server: Server): Promise<DrainSummary>;
}

export interface DrainSummary {
  /** Connections cut off after the grace: idle ones and those still sending a body. */
  cutIdle: number;
  cutMidBody: number;
  refused: number;
  durationMs: number;
}

const POLL_MS = 20;

export function createGracefulShutdown(fetch: Fetch, options: GracefulShutdownOptions): GracefulShutdown {
  let draining = false;
  let refused = 0;
  const retryAfter = String(options.retryAfterSeconds ?? 5);
  // Handlers running, so the drain can wait for them even when their client has gone.
  const handling = new Set<Promise<unknown>>();
  const sockets = new Set<Socket>();
  // The request each connection is busy with, until its response is written (or the socket dies).
  const busy = new Map<Socket, IncomingMessage>();

  const refusal = () => {
    refused++;
    return new Response(
      JSON.stringify({ error: { code: SHUTTING_DOWN, message: 'this gateway process is shutting down; retry (another process, or this one after its restart)', retryable: true } }),
      { status: errorStatus(SHUTTING_DOWN), headers: { 'content-type': 'application/json', connection: 'close', 'retry-after': retryAfter } },
    );
  };

  const closing = (response: Response): Response => {
    // The client must not send its next request on a connection we are about to close.
    try {
      response.headers.set('connection', 'close');
      return response;
    } catch {
      // Immutable headers (a fetched Response passed through): copy them.
      const copy = new Response(response.body, response);
      copy.headers.set('connection', 'close');
      return copy;
    }
  };

  const trackedFetch: Fetch = (request, ...rest) => {
    if (draining) return refusal();
    const handled = Promise.resolve(fetch(request, ...rest)).then((response) => (draining ? closing(response) : response));
    const tracked: Promise<void> = handled.then(
      () => void handling.delete(tracked),
      () => void handling.delete(tracked),
    );
    handling.add(tracked);
    return handled;
  };

  return {
    fetch: trackedFetch,
    get draining() {
      return draining;
    },
    attach(server) {
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => {
          sockets.delete(socket);
          busy.delete(socket);
        });
      });
      server.on('request', (request: IncomingMessage, response: ServerResponse) => {
        busy.set(request.socket, request);
        response.once('close', () => {
          if (busy.get(request.socket) === request) busy.delete(request.socket);
        });
      });
    },
    async drain(server) {
      const started = Date.now();
      draining = true;
      // The listener only (see above); connections already open stay served.
      NetServer.prototype.close.call(server);
      const cutAt = started + options.graceMs;
      // Past the grace, a connection still open is one whose answer the client does not read.
      const giveUpAt = cutAt + options.graceMs;
      let cutIdle = 0;
      let cutMidBody = 0;
      let cut = false;
      while (sockets.size > 0 || handling.size > 0) {
        const now = Date.now();
        if (!cut && now >= cutAt) {
          cut = true;
          for (const socket of sockets) {
            const request = busy.get(socket);
            if (!request) {
              cutIdle++;
              socket.destroy();
            } else if (!request.complete) {
              // Its handler sees the body fail and finishes; no answer can reach a client still sending.
              cutMidBody++;
              socket.destroy();
            }
          }
        }
        if (cut && handling.size === 0) {
          for (const socket of sockets) if (!busy.has(socket) || now >= giveUpAt) socket.destroy();
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      return { cutIdle, cutMidBody, refused, durationMs: Date.now() - started };
    },
  };
}
