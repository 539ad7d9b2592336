/**
 * The plain GET over Node's `http`/`https` (see plain-get.ts for why): one keep-alive
 * agent per protocol, the caller's signal ending the request and its body read alike.
 * No compression is asked for (a payment is a few KB; inflating it costs more CPU than
 * it saves), but a compressed answer is decoded.
 *
 * A kept-alive socket the server closed while it sat idle fails the next request sent on
 * it before any byte comes back (ECONNRESET or "socket hang up"). Such a request never
 * reached the provider, so it is sent again at once on a fresh socket, once; every
 * other failure is the caller's to retry on its own schedule.
 */
import http from 'node:http';
import https from 'node:https';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { PlainGet, PlainResponse } from './plain-get.js';

export interface NodePlainGetOptions {
  /** Sockets per origin at most (default 64). */
  maxSockets?: number;
  /** An idle socket is closed after this long (default 4000 ms): before a server would close it under us. */
  idleMs?: number;
}

export function nodePlainGet(options: NodePlainGetOptions = {}): PlainGet {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64, timeout: options.idleMs ?? 4000, scheduling: 'lifo' as const };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };

  function once(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<PlainResponse & { staleSocket?: boolean }> {
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));
    const send = secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      let answered = false;
      const request = send(url, { agent: agents[url.protocol as 'http:' | 'https:'], headers, signal }, (response) => {
        answered = true;
        const encoding = String(response.headers['content-encoding'] ?? '').trim().toLowerCase();
        let stream: Readable = response;
        if (encoding === 'gzip' || encoding === 'x-gzip') stream = response.pipe(createGunzip());
        else if (encoding === 'deflate') stream = response.pipe(createInflate());
        else if (encoding === 'br') stream = response.pipe(createBrotliDecompress());
        if (stream !== response) response.on('error', (error) => stream.destroy(error));
        stream.setEncoding('utf8');
        let body = '';
        stream.on('data', (chunk: string) => (body += chunk));
        stream.on('error', reject);
        // A body cut off (the caller's signal, a reset) closes without completing.
        response.on('close', () => {
          if (!response.complete) reject(Object.assign(new Error('the response was cut off before its end'), { code: 'ECONNRESET' }));
        });
        stream.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? '',
            header: (name) => {
              const value = response.headers[name];
              return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
            },
            body,
          }),
        );
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        const stale = !answered && request.reusedSocket && !signal.aborted && (error.code === 'ECONNRESET' || error.message === 'socket hang up');
        if (stale) resolve({ status: 0, statusText: '', header: () => null, body: '', staleSocket: true });
        else reject(error);
      });
      request.end();
    });
  }

  return async (url, headers, signal) => {
    const target = new URL(url);
    const first = await once(target, headers, signal);
    if (!first.staleSocket) return first;
    const second = await once(target, headers, signal);
    if (second.staleSocket) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    return second;
  };
}
