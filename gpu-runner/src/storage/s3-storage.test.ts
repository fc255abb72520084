import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { errorMessage } from '@sd/shared/error-message';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3rverHandle, startS3rver } from '../../../scripts/stack/s3rver-process.ts';
import type { S3Config } from './s3-config.ts';
import { S3Storage } from './s3-storage.ts';

/**
 * An HTTP proxy on loopback in front of the real s3rver that records each request and can hold the responses to PUTs
 * back (a slow link or a storage that answers late). The request itself is forwarded at once and never aborted, so a
 * PUT whose client gave up still lands: the late write a deadline must clean up after.
 */
async function startProxy(target: string, holdPutResponseMs = 0) {
  const seen: string[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url?.split('?')[0]}`);
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const reply = () => {
          if (res.destroyed) return up.resume();
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        };
        if (req.method === 'PUT' && holdPutResponseMs > 0) setTimeout(reply, holdPutResponseMs);
        else reply();
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const object = (n: number) => ({
  bytes: new Uint8Array(n).map((_, i) => (i * 7) % 251),
  contentType: 'image/png',
  extension: 'png',
});

describe('S3Storage against s3rver', () => {
  let s3: S3rverHandle;
  let config: S3Config;
  beforeAll(async () => {
    s3 = await startS3rver('bucket-a');
    config = {
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: s3.bucket,
      forcePathStyle: true,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      presignExpiresSeconds: 60,
      timeoutMs: 3000,
    };
  });
  afterAll(() => s3?.stop());

  /** The keys under `prefix`, asked of s3rver directly (not through any proxy). */
  async function listed(prefix: string): Promise<string[]> {
    const direct = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const out = await direct.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key ?? '');
  }

  it('stores the exact bytes (no aws-chunked framing) under predictions/{id}/{index}.{ext}, presigned', async () => {
    const objects = [object(70_000), object(10)];
    const urls = await new S3Storage(config).storeOutputs('abc', objects);
    expect(urls[0]).toMatch(new RegExp(`^${s3.endpoint}/bucket-a/predictions/abc/0\\.png\\?.*X-Amz-Signature=`));
    for (const [i, url] of urls.entries()) {
      const res = await fetch(url);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(objects[i].bytes))).toBe(true);
    }
  });

  it("uploads a prediction's images in parallel and confirms each by its PUT alone (ETag = Content-MD5): no HEAD", async () => {
    const proxy = await startProxy(s3.endpoint);
    try {
      const objects = [object(9000), object(7000), object(8000), object(6000)];
      const urls = await new S3Storage({ ...config, endpoint: proxy.endpoint }).storeOutputs('quad', objects);
      expect(proxy.seen.sort()).toEqual([0, 1, 2, 3].map((i) => `PUT /bucket-a/predictions/quad/${i}.png`));
      for (const [i, url] of urls.entries()) {
        const res = await fetch(url.replace(proxy.endpoint, s3.endpoint));
        expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(objects[i].bytes)), `image ${i}`).toBe(true);
      }
    } finally {
      await proxy.close();
    }
  });

  it('an upload that misses S3_TIMEOUT_MS is aborted and leaves no object, not even one that lands late', async () => {
    // Every PUT reaches s3rver at once; its answer comes 1.2 s later, long after the 500 ms budget.
    const proxy = await startProxy(s3.endpoint, 1200);
    const logs: string[] = [];
    try {
      const storage = new S3Storage({ ...config, endpoint: proxy.endpoint, timeoutMs: 500 }, (m) => logs.push(m));
      const started = Date.now();
      const err = await storage.storeOutputs('late', [object(5000), object(6000)]).catch((e: Error) => e);
      expect(errorMessage(err)).toMatch(
        /^storing output predictions\/late\/[01]\.png in s3:\/\/bucket-a failed after 1 attempt\(s\) in \d+ ms \(limit S3_TIMEOUT_MS=500\): timed out$/,
      );
      // The caller's error names no endpoint; the runner's own log does.
      expect(errorMessage(err)).not.toContain('127.0.0.1');
      expect(logs.join('\n')).toContain(proxy.endpoint);
      expect(Date.now() - started).toBeLessThan(500 + 10_000);
      // Long enough for any held-back PUT to have completed at s3rver.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await listed('predictions/late/')).toEqual([]);
      expect(proxy.seen.filter((r) => r.startsWith('PUT')).length).toBe(2);
      expect(proxy.seen.some((r) => r.startsWith('DELETE'))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('a canceled prediction leaves no object either', async () => {
    const proxy = await startProxy(s3.endpoint, 800);
    try {
      const cancel = new AbortController();
      setTimeout(() => cancel.abort(new Error('canceled by request')), 200);
      const storage = new S3Storage({ ...config, endpoint: proxy.endpoint });
      await expect(storage.storeOutputs('canceled', [object(5000)], cancel.signal)).rejects.toThrow('canceled by request');
      await new Promise((r) => setTimeout(r, 1200));
      expect(await listed('predictions/canceled/')).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('recognises the URLs of its own outputs (presigned or public) and reads them back; nothing else of the bucket', async () => {
    const storage = new S3Storage(config);
    const [url] = await storage.storeOutputs('own1', [object(300)]);
    const key = storage.ownOutputKey(new URL(url));
    expect(key).toBe('predictions/own1/0.png');
    expect(Buffer.from(await storage.readOutput(key as string, 1000)).equals(Buffer.from(object(300).bytes))).toBe(true);
    await expect(storage.readOutput(key as string, 100)).rejects.toThrow(
      'output predictions/own1/0.png must be at most 100 bytes, got 300',
    );
    // Not an output key, another bucket, another host or port: not its own.
    expect(storage.ownOutputKey(new URL(`${s3.endpoint}/bucket-a/secrets/config.json`))).toBeNull();
    expect(storage.ownOutputKey(new URL(`${s3.endpoint}/bucket-b/predictions/own1/0.png`))).toBeNull();
    expect(storage.ownOutputKey(new URL('http://127.0.0.1:1/bucket-a/predictions/own1/0.png'))).toBeNull();
    const publicBase = new S3Storage({ ...config, publicBaseUrl: 'https://cdn.example/out' });
    expect(publicBase.ownOutputKey(new URL('https://cdn.example/out/predictions/p2/1.webp'))).toBe('predictions/p2/1.webp');
    expect(publicBase.ownOutputKey(new URL('https://cdn.example/elsewhere/predictions/p2/1.webp'))).toBeNull();
    const aws = new S3Storage({ ...config, endpoint: undefined, forcePathStyle: false });
    expect(aws.ownOutputKey(new URL('https://bucket-a.s3.us-east-1.amazonaws.com/predictions/p3/0.jpg?X-Amz-Signature=x'))).toBe(
      'predictions/p3/0.jpg',
    );
    expect(aws.ownOutputKey(new URL('https://other.s3.us-east-1.amazonaws.com/predictions/p3/0.jpg'))).toBeNull();
  });

  it('grants reading an output only through a URL it signed for that very key, before the URL expires', async () => {
    const storage = new S3Storage(config);
    const [url] = await storage.storeOutputs('grant1', [object(100), object(120)]);
    const signed = new URL(url);
    expect(await storage.grantsRead(signed, 'predictions/grant1/0.png')).toBe(true);
    // The prediction's id alone (the path without the signature), its other image under this signature, a forged one.
    expect(await storage.grantsRead(new URL(`${signed.origin}${signed.pathname}`), 'predictions/grant1/0.png')).toBe(false);
    expect(await storage.grantsRead(signed, 'predictions/grant1/1.png')).toBe(false);
    const forged = new URL(url);
    forged.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    expect(await storage.grantsRead(forged, 'predictions/grant1/0.png')).toBe(false);
    // Past X-Amz-Expires: a presigned URL that S3 itself would refuse now.
    const shortLived = new S3Storage({ ...config, presignExpiresSeconds: 1 });
    const [brief] = await shortLived.storeOutputs('grant2', [object(100)]);
    expect(await shortLived.grantsRead(new URL(brief), 'predictions/grant2/0.png')).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await shortLived.grantsRead(new URL(brief), 'predictions/grant2/0.png')).toBe(false);
    // Public outputs are readable by their URL anyway.
    const publicBase = new S3Storage({ ...config, publicBaseUrl: 'https://cdn.example/out' });
    expect(await publicBase.grantsRead(new URL('https://cdn.example/out/predictions/p2/1.webp'), 'predictions/p2/1.webp')).toBe(
      true,
    );
  });

  it('fails at once on a missing bucket (not retryable), naming the key', async () => {
    const started = Date.now();
    await expect(new S3Storage({ ...config, bucket: 'no-such-bucket' }).storeOutputs('abc', [object(5)])).rejects.toThrow(
      /storing output predictions\/abc\/0\.png in s3:\/\/no-such-bucket failed after 1 attempt\(s\).*NoSuchBucket/,
    );
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('S3Storage against a server that acknowledges but does not store', () => {
  let server: Server;
  let endpoint: string;
  const seen: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.method ?? '');
      req.resume();
      req.on('end', () => {
        if (req.method === 'PUT') res.writeHead(200, { etag: '"0"' }).end();
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('never reports success for an object a HEAD cannot find, and gives up within the time budget', async () => {
    const storage = new S3Storage({
      endpoint,
      region: 'us-east-1',
      bucket: 'b',
      forcePathStyle: true,
      accessKeyId: 'k',
      secretAccessKey: 's',
      presignExpiresSeconds: 60,
      timeoutMs: 1500,
    });
    const started = Date.now();
    await expect(storage.storeOutputs('lying', [object(5)])).rejects.toThrow(
      /storing output predictions\/lying\/0\.png .* failed after [2-9] attempt\(s\).*not readable after an acknowledged upload.*(NotFound|HTTP 404)/,
    );
    expect(Date.now() - started).toBeLessThan(1500 + 500);
    expect(seen.slice(0, 4)).toEqual(['PUT', 'HEAD', 'PUT', 'HEAD']);
  });
});
