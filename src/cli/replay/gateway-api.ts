/**
 * The gateway's own admin API, as the replay reads it to check what the gateway did:
 * `GET /v1/payments/:provider/:id` and the pull API `GET /v1/events`.
 */
export interface GatewayMoney {
  value: string;
  currency: string;
  minor: number;
}

export interface GatewayPayment {
  provider: string;
  id: string;
  status: string;
  providerStatus: string;
  amount: GatewayMoney;
  amountRefunded?: GatewayMoney;
  amountChargedBack?: GatewayMoney;
  version: number;
}

export interface FeedEvent {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

export class GatewayApiError extends Error {
  override readonly name = 'GatewayApiError';
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

export interface GatewayApi {
  getPayment(provider: string, id: string): Promise<GatewayPayment | null>;
  /** Every event of one payment, in feed order. */
  paymentEvents(provider: string, id: string): Promise<FeedEvent[]>;
  /** Every event of a provider, in feed order (GoCardless forwarded events carry no payment id). */
  providerEvents(provider: string): Promise<FeedEvent[]>;
  /** Every event of one type, in feed order. */
  typeEvents(type: string): Promise<FeedEvent[]>;
  /** POST /v1/payments/:provider/:id/sync URL (the return page). */
  syncUrl(provider: string, id: string, account: string): string;
  authHeaders: Record<string, string>;
}

const PAGE = 1000;
/** A feed longer than this for one query is not something a replay should walk. */
const MAX_EVENTS = 200_000;

export function createGatewayApi(baseUrl: string, adminToken: string): GatewayApi {
  const base = baseUrl.replace(/\/+$/, '');
  const authHeaders = { Authorization: `Bearer ${adminToken}` };

  async function getJson<T>(path: string): Promise<{ status: number; body: T | null }> {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, { headers: authHeaders, signal: AbortSignal.timeout(15_000) });
    } catch (error) {
      throw new GatewayApiError(`GET ${path}: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`, null);
    }
    const text = await response.text();
    if (response.status === 404) return { status: 404, body: null };
    if (!response.ok) throw new GatewayApiError(`GET ${path}: ${response.status} ${text.slice(0, 300)}`, response.status);
    try {
      return { status: response.status, body: JSON.parse(text) as T };
    } catch {
      throw new GatewayApiError(`GET ${path}: answer is not JSON`, response.status);
    }
  }

  async function feed(query: URLSearchParams): Promise<FeedEvent[]> {
    const events: FeedEvent[] = [];
    let after: string | null = null;
    for (;;) {
      const params = new URLSearchParams(query);
      params.set('limit', String(PAGE));
      if (after) params.set('after', after);
      const { body } = await getJson<{ data: FeedEvent[]; nextCursor: string | null }>(`/v1/events?${params.toString()}`);
      if (!body || !Array.isArray(body.data)) throw new GatewayApiError('GET /v1/events: no data array', null);
      events.push(...body.data);
      // The feed never ends: an empty page (or a short one) means we are at its head.
      if (body.data.length < PAGE || !body.nextCursor || body.nextCursor === after) return events;
      if (events.length > MAX_EVENTS) throw new GatewayApiError(`GET /v1/events: more than ${MAX_EVENTS} events for ${query.toString()}`, null);
      after = body.nextCursor;
    }
  }

  return {
    authHeaders,
    async getPayment(provider, id) {
      const { body } = await getJson<GatewayPayment>(`/v1/payments/${encodeURIComponent(provider)}/${encodeURIComponent(id)}`);
      return body;
    },
    paymentEvents: (provider, id) => feed(new URLSearchParams({ provider, paymentId: id })),
    providerEvents: (provider) => feed(new URLSearchParams({ provider })),
    typeEvents: (type) => feed(new URLSearchParams({ type })),
    syncUrl: (provider, id, account) =>
      `${base}/v1/payments/${encodeURIComponent(provider)}/${encodeURIComponent(id)}/sync${account === 'default' ? '' : `?account=${encodeURIComponent(account)}`}`,
  };
}
