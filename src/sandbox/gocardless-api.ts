/**
 * The GoCardless sandbox's entry point, kept where its importers expect it; the sandbox
 * itself lives in ./gocardless/ (server.ts assembles it).
 */
export * from './gocardless/state.js';
export { startGoCardlessSandbox, type GoCardlessSandbox, type GoCardlessSandboxOptions } from './gocardless/server.js';
