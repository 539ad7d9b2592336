import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../src/primitives/error-message.js';

describe('errorMessage', () => {
  it("takes an Error's message, a subclass's too, and writes anything else as text", () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage(new TypeError('bad type'))).toBe('bad type');
    expect(errorMessage('plain string')).toBe('plain string');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage({ message: 'not an Error' })).toBe('[object Object]');
  });
});
