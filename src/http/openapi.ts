/**
 * The OpenAPI document of the HTTP API, generated from the routes' own declarations.
 *
 * Every route is declared with `createRoute` (its zod schemas for params, query and body,
 * and its responses) and registered with `app.openapi(route, handler)` on an OpenAPIHono
 * router: the same schema objects validate the request and describe it in the document.
 * Outbound events are described in the document's `webhooks` section from the schemas in
 * src/events/event-schemas.ts. `npm run contract` writes openapi.json and
 * schemas/events/*.json from here; a test checks the committed files equal what is served.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { EVENT_CATALOGUE, eventJsonSchema, eventSchemaName } from '../events/event-schemas.js';
import { ErrorBody } from './api-schemas.js';
import type { AppEnv } from './middleware.js';
import { validationHook } from './validation.js';

export const API_TITLE = 'Payment webhook gateway';
export const API_VERSION = '1.0.0';

/** An OpenAPIHono router whose failed validations answer with this API's error body. */
export function newApiRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

export const BEARER = [{ bearerAuth: [] }];

export function json<T extends z.ZodType>(description: string, schema: T) {
  return { description, content: { 'application/json': { schema } } };
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad input (`bad_request`; validation errors list each problem in `details`)',
  401: 'Missing or wrong bearer token (`unauthorized`), or a bad webhook signature',
  403: 'Refused',
  404: 'No such payment, provider, account or resource',
  405: 'The path exists but not with this method (`method_not_allowed`; see `Allow`)',
  409: 'This payment is being synced by another trigger (`payment_busy`, retryable)',
  413: 'Body too large (`payload_too_large`)',
  415: 'Wrong Content-Type (`unsupported_media_type`)',
  498: 'GoCardless webhook signature missing or invalid (GoCardless\'s documented answer)',
  502: 'The provider failed (`provider_*`; `retryable` says whether to try again)',
  503: 'Database unreachable, provider rate-limited, or the admin API disabled',
};

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying (on every retryable 5xx)', schema: { type: 'integer' as const } },
};

/** The error responses a route can give, all with the one error body. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: ERROR_DESCRIPTIONS[status] ?? 'Error', content: { 'application/json': { schema: ErrorBody } }, ...(status >= 500 ? { headers: RETRY_AFTER } : {}) },
    ]),
  );
}

export const pageCursor = z
  .string()
  .max(200)
  .optional()
  .meta({ description: "Opaque: the previous page's `nextCursor`. Omit for the first page." });

const DESCRIPTION = `Idempotent ingestion gateway for Mollie and GoCardless payment webhooks.

Every route under \`/v1\` needs \`Authorization: Bearer <ADMIN_TOKEN>\`. Every error has the body
\`{"error": {"code", "message", "retryable", "requestId", "details?"}}\`; every response carries
\`x-request-id\`; every retryable 5xx carries \`Retry-After\`. Unknown query parameters on \`/v1\`
routes answer 400 naming them; a known path with another method answers 405 with \`Allow\`.

List routes page with \`cursor\` (pass the previous answer's \`nextCursor\`).

Outbound events (signed HTTP per Standard Webhooks, a Redis Stream, and \`GET /v1/events\`) are
described in the \`webhooks\` section: one entry per event type, with the JSON Schema of the event.`;

/** The whole document: the declared routes plus every event type as a webhook. */
export function buildOpenApiDocument(app: OpenAPIHono<AppEnv>) {
  const document = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: { title: API_TITLE, version: API_VERSION, description: DESCRIPTION },
    servers: [{ url: '/', description: 'This gateway' }],
    tags: [
      { name: 'Payments', description: 'The one row per payment' },
      { name: 'Accounts', description: 'Provider accounts (merchants): credentials checked and encrypted at rest' },
      { name: 'Events', description: 'The outbound event feed, dead letters and sinks' },
      { name: 'Provider webhooks', description: 'Where Mollie and GoCardless post' },
      { name: 'Operations', description: 'Health, readiness, metrics, this document' },
      { name: 'Operator console', description: 'Server-rendered HTML pages for operators (session cookie)' },
    ],
  });
  const schemas: Record<string, unknown> = { ...document.components?.schemas };
  const webhooks: Record<string, unknown> = {};
  for (const entry of EVENT_CATALOGUE) {
    const name = eventSchemaName(entry.type);
    const { $schema: _dialect, $id: _id, ...schema } = eventJsonSchema(entry.type);
    schemas[name] = schema;
    webhooks[entry.type] = {
      post: {
        summary: entry.summary,
        description: `${entry.description}\n\nDelivered signed (Standard Webhooks headers \`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`), on the Redis Stream and on \`GET /v1/events\`. At least once: de-duplicate on \`id\`${entry.versioned ? '; discard a payment event whose `data.version` is older than the one you hold' : ''}.`,
        tags: [entry.type.split('.')[0]],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } },
        responses: {
          '2XX': { description: 'Delivered' },
          '410': { description: 'Disables the sink until re-enabled' },
          default: { description: 'Any other answer or a timeout is retried' },
        },
      },
    };
  }
  return {
    ...document,
    components: {
      ...document.components,
      schemas,
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } },
    },
    webhooks,
  };
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;
