import type { Context, MiddlewareHandler } from 'hono';
import type { Hook } from '@hono/zod-openapi';
import { z } from 'zod';
import { PROVIDERS } from '../providers/types.js';
import { AppError, badRequest } from './errors.js';
import type { ErrorCode } from './error-codes.js';

export function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, string>): z.infer<T> {
  const result = schema.safeParse(query);
  if (!result.success) throw badRequest(describe(result.error), result.error.issues.map(issueSummary));
  return result.data;
}

export async function parseJsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new AppError('unsupported_media_type', 'expected Content-Type: application/json');
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('body is not valid JSON');
  }
}

/**
 * Runs in front of a route's declared JSON body validator: answers 415 for another content
 * type and 400 for unparseable JSON with this API's error body (the validator would
 * answer with its own). The parsed text stays cached for the validator.
 */
export const requireJsonBody: MiddlewareHandler = async (c, next) => {
  await parseJsonBody(c);
  await next();
};

export function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
}

function issueSummary(issue: z.core.$ZodIssue) {
  return { path: issue.path.join('.'), message: issue.message };
}

/**
 * Path parameters whose bad value means "no such thing" (404) rather than a malformed
 * request (400). Any other parameter's first issue message is the 400's message.
 */
const NOT_FOUND_PARAMS: Record<string, { code: ErrorCode; message: (value: unknown) => string }> = {
  provider: { code: 'unknown_provider', message: (value) => `unknown provider ${JSON.stringify(value)}; expected one of ${PROVIDERS.join(', ')}` },
};

function unknownKeys(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => (issue.code === 'unrecognized_keys' ? issue.keys : []));
}

/**
 * What a failed declared validation answers, for every route (OpenAPIHono's defaultHook):
 * the same error bodies the routes gave when they parsed by hand.
 */
export function validationError(target: string, error: z.ZodError, input: unknown): AppError {
  if (target === 'param') {
    const issue = error.issues[0]!;
    const name = String(issue.path[0] ?? '');
    const notFound = NOT_FOUND_PARAMS[name];
    if (notFound) return new AppError(notFound.code, notFound.message((input as Record<string, unknown>)[name]));
    return badRequest(issue.message);
  }
  if (target === 'query') {
    const unknown = unknownKeys(error);
    if (unknown.length > 0) {
      const names = unknown.map((key) => JSON.stringify(key)).join(', ');
      return badRequest(
        `unknown query parameter${unknown.length > 1 ? 's' : ''} ${names}`,
        unknown.map((key) => ({ path: key, message: 'unknown query parameter' })),
      );
    }
  }
  return badRequest(describe(error), error.issues.map(issueSummary));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the hook is shared by every route, whatever its input type.
export const validationHook: Hook<any, any, any, any> = (result, _c) => {
  if (!result.success) throw validationError(result.target, result.error as z.ZodError, (result as { data?: unknown }).data);
};
