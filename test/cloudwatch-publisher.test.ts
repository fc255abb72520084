// The Cron Trigger's CloudWatch publisher (edge/src/metrics/cloudwatch.ts, aws4fetch SigV4) against a stand-in for
// CloudWatch's PutMetricData endpoint on loopback (AWS's own control plane cannot run here): the stand-in checks the
// signature with an independent SigV4 implementation (@smithy/signature-v4, the AWS SDK's) and records the metrics.
import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueStats } from '../edge/src/dispatch/line.ts';
import { publishBacklog } from '../edge/src/metrics/cloudwatch.ts';

const CREDS = { accessKeyId: 'AKIDFAKECLOUDWATCH', secretAccessKey: 'fake-cloudwatch-secret-key' };

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** Node's crypto in the shape @smithy/signature-v4 wants (a hash, or an HMAC when given a secret). */
class Sha256 {
  private readonly hash = createHash('sha256');
  private readonly hmac: ReturnType<typeof createHmac> | null;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hmac = secret ? createHmac('sha256', bytes(secret)) : null;
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    (this.hmac ?? this.hash).update(bytes(data));
  }
  async digest() {
    return new Uint8Array((this.hmac ?? this.hash).digest());
  }
}

interface Received {
  valid: boolean;
  form: URLSearchParams;
}

/** A fake CloudWatch endpoint: verifies SigV4 (service monitoring) and answers as PutMetricData does. */
function startFakeCloudWatch(): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    // No x-amz-content-sha256 header: only S3 requires it, and the client under test does not send it.
    const signer = new SignatureV4({
      credentials: CREDS,
      region: 'eu-west-1',
      service: 'monitoring',
      sha256: Sha256,
      applyChecksum: false,
    });
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(headers.authorization ?? '')?.[1].split(';') ?? [];
    const amzDate = headers['x-amz-date'] ?? '';
    const toSign = {
      method: req.method ?? 'POST',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: {},
      headers: Object.fromEntries(Object.entries(headers).filter(([k]) => signedHeaders.includes(k) && k !== 'authorization')),
      body,
    };
    const date = new Date(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    );
    const expected = await signer.sign(toSign, { signingDate: date });
    const valid = expected.headers.authorization === headers.authorization;
    received.push({ valid, form: new URLSearchParams(body) });
    res.writeHead(valid ? 200 : 403, { 'content-type': 'text/xml' });
    res.end(valid ? '<PutMetricDataResponse/>' : '<Error><Code>SignatureDoesNotMatch</Code></Error>');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        received,
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

const stats: QueueStats[] = [
  { pool: 'sd/embedded:embedded-v1', waiting: 3, running: 2, runners: 2, slots: 2, oldestWaitSeconds: 4, meanRunSeconds: 1.5 },
  { pool: 'sd/other:v2', waiting: 0, running: 0, runners: 0, slots: 0, oldestWaitSeconds: 0, meanRunSeconds: null },
];

describe('CloudWatch backlog publisher', () => {
  let cw: Awaited<ReturnType<typeof startFakeCloudWatch>>;
  beforeAll(async () => {
    cw = await startFakeCloudWatch();
  });
  afterAll(async () => {
    await cw?.close();
  });

  it('signs PutMetricData with SigV4 and sends Backlog, Waiting and Running per model', async () => {
    await publishBacklog({ region: 'eu-west-1', namespace: 'SdEdge', ...CREDS }, stats, { endpoint: cw.url });
    expect(cw.received).toHaveLength(1);
    const { valid, form } = cw.received[0];
    expect(valid).toBe(true);
    expect(form.get('Action')).toBe('PutMetricData');
    expect(form.get('Namespace')).toBe('SdEdge');
    const metrics: Record<string, string> = {};
    for (let n = 1; form.has(`MetricData.member.${n}.MetricName`); n++) {
      const model = form.get(`MetricData.member.${n}.Dimensions.member.1.Value`);
      expect(form.get(`MetricData.member.${n}.Dimensions.member.1.Name`)).toBe('Model');
      metrics[`${model} ${form.get(`MetricData.member.${n}.MetricName`)}`] = form.get(`MetricData.member.${n}.Value`) ?? '';
    }
    expect(metrics).toEqual({
      'sd/embedded:embedded-v1 Backlog': '5',
      'sd/embedded:embedded-v1 Waiting': '3',
      'sd/embedded:embedded-v1 Running': '2',
      'sd/other:v2 Backlog': '0',
      'sd/other:v2 Waiting': '0',
      'sd/other:v2 Running': '0',
    });
  });

  it('a wrong secret is refused by the endpoint and the publisher says so', async () => {
    await expect(
      publishBacklog(
        { region: 'eu-west-1', namespace: 'SdEdge', accessKeyId: CREDS.accessKeyId, secretAccessKey: 'wrong' },
        stats,
        {
          endpoint: cw.url,
        },
      ),
    ).rejects.toThrow(/PutMetricData answered 403/);
  });
});
