import type { Context } from 'hono';
import { z } from 'zod';
import { AppError, badRequest } from './errors.js';

export function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, string>): z.infer<T> {
  const result = schema.safeParse(query);
  if (!result.success) throw badRequest(describe(result.error), result.error.issues.map(issueSummary));
  return result.data;
}

export async function parseJsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new AppError(415, 'unsupported_media_type', 'expected Content-Type: application/json');
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('body is not valid JSON');
  }
}

export function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
}

function issueSummary(issue: z.core.$ZodIssue) {
  return { path: issue.path.join('.'), message: issue.message };
}
