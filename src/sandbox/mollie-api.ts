/**
 * The Mollie sandbox's entry point, kept where its importers expect it; the sandbox itself
 * lives in ./mollie/ (server.ts assembles it).
 */
export * from './mollie/state.js';
export { mollieErrorBody } from './mollie/wire.js';
export { startMollieSandbox, type MollieSandbox, type MollieSandboxOptions } from './mollie/server.js';
export { SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET, SANDBOX_OAUTH_ORGANIZATION, type MollieSandboxOAuth } from './mollie/oauth.js';
