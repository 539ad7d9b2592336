/**
 * GET /docs: the API reference as one server-rendered page, generated from the OpenAPI
 * document at request time. Self-contained: no script, no CDN, one stylesheet allowed
 * by its hash (the console's CSP style).
 */
import { createHash } from 'node:crypto';
import type { Child } from 'hono/jsx';
import { raw } from 'hono/html';
import type { OpenApiDocument } from './openapi.js';

const CSS = `
body { font: 14px/1.5 system-ui, sans-serif; margin: 0; color: #1d2430; background: #fafbfc; }
main { max-width: 980px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 36px; border-bottom: 1px solid #d8dee6; padding-bottom: 4px; }
section.op { background: #fff; border: 1px solid #d8dee6; border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
.method { display: inline-block; min-width: 56px; font-weight: 700; font-family: ui-monospace, monospace; }
.path { font-family: ui-monospace, monospace; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; } td, th { text-align: left; padding: 3px 8px; border-top: 1px solid #eef1f4; vertical-align: top; }
code, pre { font-family: ui-monospace, monospace; font-size: 12px; } pre { background: #f3f5f8; padding: 8px; overflow: auto; max-height: 420px; }
.muted { color: #5b6675; } .deprecated { text-decoration: line-through; }
nav a { margin-right: 12px; }
`;

export const REFERENCE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'`,
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

type Json = Record<string, unknown>;

function Schema({ schema }: { schema: unknown }) {
  if (!schema) return null;
  return (
    <details>
      <summary>Schema</summary>
      <pre>{JSON.stringify(schema, null, 2)}</pre>
    </details>
  );
}

function Operation({ method, path, op }: { method: string; path: string; op: Json }) {
  const parameters = (op.parameters as Json[] | undefined) ?? [];
  const body = op.requestBody as Json | undefined;
  const responses = (op.responses as Record<string, Json> | undefined) ?? {};
  return (
    <section class="op" id={`${method}-${path}`}>
      <div>
        <span class="method">{method.toUpperCase()}</span> <span class="path">{path}</span>
        {op.security ? <span class="muted"> · bearer token</span> : null}
      </div>
      {op.summary ? <p>{String(op.summary)}</p> : null}
      {op.description ? <p class="muted">{String(op.description)}</p> : null}
      {parameters.length > 0 ? (
        <table>
          <tr><th>Parameter</th><th>In</th><th>Schema</th><th>Description</th></tr>
          {parameters.map((parameter) => (
            <tr>
              <td class={(parameter.schema as Json | undefined)?.deprecated ? 'deprecated' : ''}><code>{String(parameter.name)}</code>{parameter.required ? ' *' : ''}</td>
              <td>{String(parameter.in)}</td>
              <td><code>{JSON.stringify(parameter.schema)}</code></td>
              <td>{String(parameter.description ?? (parameter.schema as Json | undefined)?.description ?? '')}</td>
            </tr>
          ))}
        </table>
      ) : null}
      {body ? (
        <div>
          <strong>Body</strong> {Object.keys((body.content as Json) ?? {}).map((type) => <code>{type} </code>)}
          {Object.values((body.content as Record<string, Json>) ?? {}).map((media) => <Schema schema={media.schema} />)}
        </div>
      ) : null}
      <table>
        <tr><th>Status</th><th>Description</th></tr>
        {Object.entries(responses).map(([status, response]) => (
          <tr><td><code>{status}</code></td><td>{String(response.description ?? '')}</td></tr>
        ))}
      </table>
    </section>
  );
}

export function ReferencePage({ document }: { document: OpenApiDocument }) {
  const paths = Object.entries(document.paths ?? {}) as Array<[string, Record<string, Json>]>;
  const webhooks = Object.entries(document.webhooks) as Array<[string, Record<string, Json>]>;
  const schemas = (document.components?.schemas ?? {}) as Record<string, unknown>;
  const operations: Child[] = [];
  for (const [path, item] of paths) {
    for (const [method, op] of Object.entries(item)) operations.push(<Operation method={method} path={path} op={op} />);
  }
  return (
    <>
    {raw('<!doctype html>')}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>{document.info.title} · API reference</title>
        <style dangerouslySetInnerHTML={{ __html: CSS }} />
      </head>
      <body>
        <main>
          <h1>{document.info.title} <span class="muted">API {document.info.version}</span></h1>
          <nav><a href="/openapi.json">openapi.json</a><a href="#routes">Routes</a><a href="#events">Events</a></nav>
          <pre>{document.info.description ?? ''}</pre>
          <h2 id="routes">Routes</h2>
          {operations}
          <h2 id="events">Events (webhooks)</h2>
          {webhooks.map(([type, item]) => {
            const op = item.post!;
            const ref = (((op.requestBody as Json).content as Record<string, Json>)['application/json']!.schema as Json).$ref as string;
            return (
              <section class="op" id={`event-${type}`}>
                <div><span class="path">{type}</span></div>
                <p>{String(op.summary ?? '')}</p>
                <p class="muted">{String(op.description ?? '')}</p>
                <Schema schema={schemas[ref.split('/').at(-1)!]} />
              </section>
            );
          })}
        </main>
      </body>
    </html>
    </>
  );
}
