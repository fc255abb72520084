// urls.stream capabilities: bound to one prediction and an expiry carried in the token.
import { describe, expect, it } from 'vitest';
import { streamToken, verifyStreamToken } from './stream-token.ts';

const SECRET = 'stream-secret';

describe('stream tokens', () => {
  it('verify for their prediction until they expire, then never again', async () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    const token = await streamToken(SECRET, 'abc', now + 3600_000);
    expect(await verifyStreamToken(SECRET, 'abc', token, now)).toBe(true);
    expect(await verifyStreamToken(SECRET, 'abc', token, now + 3599_000)).toBe(true);
    expect(await verifyStreamToken(SECRET, 'abc', token, now + 3600_000)).toBe(false);
  });

  it('refuse another prediction, another secret, an edited expiry and old tokens without one', async () => {
    const now = Date.now();
    const token = await streamToken(SECRET, 'abc', now + 60_000);
    expect(await verifyStreamToken(SECRET, 'abd', token, now)).toBe(false);
    expect(await verifyStreamToken('other', 'abc', token, now)).toBe(false);
    const [expiry, mac] = token.split('.');
    const later = (Number.parseInt(expiry, 36) + 86_400).toString(36);
    expect(await verifyStreamToken(SECRET, 'abc', `${later}.${mac}`, now)).toBe(false);
    expect(await verifyStreamToken(SECRET, 'abc', mac, now)).toBe(false);
  });
});
