/**
 * One HTTP GET whose whole answer is read as text: the shape of the provider reads on a
 * webhook's hot path (src/providers/mollie/direct-get.ts). Two transports give it:
 *
 * - `fetchPlainGet`: the platform's `fetch`. Works everywhere, Workers included.
 * - `nodePlainGet` (src/providers/plain-get-node.ts): Node's own `http`/`https` with a
 *   keep-alive agent. `fetch` in Node (undici) builds a Request, Headers, an AbortSignal
 *   chain and a web stream for every call; on a 2-core machine that was 3x the CPU of
 *   the same GET through `node:http` (bench/RESULTS.md). The Node entry uses it.
 *
 * Both read the body inside the caller's signal, so a timed-out call lets go of its
 * socket, and both fail with the transport's own error (its `code`, or a cause with one)
 * for describeTransportFailure.
 */
export interface PlainResponse {
  status: number;
  statusText: string;
  /** A response header by its lower-case name, or null. */
  header(name: string): string | null;
  body: string;
}

export type PlainGet = (url: string, headers: Record<string, string>, signal: AbortSignal) => Promise<PlainResponse>;

export function fetchPlainGet(fetcher: typeof fetch): PlainGet {
  return async (url, headers, signal) => {
    const response = await fetcher(url, { headers, signal });
    const body = await response.text();
    return { status: response.status, statusText: response.statusText, header: (name) => response.headers.get(name), body };
  };
}
