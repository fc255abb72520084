import { describe, expect, it } from 'vitest';
import { MAX_WAIT_SECONDS, parsePrefer } from './prefer.ts';

describe('Prefer', () => {
  it.each([
    [undefined, null],
    ['', null],
    ['wait', MAX_WAIT_SECONDS],
    ['wait=5', 5],
    ['wait=600', MAX_WAIT_SECONDS],
    ['wait=0', 1],
    ['return=minimal, wait=10', 10],
    ['wait="7"', 7],
    ['WAIT = 3', 3],
    ['waiting=3', null],
  ])('%j waits %j seconds', (header, seconds) => expect(parsePrefer(header).waitSeconds).toBe(seconds));

  it('reads respond-async beside other preferences, and not inside another word', () => {
    expect(parsePrefer('respond-async')).toEqual({ respondAsync: true, waitSeconds: null });
    expect(parsePrefer('return=minimal; respond-async, wait=4')).toEqual({ respondAsync: true, waitSeconds: 4 });
    expect(parsePrefer('x-respond-async').respondAsync).toBe(false);
  });
});
