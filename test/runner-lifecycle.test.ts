// The runner's lifecycle against the real process: STARTING -> READY (503 before), SETUP_FAILED with its logs,
// storage going down (a clear failure within S3_TIMEOUT_MS), and SIGTERM during a prediction (its final webhook
// is delivered, new work gets 503, the process exits 0), with the grace period both long enough and too short.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunnerHandle, startRunner } from '../scripts/stack/runner-process.ts';
import { type S3rverHandle, startS3rver } from '../scripts/stack/s3rver-process.ts';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.ts';

const WEBHOOK_SECRET = `whsec_${Buffer.from('runner-lifecycle-test-signing-key').toString('base64')}`;
const SMALL = { prompt: 'a lighthouse', width: 64, height: 64, num_inference_steps: 3 } as const;

const runners: RunnerHandle[] = [];
let hooks: WebhookReceiver;
let s3: S3rverHandle | undefined;
let freshCache: string;

async function post(runner: RunnerHandle, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${runner.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as RunnerPrediction & { error: unknown; detail?: string } };
}

async function health(
  runner: RunnerHandle,
): Promise<{ status: string; setup: { status: string; logs: string; error?: string } }> {
  return (await fetch(`${runner.url}/health-check`)).json() as never;
}

beforeAll(async () => {
  hooks = await startWebhookReceiver(WEBHOOK_SECRET);
  freshCache = await mkdtemp(join(tmpdir(), 'sd-model-cache-'));
});

afterAll(async () => {
  await Promise.all(runners.map((r) => r.stop()));
  await s3?.stop();
  await hooks?.close();
  await rm(freshCache, { recursive: true, force: true });
});

describe('start-up', () => {
  it('answers 503 while STARTING (writing and loading the embedded model into an empty cache), then READY', async () => {
    const whileStarting: string[] = [];
    const runner = await startRunner(
      { SD_MODEL_CACHE: freshCache },
      {
        onStatus: async (status, url) => {
          if (status !== 'STARTING') return;
          const res = await fetch(`${url}/predictions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ input: SMALL }),
          });
          // The model may finish loading between the poll that saw STARTING and this POST (the shipped model loads
          // in well under a second): then it is rightly taken, and the runner says READY or BUSY by now.
          if (res.status === 200) {
            const now = (await (await fetch(`${url}/health-check`)).json()) as { status: string };
            whileStarting.push(['READY', 'BUSY'].includes(now.status) ? 'taken once ready' : `taken while ${now.status}`);
          } else whileStarting.push(String(res.status));
        },
      },
    );
    runners.push(runner);
    expect(runner.statusesSeen.at(-1)).toBe('READY');
    // The poll catches STARTING unless model generation + load beat a 20 ms poll; when it does, 503 is the answer.
    if (runner.statusesSeen.includes('STARTING')) expect(['503', 'taken once ready']).toContain(whileStarting[0]);
    const ok = await post(runner, '/predictions', { input: SMALL });
    expect(ok.status).toBe(200);
    expect(ok.body.output![0]).toMatch(/^data:image\/png;base64,/); // no S3_BUCKET: data URLs
  });

  it('reports SETUP_FAILED with the setup logs and answers 503, and POST /shutdown exits 0', async () => {
    const runner = await startRunner({ MODEL_DIR: '/nonexistent/sd-model' }, { waitFor: 'SETUP_FAILED' });
    runners.push(runner);
    const h = await health(runner);
    expect(h.setup.status).toBe('failed');
    expect(h.setup.error).toMatch(/nonexistent/);
    expect(h.setup.logs).toMatch(/Setup failed/);
    const res = await post(runner, '/predictions', { input: SMALL });
    expect(res.status).toBe(503);
    expect(JSON.stringify(res.body)).toMatch(/setup failed/);
    expect((await post(runner, '/shutdown')).status).toBe(200);
    expect(await runner.process.exited).toEqual({ code: 0, signal: null });
  });
});

describe('storage down and SIGTERM', () => {
  let runner: RunnerHandle;

  beforeAll(async () => {
    s3 = await startS3rver('outputs');
    runner = await startRunner({
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      S3_PUBLIC_BASE_URL: `${s3.endpoint}/${s3.bucket}`,
      S3_TIMEOUT_MS: '2000',
      SHUTDOWN_GRACE_MS: '1500',
      WEBHOOK_SIGNING_SECRET: WEBHOOK_SECRET,
      PROGRESS_THROTTLE_MS: '0',
    });
    runners.push(runner);
  });

  it('stores under the public base URL while storage is up', async () => {
    const ok = await post(runner, '/predictions', { input: SMALL });
    expect(ok.body.status).toBe('succeeded');
    expect(ok.body.output![0]).toBe(`${s3!.endpoint}/${s3!.bucket}/predictions/${ok.body.id}/0.png`);
    expect((await fetch(ok.body.output![0])).status).toBe(200);
  });

  it('fails with a clear error within S3_TIMEOUT_MS when storage is down, never reporting an output', async () => {
    await s3!.process.stop();
    const started = Date.now();
    const res = await post(runner, '/predictions', { id: 'storage-down-1', input: SMALL });
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('failed');
    expect(res.body.output).toBeNull();
    expect(res.body.error).toMatch(
      /storing output predictions\/storage-down-1\/0\.png in s3:\/\/outputs .*failed after \d+ attempt\(s\).*S3_TIMEOUT_MS=2000/,
    );
    expect(res.body.error).toMatch(/ECONNREFUSED/);
    expect(elapsed).toBeLessThan(2000 + 3000); // the upload budget plus generation and slack
    expect((await health(runner)).status).toBe('READY'); // a failed upload leaves the runner usable
  });

  it('on SIGTERM past the grace period cancels the running prediction, delivers its final webhook, refuses new work and exits 0', async () => {
    const id = 'sigterm-cancel-1';
    const accepted = await post(
      runner,
      '/predictions',
      { id, input: { prompt: 'slow', width: 512, height: 512, num_inference_steps: 150 }, webhook: hooks.url },
      { prefer: 'respond-async' },
    );
    expect(accepted.status).toBe(202);
    await hooks.waitFor(id, (w) => (w.body.progress?.step ?? 0) >= 1);
    const signaled = Date.now();
    runner.process.signal('SIGTERM');
    // The signal is asynchronous: wait until the runner says it is shutting down (well inside the grace period).
    const deadline = Date.now() + 1000;
    while ((await health(runner)).status !== 'DEFUNCT' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const refused = await post(runner, '/predictions', { input: SMALL });
    expect(refused.status).toBe(503);
    expect(refused.body.detail).toMatch(/shutting down/);
    expect((await health(runner)).status).toBe('DEFUNCT');

    expect(await runner.process.exited).toEqual({ code: 0, signal: null });
    const final = hooks.forPrediction(id).at(-1)!;
    expect(final.body.status).toBe('canceled');
    expect(final.signatureValid).toBe(true);
    expect(final.body.logs).toMatch(/shutdown grace period of 1500 ms ran out/);
    expect(Date.now() - signaled).toBeLessThan(1500 + 5000);
  });
});

describe('SIGTERM with a grace period long enough', () => {
  it('lets the running prediction finish, delivers its succeeded webhook, then exits 0', async () => {
    const runner = await startRunner({ SHUTDOWN_GRACE_MS: '60000', WEBHOOK_SIGNING_SECRET: WEBHOOK_SECRET });
    runners.push(runner);
    const id = 'sigterm-finish-1';
    const steps = 40;
    await post(
      runner,
      '/predictions',
      { id, input: { prompt: 'slow', width: 128, height: 128, num_inference_steps: steps }, webhook: hooks.url },
      { prefer: 'respond-async' },
    );
    await hooks.waitFor(id, (w) => (w.body.progress?.step ?? 0) >= 1);
    runner.process.signal('SIGTERM');
    expect(await runner.process.exited).toEqual({ code: 0, signal: null });
    const final = hooks.forPrediction(id).at(-1)!;
    expect(final.body.status).toBe('succeeded');
    expect(final.signatureValid).toBe(true);
    expect(final.body.output![0]).toMatch(/^data:image\/png;base64,/);
    expect(final.body.progress!.step).toBe(final.body.progress!.total);
  });
});

describe('SIGTERM just after a prediction finished', () => {
  it('still delivers its completed webhook (retried past a refusal) before exiting', async () => {
    const runner = await startRunner({ SHUTDOWN_GRACE_MS: '60000', WEBHOOK_SIGNING_SECRET: WEBHOOK_SECRET });
    runners.push(runner);
    const id = 'sigterm-after-finish-1';
    // The first completed delivery is refused: the runner backs off (0.5 s) and retries while SIGTERM arrives.
    hooks.respondWith((body, previous) =>
      body.id === id && body.status === 'succeeded' && !previous.some((w) => w.body.status === 'succeeded') ? 503 : 200,
    );
    try {
      const done = await post(runner, '/predictions', { id, input: SMALL, webhook: hooks.url });
      expect(done.body.status).toBe('succeeded');
      await hooks.waitFor(id, (w) => w.body.status === 'succeeded' && w.answered === 503);
      runner.process.signal('SIGTERM');
      expect(await runner.process.exited).toEqual({ code: 0, signal: null });
      const completed = hooks.forPrediction(id).filter((w) => w.body.status === 'succeeded');
      expect(completed.map((w) => w.answered)).toEqual([503, 200]);
      expect(new Set(completed.map((w) => w.webhookId)).size).toBe(1);
    } finally {
      hooks.respondWith(() => 200);
    }
  });
});
