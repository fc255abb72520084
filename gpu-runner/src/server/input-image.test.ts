import { describe, expect, it } from 'vitest';
import { loadInputImage } from './input-image.ts';

const limits = { maxBytes: 16, timeoutMs: 200 };

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
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, big)).rejects.toThrow(/at most 16 bytes/);
    const slow: typeof fetch = (_url, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, slow)).rejects.toThrow(
      'image could not be fetched within 200 ms from example.com',
    );
    const missing: typeof fetch = async () => new Response('no', { status: 404 });
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, missing)).rejects.toThrow(/HTTP 404/);
  });
});
