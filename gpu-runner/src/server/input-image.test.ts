import { describe, expect, it } from 'vitest';
import { isPrivateAddress, loadInputImage, privateUrlProblem } from './input-image.ts';

/** example.com resolved without DNS (the test machine has none), to a public address. */
const limits = { maxBytes: 16, timeoutMs: 200, resolveHost: async () => ['93.184.215.14'] };

describe('loadInputImage', () => {
  it('decodes a data URI and enforces the size cap', async () => {
    const bytes = await loadInputImage('image', `data:image/png;base64,${Buffer.from('0123456789').toString('base64')}`, limits);
    expect(Buffer.from(bytes).toString()).toBe('0123456789');
    await expect(loadInputImage('mask', `data:image/png;base64,${Buffer.alloc(17).toString('base64')}`, limits)).rejects.toThrow(
      'mask must be at most 16 bytes, got 17',
    );
  });

  it('refuses non-https URLs, oversized and slow responses', async () => {
    await expect(loadInputImage('image', 'http://example.com/a.png', limits)).rejects.toThrow(/https URL/);
    const big: typeof fetch = async () => new Response(new Uint8Array(40));
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, big)).rejects.toThrow(
      /at most 16 bytes/,
    );
    const slow: typeof fetch = (_url, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, slow)).rejects.toThrow(
      'image could not be fetched within 200 ms from example.com',
    );
    const missing: typeof fetch = async () => new Response('no', { status: 404 });
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, missing)).rejects.toThrow(/HTTP 404/);
  });

  it('refuses loopback, private and link-local hosts, literal, resolved or redirected to, unless allowed', async () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '0.0.0.0',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['93.184.215.14', '172.32.0.1', '2606:4700::1', '8.8.8.8']) expect(isPrivateAddress(a), a).toBe(false);
    expect(privateUrlProblem('image', 'https://[::1]/a.png')).toMatch(/image must not point to a loopback.*got host \[::1\]/);
    expect(privateUrlProblem('mask', 'https://0x7f.1/a.png')).toMatch(/got host 127\.0\.0\.1/);
    expect(privateUrlProblem('image', 'https://localhost/a.png')).toMatch(/localhost/);
    expect(privateUrlProblem('image', 'https://example.com/a.png')).toBeNull();

    const ok: typeof fetch = async () => new Response(new Uint8Array(4));
    await expect(loadInputImage('image', 'https://127.0.0.1/a.png', limits, undefined, ok)).rejects.toThrow(
      /image must not point to a loopback/,
    );
    const rebinding = { ...limits, resolveHost: async () => ['93.184.215.14', '10.0.0.7'] };
    await expect(loadInputImage('mask', 'https://evil.test/a.png', rebinding, undefined, ok)).rejects.toThrow(
      /evil\.test resolves to 10\.0\.0\.7/,
    );
    const redirect: typeof fetch = async () =>
      new Response(null, { status: 302, headers: { location: 'https://169.254.169.254/latest/meta-data' } });
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, redirect)).rejects.toThrow(
      /got host 169\.254\.169\.254/,
    );
    const toHttp: typeof fetch = async () =>
      new Response(null, { status: 301, headers: { location: 'http://example.com/b.png' } });
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, toHttp)).rejects.toThrow(/https URL/);
    expect(
      await loadInputImage('image', 'https://127.0.0.1/a.png', { ...limits, allowPrivateAddresses: true }, undefined, ok),
    ).toHaveLength(4);
  });
});
