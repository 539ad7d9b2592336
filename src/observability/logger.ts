import pino, { type Logger } from 'pino';

/** Field paths that may carry secrets or personal data; pino replaces them before writing. */
const REDACT = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'apiKey',
  '*.apiKey',
  'accessToken',
  '*.accessToken',
  'secret',
  '*.secret',
  'password',
  '*.password',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: undefined, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

export type { Logger };
