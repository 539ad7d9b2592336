/**
 * Checks events the gateway really produced against the published JSON Schemas
 * (schemas/events/*.json, as committed) and against their closed form (no field the
 * schema does not name), so neither a wrong field nor an undocumented one gets through.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import postgres from 'postgres';
import { expect } from 'vitest';
import { catalogueEntryFor, eventJsonSchema, eventSchemaFile } from '../../src/events/event-schemas.js';

const ajv = new Ajv2020({ strict: false, allErrors: true });
const compiled = new Map<string, { open: ValidateFunction; closed: ValidateFunction }>();

function validatorsFor(type: string) {
  const entry = catalogueEntryFor(type);
  if (!entry) return undefined;
  let validators = compiled.get(entry.type);
  if (!validators) {
    const published = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'schemas', 'events', eventSchemaFile(entry.type)), 'utf8'));
    validators = { open: ajv.compile(published), closed: ajv.compile(eventJsonSchema(entry.type, { closed: true })) };
    compiled.set(entry.type, validators);
  }
  return validators;
}

/** Problems with one event; empty when it matches its type's schema. */
export function eventContractProblems(event: { type: string; data?: unknown }): string[] {
  const validators = validatorsFor(event.type);
  if (!validators) return [`${event.type}: no schema in the event catalogue`];
  const problems: string[] = [];
  for (const [name, validate] of Object.entries(validators)) {
    if (!validate(event as unknown)) problems.push(...(validate.errors ?? []).map((error) => `${event.type} (${name}): ${error.instancePath || '/'} ${error.message} ${JSON.stringify(error.params)}`));
  }
  return problems;
}

/**
 * Validates every event in a test database's outbox; returns how many there were and the
 * types seen, so the caller can assert the check was not vacuous.
 */
export async function checkOutboxAgainstSchemas(databaseUrl: string): Promise<{ count: number; types: Set<string>; problems: string[] }> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ payload: { type: string } & Record<string, unknown> }[]>`select payload from outbox order by id`;
    const problems = rows.flatMap((row) => eventContractProblems(row.payload));
    return { count: rows.length, types: new Set(rows.map((row) => row.payload.type)), problems: [...new Set(problems)].slice(0, 20) };
  } finally {
    await sql.end();
  }
}

/** The afterAll of a scenario file: its outbox matches the schemas, and holds these types. */
export async function expectOutboxMatchesSchemas(databaseUrl: string, types: string[] = []): Promise<void> {
  const checked = await checkOutboxAgainstSchemas(databaseUrl);
  expect(checked.problems).toEqual([]);
  expect(checked.count).toBeGreaterThan(0);
  for (const type of types) expect(checked.types).toContain(type);
}
