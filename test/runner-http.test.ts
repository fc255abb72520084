// The runner's Cog HTTP API end to end: the real runner process on the embedded model, s3rver as its bucket,
// the real `replicate` client for the routes it shares with Cog, plain fetch for the Cog-only ones, and a webhook
// receiver that checks order, bearer token and Standard Webhooks signatures.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDefaultModel } from '@sd/gpu-runner/default-model/write-model';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { ClipTokenizer } from '@sd/shared/tokenizer/index';
import Replicate from 'replicate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunnerHandle, startRunner } from '../scripts/stack/runner-process.ts';
import { type S3rverHandle, startS3rver } from '../scripts/stack/s3rver-process.ts';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.ts';

const API_TOKEN = 'runner-test-token';
const WEBHOOK_TOKEN = 'edge-callback-token';
const WEBHOOK_SECRET = `whsec_${Buffer.from('runner-http-test-signing-key-32b').toString('base64')}`;

/** Small and fast: the embedded model at 64x64 takes a few ms per step. */
const SMALL = { prompt: 'a red apple on a table', width: 64, height: 64, num_inference_steps: 3 } as const;
/** Long enough to be caught mid-run (hundreds of steps at 256x256), short-lived because each test cancels it. */
const LONG = { prompt: 'a slow painting', width: 256, height: 256, num_inference_steps: 150 } as const;

let s3: S3rverHandle;
let runner: RunnerHandle;
let hooks: WebhookReceiver;
let replicate: Replicate;

const auth = { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' };

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${runner.url}${path}`, {
    method,
    headers: { ...auth, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function download(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  expect(res.status, `GET ${url}`).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

beforeAll(async () => {
  [s3, hooks] = await Promise.all([startS3rver('outputs'), startWebhookReceiver(WEBHOOK_SECRET)]);
  runner = await startRunner({
    API_TOKEN,
    WEBHOOK_SIGNING_SECRET: WEBHOOK_SECRET,
    WEBHOOK_TOKEN,
    PROGRESS_THROTTLE_MS: '50',
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: 'us-east-1',
    S3_BUCKET: s3.bucket,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_PRESIGN_EXPIRES_SECONDS: '600',
    S3_TIMEOUT_MS: '5000',
  });
  replicate = new Replicate({ auth: API_TOKEN, baseUrl: runner.url, useFileOutput: false });
});

afterAll(async () => {
  await runner?.stop();
  await s3?.stop();
  await hooks?.close();
});

describe('health, auth and schema', () => {
  it('reports READY with the setup logs, without a token', async () => {
    const res = await fetch(`${runner.url}/health-check`);
    expect(res.status).toBe(200);
    const health = (await res.json()) as { status: string; setup: { status: string; logs: string; completed_at: string } };
    expect(health.status).toBe('READY');
    expect(health.setup.status).toBe('succeeded');
    expect(health.setup.logs).toMatch(/Loading model .*embedded default model/);
    expect(Date.parse(health.setup.completed_at)).not.toBeNaN();
  });

  it('answers 401 without the bearer token or with a wrong one, on every other route', async () => {
    for (const [method, path] of [
      ['GET', '/openapi.json'],
      ['POST', '/predictions'],
      ['PUT', '/predictions/x1'],
      ['POST', '/predictions/x1/cancel'],
      ['POST', '/shutdown'],
    ] as const) {
      const none = await fetch(`${runner.url}${path}`, { method });
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      const wrong = await fetch(`${runner.url}${path}`, { method, headers: { authorization: `Bearer ${API_TOKEN}x` } });
      expect(wrong.status, `${method} ${path}`).toBe(401);
      expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    await expect(
      new Replicate({ auth: 'nope', baseUrl: runner.url }).predictions.create({ version: 'v', input: SMALL }),
    ).rejects.toThrow(/401/);
  });

  it('serves openapi.json generated from the shared schemas', async () => {
    const { status, body } = await call('GET', '/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
    const input = body.components.schemas.Input;
    expect(input.properties.width).toMatchObject({ type: 'integer', minimum: 64, maximum: 2048 });
    // No fixed default: an input without width/height gets the loaded model's native size.
    expect(input.properties.width.default).toBeUndefined();
    expect(input.properties.output_format.enum).toEqual(['png', 'webp', 'jpeg']);
    expect(input.required).toContain('prompt');
    expect(body.components.schemas.PredictionRequest.properties.input).toEqual({ $ref: '#/components/schemas/Input' });
    expect(body.components.schemas.PredictionResponse.properties.status.enum).toContain('canceled');
  });

  it('answers 404 for an unknown prediction and an unknown route', async () => {
    expect((await call('POST', '/predictions/nope/cancel')).status).toBe(404);
    expect((await call('GET', '/predictions/nope')).status).toBe(404);
    expect((await call('GET', '/no-such-route')).status).toBe(404);
  });
});

describe('predictions through the replicate client', () => {
  it('runs on the embedded model and stores a PNG of the requested size in S3 (200, sync)', async () => {
    const prediction = (await replicate.predictions.create({
      version: 'local',
      input: { ...SMALL, seed: 1234 },
    })) as unknown as RunnerPrediction;
    expect(prediction.status).toBe('succeeded');
    expect(prediction.error).toBeNull();
    expect(prediction.seeds).toEqual([1234]);
    expect(prediction.metrics).toMatchObject({ seed: 1234 });
    for (const key of ['predict_time', 'text_encoder_time', 'unet_time', 'vae_time', 'total_time'] as const) {
      expect(prediction.metrics[key], key).toBeGreaterThanOrEqual(0);
    }
    expect(prediction.logs).toContain('Using seed: 1234');
    expect(prediction.output).toHaveLength(1);
    const url = new URL(prediction.output![0]);
    expect(url.origin).toBe(s3.endpoint);
    expect(url.pathname).toBe(`/${s3.bucket}/predictions/${prediction.id}/0.png`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('600'); // presigned GET, configured expiry
    const bytes = await download(url.href);
    const meta = await sharp(bytes).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 64, height: 64, channels: 3 });
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.headers.get('content-type')).toBe('image/png');
    expect(head.headers.get('cache-control')).toContain('immutable');
  });

  it('gives the same bytes for the same seed, and different bytes for another seed', async () => {
    const run = async (seed: number) => {
      const p = (await replicate.predictions.create({
        version: 'local',
        input: { ...SMALL, seed },
      })) as unknown as RunnerPrediction;
      expect(p.status).toBe('succeeded');
      return download(p.output![0]);
    };
    const [a, b, c] = [await run(77), await run(77), await run(78)];
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('picks a random seed when none is given and reports it (201 with Prefer: wait via replicate.run)', async () => {
    const output = (await replicate.run('owner/model:local', {
      input: { ...SMALL, num_outputs: 2, output_format: 'webp' },
    })) as string[];
    expect(output).toHaveLength(2);
    expect(output[1]).toMatch(/\/predictions\/[0-9a-f]+\/1\.webp\?/);
    expect((await sharp(await download(output[1])).metadata()).format).toBe('webp');

    const res = await fetch(`${runner.url}/predictions`, {
      method: 'POST',
      headers: { ...auth, prefer: 'wait=30' },
      body: JSON.stringify({ input: SMALL }),
    });
    expect(res.status).toBe(201);
    const p = (await res.json()) as RunnerPrediction;
    expect(p.status).toBe('succeeded');
    const seed = Number(/Using seed: (\d+)/.exec(p.logs)?.[1]);
    expect(Number.isInteger(seed)).toBe(true);
    expect(p.seeds).toEqual([seed]);
    expect(p.metrics.seed).toBe(seed);
    // predictions.get maps onto this runner's GET /predictions/{id} (an extension; Cog has none).
    const again = (await replicate.predictions.get(p.id)) as unknown as RunnerPrediction;
    expect(again.output).toEqual(p.output);
  });

  it('answers 422 naming the field and the limit', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...SMALL, width: 60 }, 'input.width', /width must be a multiple of 8 between 64 and 2048, got 60/],
      [{ ...SMALL, num_inference_steps: 1000 }, 'input.num_inference_steps', /between 1 and 150, got 1000/],
      [{ ...SMALL, colour: 'red' }, 'input.colour', /unknown field input.colour/],
      [{ width: 64 }, 'input.prompt', /prompt must be a string/],
      [{ ...SMALL, guidance_end: -0.1 }, 'input.guidance_end', /guidance_end must be a number between 0 and 1, got -0.1/],
      [{ ...SMALL, clip_skip: 13 }, 'input.clip_skip', /clip_skip must be an integer between 1 and 12, got 13/],
      // The embedded model's text encoder has 3 layers: the runner checks clip_skip against the loaded model.
      // The shipped model's text encoder exports only its last layer: clip_skip past 1 is refused, saying why.
      [{ ...SMALL, clip_skip: 4 }, 'input.clip_skip', /clip_skip must be 1 for this model/],
    ];
    for (const [input, field, message] of cases) {
      const { status, body } = await call('POST', '/predictions', { input });
      expect(status, field).toBe(422);
      expect(body.error.param).toBe(field);
      expect(body.detail).toMatch(message);
    }
    const bad = await call('POST', '/predictions', { input: SMALL, webhook: 'ftp://example.com' });
    expect(bad.status).toBe(422);
    expect(bad.body.error.param).toBe('webhook');
    const err = await replicate.predictions.create({ version: 'v', input: { ...SMALL, height: 4000 } }).catch((e) => e);
    expect(err.response?.status).toBe(422);
  });
});

describe('img2img inputs', () => {
  const IMG2IMG = { prompt: 'a red circle on a blue background', num_inference_steps: 4, strength: 0.5 } as const;

  async function png(width: number, height: number): Promise<string> {
    const bytes = await sharp({ create: { width, height, channels: 3, background: '#3060c0' } })
      .png()
      .toBuffer();
    return `data:image/png;base64,${bytes.toString('base64')}`;
  }

  it("gives an img2img output the input image's size when width and height are left out", async () => {
    const { status, body } = await call('POST', '/predictions', { input: { ...IMG2IMG, image: await png(96, 64) } });
    expect(status, JSON.stringify(body)).toBe(200);
    const meta = await sharp(await download(body.output[0])).metadata();
    expect([meta.width, meta.height]).toEqual([96, 64]);
    // A side that is given wins; the other follows the image's aspect ratio.
    const wide = await call('POST', '/predictions', { input: { ...IMG2IMG, image: await png(256, 128), width: 128 } });
    const wideMeta = await sharp(await download(wide.body.output[0])).metadata();
    expect([wideMeta.width, wideMeta.height]).toEqual([128, 64]);
  });

  it("refuses a side its model's U-Net cannot take with a 422 naming the multiple, and sizes an image's output to one", async () => {
    // The U-Net halves the latents; a side that does not halve evenly would fail mid-run inside onnxruntime.
    const refused = await call('POST', '/predictions', { input: { ...SMALL, width: 88 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(422);
    expect(refused.body.error.param).toBe('input.width');
    const multiple = Number(/width must be a multiple of (\d+) .*got 88/.exec(refused.body.detail)?.[1]);
    expect(multiple).toBeGreaterThan(8);
    const fits = await call('POST', '/predictions', { input: { ...SMALL, width: Math.ceil(88 / multiple) * multiple } });
    expect(fits.body.status, fits.body.error).toBe('succeeded');
    // An image of 88x72 without width/height: its output is the image's size in the sides the U-Net takes.
    const sized = await call('POST', '/predictions', { input: { ...IMG2IMG, image: await png(88, 72) } });
    expect(sized.body.status, sized.body.error).toBe('succeeded');
    const meta = await sharp(await download(sized.body.output[0])).metadata();
    expect([meta.width, meta.height]).toEqual([88, 72].map((side) => Math.max(64, Math.floor(side / multiple) * multiple)));
  });

  it("fits an output sized from an image URL into max_pixels, the caller's budget the edge passes", async () => {
    const first = await call('POST', '/predictions', { input: { ...SMALL, width: 256, height: 128 } });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const image: string = first.body.output[0];
    const fitted = await call('POST', '/predictions', { input: { ...IMG2IMG, image, max_pixels: 128 * 64 } });
    expect(fitted.status, JSON.stringify(fitted.body)).toBe(200);
    const meta = await sharp(await download(fitted.body.output[0])).metadata();
    expect([meta.width, meta.height]).toEqual([128, 64]);
    // A side that is given still wins; the other stays within the budget (the image's ratio alone would make it 128).
    const oneSide = await call('POST', '/predictions', { input: { ...IMG2IMG, image, width: 256, max_pixels: 256 * 64 } });
    const oneSideMeta = await sharp(await download(oneSide.body.output[0])).metadata();
    expect([oneSideMeta.width, oneSideMeta.height]).toEqual([256, 64]);
  });

  it('takes its own output (an http URL of its loopback bucket) as the next input; any other loopback URL is a 422', async () => {
    const first = await call('POST', '/predictions', { input: { ...SMALL, seed: 5 } });
    expect(first.status).toBe(200);
    const own: string = first.body.output[0];
    expect(own).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    const again = await call('POST', '/predictions', { input: { ...IMG2IMG, image: own } });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.status).toBe('succeeded');
    const meta = await sharp(await download(again.body.output[0])).metadata();
    expect([meta.width, meta.height]).toEqual([64, 64]);
    // The prediction's id is no key to its images: the same path without the URL's signature, or another image of it.
    const bare = new URL(own);
    const unsigned = `${bare.origin}${bare.pathname}`;
    const sibling = own.replace('/0.png?', '/1.png?');
    for (const image of [unsigned, sibling]) {
      const refused = await call('POST', '/predictions', { input: { ...IMG2IMG, image } });
      expect(refused.body.status, image).toBe('failed');
      expect(refused.body.error, image).toMatch(/^image names an output of this runner's bucket without a valid signature/);
    }
    // The same bucket's other objects, another port on loopback, or https loopback: the SSRF guard still refuses.
    const s3Url = new URL(own);
    for (const image of [
      `${s3Url.origin}/${s3.bucket}/secrets/config.png`,
      `http://127.0.0.1:${runner.url.split(':').pop()}/predictions`,
      `https://127.0.0.1:${s3Url.port}${s3Url.pathname}`,
    ]) {
      const refused = await call('POST', '/predictions', { input: { ...IMG2IMG, image } });
      expect(refused.status, image).toBe(422);
      expect(refused.body.error.param, image).toBe('input.image');
      expect(refused.body.detail, image).toMatch(/loopback/);
    }
  });
});

describe('async predictions, webhooks, capacity, idempotency and cancel', () => {
  it('delivers start -> output* -> completed, signed and with the bearer token (202)', async () => {
    const id = 'webhook-order-1';
    const { status, body } = await call(
      'PUT',
      `/predictions/${id}`,
      {
        id,
        input: { ...SMALL, num_inference_steps: 8, seed: 5 },
        webhook: hooks.url,
        webhook_events_filter: ['start', 'output', 'completed'],
      },
      { prefer: 'respond-async' },
    );
    expect(status).toBe(202);
    expect(['starting', 'processing']).toContain(body.status);
    const completed = await hooks.waitFor(id, (w) => w.body.status === 'succeeded');
    const events = hooks.forPrediction(id);
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.every((w) => w.signatureValid)).toBe(true);
    expect(events.every((w) => w.authorization === `Bearer ${WEBHOOK_TOKEN}`)).toBe(true);
    expect(new Set(events.map((w) => w.webhookId)).size).toBe(events.length);
    // start: processing without progress; output: processing with progress; completed: last, terminal.
    expect(events[0].body).toMatchObject({ status: 'processing', progress: null });
    const outputs = events.slice(1, -1);
    expect(outputs.length).toBeGreaterThanOrEqual(1);
    for (const w of outputs) expect(w.body.status).toBe('processing');
    const steps = outputs.map((w) => w.body.progress!.step);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(events.at(-1)).toBe(completed);
    expect(completed.body.output![0]).toContain(`/predictions/${id}/0.png`);
    // total counts U-Net steps: PNDM (the model's default) runs one more than num_inference_steps, as in diffusers.
    expect(completed.body.progress!.step).toBe(completed.body.progress!.total);
    expect(completed.body.progress!.fraction).toBe(1);
  });

  it('retries the completed webhook with backoff until the receiver takes it', async () => {
    const id = 'webhook-retry-1';
    hooks.respondWith((body, previous) =>
      body.id === id && body.status === 'succeeded' && previous.filter((w) => w.body.status === 'succeeded').length < 2
        ? 503
        : 200,
    );
    try {
      await call(
        'PUT',
        `/predictions/${id}`,
        { input: SMALL, webhook: hooks.url, webhook_events_filter: ['completed'] },
        { prefer: 'respond-async' },
      );
      await hooks.waitFor(id, (w) => w.body.status === 'succeeded' && w.answered === 200, 20_000);
      const attempts = hooks.forPrediction(id);
      expect(attempts.map((w) => w.answered)).toEqual([503, 503, 200]);
      expect(new Set(attempts.map((w) => w.webhookId)).size).toBe(1); // one message, three attempts
      expect(attempts.every((w) => w.signatureValid)).toBe(true);
      expect(attempts[2].receivedAt - attempts[1].receivedAt).toBeGreaterThan(200);
    } finally {
      hooks.respondWith(() => 200);
    }
  });

  it('is busy (409, BUSY) while a prediction runs, idempotent on PUT, and cancels within one step', async () => {
    const id = 'long-run-1';
    const filter = ['start', 'output', 'completed'];
    const first = await call(
      'PUT',
      `/predictions/${id}`,
      { input: { ...LONG, seed: 9 }, webhook: hooks.url, webhook_events_filter: filter },
      { prefer: 'respond-async' },
    );
    expect(first.status).toBe(202);
    await hooks.waitFor(id, (w) => (w.body.progress?.step ?? 0) >= 2);

    const health = (await (await fetch(`${runner.url}/health-check`)).json()) as { status: string };
    expect(health.status).toBe('BUSY');
    const other = await call('POST', '/predictions', { input: SMALL }, { prefer: 'respond-async' });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('conflict');
    const viaClient = await replicate.predictions.create({ version: 'v', input: SMALL }).catch((e) => e);
    expect(viaClient.response?.status).toBe(409);

    // The same id again: the current state, never a second run.
    const again = await call(
      'PUT',
      `/predictions/${id}`,
      { input: { ...LONG, seed: 9 }, webhook: hooks.url, webhook_events_filter: filter },
      { prefer: 'respond-async' },
    );
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id, status: 'processing' });
    expect(again.body.created_at).toBe(first.body.created_at);

    const cancel = (await replicate.predictions.cancel(id)) as unknown as RunnerPrediction;
    const stepAtCancel = cancel.progress?.step ?? 0;
    const done = await hooks.waitFor(id, (w) => w.body.status === 'canceled');
    expect(done.body.output).toBeNull();
    expect(done.body.progress!.step).toBeLessThanOrEqual(stepAtCancel + 1);
    expect(done.body.progress!.step).toBeLessThan(LONG.num_inference_steps);
    expect(done.body.logs.match(/Using seed: 9/g)).toHaveLength(1);
    expect(hooks.forPrediction(id).filter((w) => w.body.status === 'processing' && w.body.progress === null)).toHaveLength(1);
    expect((await call('GET', `/predictions/${id}`)).body.status).toBe('canceled');

    // A terminal prediction stays terminal: cancel again is a no-op, PUT returns it.
    expect((await call('POST', `/predictions/${id}/cancel`)).body.status).toBe('canceled');
    const after = await call('PUT', `/predictions/${id}`, { input: { ...LONG, seed: 9 } });
    expect(after).toMatchObject({ status: 200, body: { status: 'canceled' } });

    // The slot is free again.
    const next = await call('POST', '/predictions', { input: SMALL });
    expect(next).toMatchObject({ status: 200, body: { status: 'succeeded' } });
  });

  it('tags every log line about a prediction with its id', () => {
    const lines = runner
      .logRecords()
      .filter((r) => typeof r.msg === 'string' && /Using seed|prediction (started|completed)/.test(r.msg as string));
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(l.prediction_id, JSON.stringify(l)).toMatch(/\S/);
  });
});

describe('the edge contract: tokens in, embeddings out, embeddings back in', () => {
  it('gives the same image from edge-tokenized prompts and from cached embeddings as from the plain prompt', async () => {
    const dir = join(await ensureDefaultModel(), 'tokenizer');
    const read = (f: string) => readFile(join(dir, f), 'utf8');
    const tokenizer = ClipTokenizer.fromFiles({
      vocab: await read('vocab.json'),
      merges: await read('merges.txt'),
      tokenizerConfig: await read('tokenizer_config.json'),
      specialTokensMap: await read('special_tokens_map.json'),
    });
    const input = { ...SMALL, prompt: 'a (red:1.3) apple', negative_prompt: 'blurry', seed: 31, guidance_scale: 7 };
    const tokens = (text: string) => {
      const t = tokenizer.tokenizePrompt(text, { mode: 'chunk', weighting: true });
      return { ids: t.ids, weights: t.weights };
    };
    const put = async (id: string, body: Record<string, unknown>) => {
      const { status, body: p } = await call('PUT', `/predictions/${id}`, { id, input: body });
      expect(status).toBe(200);
      expect(p.status, p.error).toBe('succeeded');
      return p as RunnerPrediction;
    };
    const plain = await put('edge-plain-1', input);
    const miss = await put('edge-miss-1', {
      ...input,
      prompt_tokens: tokens(input.prompt),
      negative_prompt_tokens: tokens(input.negative_prompt),
      return_embeddings: true,
    });
    expect(miss.metrics.embedding_cache).toBe('miss');
    expect(miss.input.prompt_tokens).toBe('(omitted)'); // not echoed back in every webhook
    expect(miss.embeddings!.prompt).toMatchObject({ dtype: 'float32', shape: [1, 77, expect.any(Number)] });
    expect(miss.embeddings!.negative.shape).toEqual(miss.embeddings!.prompt.shape);
    const hit = await put('edge-hit-1', { ...input, embeddings: miss.embeddings });
    expect(hit.metrics.embedding_cache).toBe('hit');
    expect(hit.embeddings ?? null).toBeNull();

    const [a, b, c] = await Promise.all([plain, miss, hit].map((p) => download(p.output![0])));
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(c).equals(Buffer.from(a))).toBe(true);
  });
});
