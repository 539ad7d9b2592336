/**
 * `npm run contract`: writes the published contract from the code that serves it:
 * openapi.json (the document GET /openapi.json serves) and schemas/events/<type>.json
 * (each event type's JSON Schema). `--check` writes nothing and exits 1 when a committed
 * file differs (tests/integration/openapi.test.ts checks the same).
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contractFiles } from '../http/contract-files.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const check = process.argv.includes('--check');

const files = contractFiles();
let stale = 0;
for (const [path, text] of Object.entries(files)) {
  const target = join(root, path);
  const current = await readFile(target, 'utf8').catch(() => null);
  if (current === text) continue;
  stale++;
  if (check) console.error(`out of date: ${path}`);
  else {
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text);
    console.log(`wrote ${path}`);
  }
}
const expected = new Set(Object.keys(files).filter((path) => path.startsWith('schemas/events/')).map((path) => path.slice('schemas/events/'.length)));
for (const name of await readdir(join(root, 'schemas', 'events')).catch(() => [] as string[])) {
  if (!expected.has(name)) {
    stale++;
    console.error(`no longer generated (delete it): schemas/events/${name}`);
  }
}
if (check && stale > 0) process.exit(1);
console.log(stale === 0 ? 'contract files are up to date' : check ? '' : `${stale} file(s) updated`);
