#!/usr/bin/env node
/**
 * Transpiles src/ to plain ES modules in dist/, file by file with the TypeScript compiler
 * (no type check: `npm run typecheck` does that; no bundling: the same modules tsx would
 * load). `npm start` and the Dockerfile run the result with plain node, which starts in
 * about a second instead of three and leaves tsx's loader thread and esbuild out of the
 * gateway's memory.
 *
 *   node scripts/build.mjs                       # src/ -> dist/
 *   node scripts/build.mjs --src DIR --out DIR   # another tree (the benchmark measures old commits this way)
 *
 * dist/ mirrors src/ (dist/node.js is src/node.ts), so `../drizzle` from dist/node.js is
 * the same migrations folder as from src/node.ts.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function sourceFiles(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(full)));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Builds `srcDir` into `outDir` (emptied first); returns how many files and how long it took. */
export async function build({ srcDir = path.join(ROOT, 'src'), outDir = path.join(ROOT, 'dist') } = {}) {
  const started = performance.now();
  await rm(outDir, { recursive: true, force: true });
  const compilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ES2022,
    jsx: ts.JsxEmit.ReactJSX,
    jsxImportSource: 'hono/jsx',
    esModuleInterop: true,
    sourceMap: true,
  };
  const files = await sourceFiles(srcDir);
  for (const file of files) {
    const out = ts.transpileModule(await readFile(file, 'utf8'), { compilerOptions, fileName: file });
    const target = path.join(outDir, path.relative(srcDir, file).replace(/\.tsx?$/, '.js'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, out.outputText);
    if (out.sourceMapText) await writeFile(`${target}.map`, out.sourceMapText);
  }
  return { files: files.length, ms: Math.round(performance.now() - started) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const index = process.argv.indexOf(name);
    return index === -1 ? undefined : path.resolve(process.argv[index + 1]);
  };
  const srcDir = arg('--src') ?? path.join(ROOT, 'src');
  const outDir = arg('--out') ?? path.join(ROOT, 'dist');
  const { files, ms } = await build({ srcDir, outDir });
  process.stderr.write(`build: ${files} files from ${path.relative(process.cwd(), srcDir) || '.'} to ${path.relative(process.cwd(), outDir) || '.'} in ${ms} ms\n`);
}
