import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3rverHandle, startS3rver } from '../../../scripts/stack/s3rver-process.ts';
import type { S3Config } from '../server/config.ts';
import { S3Storage } from './s3-storage.ts';

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

  it('fails at once on a missing bucket (not retryable), naming the key', async () => {
    const started = Date.now();
    await expect(new S3Storage({ ...config, bucket: 'no-such-bucket' }).storeOutputs('abc', [object(5)])).rejects.toThrow(
      /storing output predictions\/abc\/0\.png in s3:\/\/no-such-bucket .* failed after 1 attempt\(s\).*NoSuchBucket/,
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
