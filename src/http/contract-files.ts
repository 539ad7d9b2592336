import { parseEnv } from '../config/env.js';
import { EVENT_CATALOGUE, eventJsonSchema, eventSchemaFile } from '../events/event-schemas.js';
import { createApp } from './app.js';
import { buildOpenApiDocument } from './openapi.js';
import type { Deps } from '../deps.js';

/**
 * The committed contract files and their exact text. The document depends on route
 * declarations only, never on configuration, so an app built on inert deps serves it.
 */
export function contractFiles(): Record<string, string> {
  const deps = { env: parseEnv({}), logger: undefined, providers: {} } as unknown as Deps;
  const document = buildOpenApiDocument(createApp(deps));
  const files: Record<string, string> = { 'openapi.json': `${JSON.stringify(document, null, 2)}\n` };
  for (const entry of EVENT_CATALOGUE) {
    const text = `${JSON.stringify(eventJsonSchema(entry.type), null, 2)}\n`;
    files[`schemas/events/${eventSchemaFile(entry.type)}`] = text;
    // The consumer package ships the same files (it has no dependency on the gateway).
    files[`packages/consumer/schemas/${eventSchemaFile(entry.type)}`] = text;
  }
  return files;
}
