import { errorMessage } from '@sd/shared/error-message';
import { describe, expect, it } from 'vitest';
import { type FetchImage, loadInputImage, privateUrlProblem } from './input-image.ts';

/** example.com resolved without DNS (the test machine has none), to a public address. */
const canned =
  (respond: (signal: AbortSignal) => Promise<Response>): FetchImage =>
  async (_url, signal) => ({ response: await respond(signal), redirects: 0 });
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
    const big = canned(async () => new Response(new Uint8Array(40)));
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, big)).rejects.toThrow(
      /at most 16 bytes/,
    );
    const slow = canned(
      (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    );
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, slow)).rejects.toThrow(
      'image could not be fetched within 200 ms from example.com',
    );
    const missing = canned(async () => new Response('no', { status: 404 }));
    await expect(loadInputImage('image', 'https://example.com/a.png', limits, undefined, missing)).rejects.toThrow(/HTTP 404/);
  });

  it("reads the runner's own outputs through its storage, never through the network; other loopback stays refused", async () => {
    // A fake storage holding one output (the real one: storage/s3-storage.test.ts and test/runner-http.test.ts).
    const own = 'http://127.0.0.1:9000/outputs/predictions/p1/0.png?X-Amz-Signature=abc';
    const reads: string[] = [];
    const ownOutputs = {
      ownOutputKey: (url: URL) => (url.href === own ? 'predictions/p1/0.png' : null),
      grantsRead: async () => true,
      readOutput: async (key: string) => {
        reads.push(key);
        return new Uint8Array([1, 2, 3]);
      },
    };
    const noNetwork: FetchImage = async () => {
      throw new Error('the network was used');
    };
    expect(Array.from(await loadInputImage('image', own, { ...limits, ownOutputs }, undefined, noNetwork))).toEqual([1, 2, 3]);
    expect(reads).toEqual(['predictions/p1/0.png']);
    expect(privateUrlProblem('image', own, ownOutputs)).toBeNull();
    const other = 'http://127.0.0.1:9000/outputs/secrets.png';
    expect(privateUrlProblem('image', other, ownOutputs)).toMatch(/loopback/);
    await expect(loadInputImage('image', other, { ...limits, ownOutputs }, undefined, noNetwork)).rejects.toThrow(/https URL/);
  });

  it('refuses loopback, private and link-local hosts, literal, resolved or redirected to, unless allowed', async () => {
    expect(privateUrlProblem('image', 'https://[::1]/a.png')).toMatch(/image must not point to a loopback.*got host \[::1\]/);
    expect(privateUrlProblem('mask', 'https://0x7f.1/a.png')).toMatch(/got host 127\.0\.0\.1/);
    expect(privateUrlProblem('image', 'https://localhost/a.png')).toMatch(/localhost/);
    expect(privateUrlProblem('image', 'https://example.com/a.png')).toBeNull();
    // The forms the outside review found passing the old block list.
    for (const host of ['[::127.0.0.1]', '[::ffff:0:127.0.0.1]', '[64:ff9b::127.0.0.1]', '[fd00:ec2::254]']) {
      expect(privateUrlProblem('image', `https://${host}/a.png`), host).toMatch(/image must not point to/);
      await expect(loadInputImage('image', `https://${host}/a.png`, limits)).rejects.toThrow(/image must not point to/);
    }
    // Names are checked where they are resolved: the guarded agent refuses before it connects (nothing listens).
    const resolvesInside = { ...limits, resolveHost: async () => ['93.184.215.14', '10.0.0.7'] };
    const err = await loadInputImage('mask', 'https://evil.test/a.png', resolvesInside).catch((e: Error) => e);
    expect(errorMessage(err)).toBe(
      'mask must not point to an internal address (ALLOW_PRIVATE_IMAGE_URLS is off): host evil.test resolves to a blocked address (private-use)',
    );
    const mapped = { ...limits, resolveHost: async () => ['64:ff9b::a9fe:a9fe'] };
    await expect(loadInputImage('image', 'https://evil.test/a.png', mapped)).rejects.toThrow(/cloud-metadata via nat64/);

    const ok = canned(async () => new Response(new Uint8Array(4)));
    expect(
      await loadInputImage('image', 'https://127.0.0.1/a.png', { ...limits, allowPrivateAddresses: true }, undefined, ok),
    ).toHaveLength(4);
  });
});
