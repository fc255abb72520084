import { describe, expect, it } from 'vitest';
import { errorMessage, errorStack } from './error-message.ts';

describe('errorMessage', () => {
  it('gives the message of an Error, of an object with one, and the string of anything else', () => {
    expect(errorMessage(new TypeError('bad value'))).toBe('bad value');
    expect(errorMessage(new Error(''))).toBe('Error');
    expect(errorMessage({ message: 'from a plain object' })).toBe('from a plain object');
    expect(errorMessage('a thrown string')).toBe('a thrown string');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(null)).toBe('null');
  });

  it('keeps stacks for logs only: an Error has one, anything else falls back to its message', () => {
    expect(errorStack(new Error('boom'))).toMatch(/^Error: boom\n\s+at /);
    expect(errorStack('plain')).toBe('plain');
  });

  it('follows the cause chain for the log, so a wrapped internal error is not lost', () => {
    const inner = new Error('Concat node: axis 3 has 9 and 10');
    const outer = new Error('the model failed while generating', { cause: new Error('stage decode', { cause: inner }) });
    const stack = errorStack(outer);
    expect(stack).toMatch(/^Error: the model failed while generating/);
    expect(stack).toContain('caused by: Error: stage decode');
    expect(stack).toContain('caused by: Error: Concat node: axis 3 has 9 and 10');
    expect(errorMessage(outer)).toBe('the model failed while generating');
  });
});
