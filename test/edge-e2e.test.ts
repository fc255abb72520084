// The whole system end to end with real parts (scripts/local-stack.ts): the edge under workerd (wrangler dev: its KV,
// Queue, Durable Objects, Cache), the runner on the embedded model, s3rver; driven by the real `replicate` and `openai`
// clients, a Standard Webhooks receiver, and headless Chromium for the <sd-image> widget on a third-party origin.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import type { ImageGenerateParams } from 'openai/resources/images';
import { type Browser, chromium } from 'playwright-core';
import Replicate, { type Prediction } from 'replicate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';
import {
  callEdge,
  imageMetadata,
  type PublicPrediction,
  runnerStarts,
  storedObjects,
  waitForPrediction,
} from './support/stack-probes.ts';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.ts';

const CHROMIUM = '/usr/bin/chromium';
const chromiumSkipReason = existsSync(CHROMIUM) ? '' : ` (skipped: ${CHROMIUM} missing; apt-get install -y chromium)`;
const TINY = { width: 64, height: 64, num_inference_steps: 6 } as const;

let stack: LocalStack;
let replicate: Replicate;
let site: { origin: string; server: Server };

/**
 * The third-party page: its own loopback origin, embedding /embed.js from the edge with a publishable key (?key=<name>
 * picks which), under a CSP that allows scripts and calls only to the edge and images only from the bucket.
 */
function thirdPartyPage(stackNow: () => LocalStack): Promise<{ origin: string; server: Server }> {
  const server = createServer((req, res) => {
    const { edgeUrl, keys, s3 } = stackNow();
    const keyName = new URL(req.url ?? '/', 'http://x').searchParams.get('key') ?? 'widget';
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': `default-src 'none'; script-src ${edgeUrl}; connect-src ${edgeUrl}; img-src ${s3.endpoint}; style-src 'self'`,
    });
    res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A customer's page</title></head>
<body><h1>Make a picture</h1>
<sd-image publishable-key="${keys[keyName]?.key ?? 'pk_unknown'}" model="sd/embedded" width="64" height="64" steps="6"></sd-image>
<script src="${edgeUrl}/embed.js"></script>
</body></html>`);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }),
    ),
  );
}

function api(
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; key?: string | null } = {},
) {
  return callEdge(stack.edgeUrl, init.key === undefined ? stack.apiKey : init.key, path, init);
}

async function createPrediction(input: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<PublicPrediction> {
  const res = await api('/v1/predictions', { body: { version: stack.model.ref, input, ...extra } });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as PublicPrediction;
}

const waitForStatus = (id: string, done: (p: PublicPrediction) => boolean, timeoutMs?: number) =>
  waitForPrediction(stack.edgeUrl, stack.apiKey, id, done, timeoutMs);

/** replicate.run on the stack's model, keeping the last prediction its progress callback saw. */
async function runWithReplicate(input: Record<string, unknown>): Promise<{ output: unknown; last: Prediction }> {
  let last: Prediction | undefined;
  const output = await replicate.run(stack.model.ref as `${string}/${string}:${string}`, { input }, (p) => {
    last = p;
  });
  return { output, last: last! };
}

beforeAll(async () => {
  site = await thirdPartyPage(() => stack);
  stack = await startLocalStack({
    secretKey: { ratePerMinute: 600, maxInFlight: 16 },
    keys: [
      { name: 'widget', publishable: true, origins: [site.origin] },
      // One create per minute: the second click meets the real rate limit.
      { name: 'widget-limited', publishable: true, origins: [site.origin], ratePerMinute: 1 },
      // Twice the embedded model's native 64x64, and nothing larger.
      { name: 'small-budget', maxPixels: 128 * 64 },
    ],
    // One slot: the busy-runner test depends on the runner refusing a second prediction with 409.
    runnerEnv: { SLOTS: '1', PROGRESS_THROTTLE_MS: '50', ORT_INTRA_OP_THREADS: '1' },
  });
  replicate = new Replicate({ auth: stack.apiKey, baseUrl: `${stack.edgeUrl}/v1`, useFileOutput: false });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => (site ? site.server.close(() => resolve()) : resolve()));
});

describe('auth at the edge', () => {
  it('answers 401 without a key and with an unknown key', async () => {
    const none = await api('/v1/predictions', { key: null, body: { version: stack.model.ref, input: { prompt: 'x', ...TINY } } });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBeTruthy();
    const wrong = await api('/v1/predictions', {
      key: 'sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
      body: { version: stack.model.ref, input: { prompt: 'x' } },
    });
    expect(wrong.status).toBe(401);
    const unauthed = new Replicate({ auth: 'sk_wrong', baseUrl: `${stack.edgeUrl}/v1` });
    await expect(unauthed.predictions.create({ version: stack.model.ref, input: { prompt: 'x' } })).rejects.toThrow(/401/);
  });
});

describe('the replicate client through the edge', () => {
  const prompt = `a lighthouse at dusk ${Date.now()}`;
  let first: Prediction;

  it('replicate.run returns an image URL whose bytes decode to the requested size (cache miss)', async () => {
    const { output, last } = await runWithReplicate({ prompt, ...TINY, seed: 7 });
    expect(Array.isArray(output)).toBe(true);
    const [url] = output as string[];
    expect(url).toMatch(new RegExp(`^${stack.s3.endpoint}/outputs/predictions/`));
    expect(await imageMetadata(url)).toMatchObject({ width: 64, height: 64, format: 'png' });
    first = last;
    expect(first.status).toBe('succeeded');
    expect(first.metrics).toMatchObject({ embedding_cache: 'miss' });
    expect((first.metrics as Record<string, number>).text_encoder_time).toBeGreaterThan(0);
    expect(first.logs).toContain('text encoder ran');
  });

  it('the same prompt again is a cache hit: the job carries embeddings and the runner skips the text encoder', async () => {
    const { output, last: hit } = await runWithReplicate({ prompt, ...TINY, seed: 7 });
    expect(hit.metrics).toMatchObject({ embedding_cache: 'hit' });
    expect((hit.metrics as Record<string, number | undefined>).text_encoder_time ?? 0).toBe(0);
    expect(hit.logs).toContain('text encoder skipped (embeddings given)');
    // Same seed, same conditioning: the same image, so the cached embeddings are the ones the miss computed.
    const [a, b] = await Promise.all(
      [first.output as string[], output as string[]].map(async ([u]) => new Uint8Array(await (await fetch(u)).arrayBuffer())),
    );
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
  });
});

describe('img2img through the edge', () => {
  it("gives the output the input image's size when width and height are left out, and takes an output back as input", async () => {
    const png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#c03030' } })
      .png()
      .toBuffer();
    const input = {
      prompt: 'a red square',
      num_inference_steps: 4,
      strength: 0.5,
      image: `data:image/png;base64,${png.toString('base64')}`,
    };
    const { output } = await runWithReplicate(input);
    const [url] = output as string[];
    expect(await imageMetadata(url)).toMatchObject({ width: 96, height: 64 });
    // The local stack's outputs are http URLs of its loopback bucket: the runner reads them back through its storage.
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    const again = await runWithReplicate({ prompt: 'a red square', num_inference_steps: 4, strength: 0.5, image: url });
    expect(again.last.status).toBe('succeeded');
    expect(await imageMetadata((again.output as string[])[0])).toMatchObject({ width: 96, height: 64 });
  });
});

describe("a key's pixel budget", () => {
  it('holds for an img2img image given by URL, which only the runner can size', async () => {
    const large = await createPrediction({ prompt: 'a red square', width: 256, height: 128, num_inference_steps: 2 });
    const [image] = (await waitForStatus(large.id, (p) => p.status === 'succeeded')).output as string[];
    const small = new Replicate({ auth: stack.keys['small-budget'].key, baseUrl: `${stack.edgeUrl}/v1`, useFileOutput: false });
    const [url] = (await small.run(stack.model.ref as `${string}/${string}:${string}`, {
      input: { prompt: 'a red square', num_inference_steps: 4, strength: 0.5, image },
    })) as string[];
    // The image's own 256x128, scaled into the key's 128 * 64 pixels.
    expect(await imageMetadata(url)).toMatchObject({ width: 128, height: 64 });
  });
});

describe("sides the model's U-Net takes", () => {
  it('are refused at the edge with a 422 naming the multiple, where the runner would refuse them after queueing', async () => {
    const res = await api('/v1/predictions', {
      body: { version: stack.model.ref, input: { prompt: 'x', width: 88, height: 64 } },
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({
      error: { param: 'input.width' },
      detail: 'width must be a multiple of 16 between 64 and 2048, got 88',
    });
  });
});

describe('an input only the runner can judge', () => {
  it("fails at once with the runner's own message instead of waiting in line for its maximum queue time", async () => {
    // The edge cannot know the loaded model's text encoder depth; the pull runner refuses clip_skip past it.
    const created = await createPrediction({ prompt: 'a red circle', ...TINY, clip_skip: 2 });
    const failed = await waitForStatus(created.id, (p) => p.status === 'failed', 20_000);
    expect(failed.error).toMatch(/^the model host rejected the input: .*clip_skip must be 1 for this model/);
  });
});

describe('the OpenAI client through the edge', () => {
  // The edge takes 64x64 (any multiple of 8 within its limits); the SDK's size type lists only OpenAI's sizes.
  const size = '64x64' as ImageGenerateParams['size'];
  const openai = () => new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.edgeUrl}/v1` });

  it('images.generate with response_format url gives n image URLs of the requested size', async () => {
    const params = { prompt: 'two red apples', n: 2, size, response_format: 'url' as const, num_inference_steps: 6 };
    const res = await openai().images.generate(params);
    expect(res.data).toHaveLength(2);
    for (const d of res.data ?? []) {
      expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/outputs\/predictions\//);
      expect(await imageMetadata(d.url!)).toMatchObject({ width: 64, height: 64 });
    }
  });

  it('images.generate with response_format b64_json gives the image bytes inline', async () => {
    const params = { prompt: 'a blue boat', n: 2, size, response_format: 'b64_json' as const, num_inference_steps: 6 };
    const res = await openai().images.generate(params);
    expect(res.data).toHaveLength(2);
    for (const d of res.data ?? []) {
      expect(await sharp(Buffer.from(d.b64_json!, 'base64')).metadata()).toMatchObject({ width: 64, height: 64, format: 'png' });
    }
  });
});

describe('streaming, cancel, busy runners and client webhooks', () => {
  let hooks: WebhookReceiver;
  beforeAll(async () => {
    hooks = await startWebhookReceiver(stack.clientWebhookSecret);
  });
  afterAll(async () => {
    await hooks?.close();
  });

  it('urls.stream delivers status and per-step progress, then the output and done', async () => {
    const p = await createPrediction({ prompt: 'a stream of progress', width: 128, height: 128, num_inference_steps: 24 });
    expect(p.urls.stream).toBeTruthy();
    const res = await fetch(p.urls.stream!, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text(); // the edge closes the stream after done
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)/g)].map((m) => ({ event: m[1], data: m[2] }));
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('status');
    expect(names.at(-1)).toBe('done');
    const progress = events
      .filter((e) => e.event === 'progress')
      .map((e) => JSON.parse(e.data) as { step: number; total: number });
    expect(progress.length).toBeGreaterThan(0);
    // Counted in the steps asked for, whatever the model's scheduler visits (PNDM's warm-up repeats a timestep).
    expect(new Set(progress.map((s) => s.total))).toEqual(new Set([24]));
    expect(Math.max(...progress.map((s) => s.step))).toBeLessThanOrEqual(24);
    // Steps only go forward, and progress comes before the output.
    expect(progress.map((s) => s.step)).toEqual([...progress.map((s) => s.step)].sort((a, b) => a - b));
    expect(names.lastIndexOf('progress')).toBeLessThan(names.indexOf('output'));
    expect(events.find((e) => e.event === 'output')?.data).toMatch(new RegExp(`/predictions/${p.id}/0\\.png`));
  });

  it('cancel mid-run ends the prediction canceled, on the edge and on the runner', async () => {
    const p = await createPrediction({ prompt: 'a very slow painting', width: 256, height: 256, num_inference_steps: 150 });
    const running = await waitForStatus(
      p.id,
      (x) => x.status === 'processing' || x.status === 'succeeded' || x.status === 'failed',
    );
    expect(running.status).toBe('processing');
    const cancel = await api(`/v1/predictions/${p.id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(200);
    const final = await waitForStatus(p.id, (x) => ['succeeded', 'failed', 'canceled'].includes(x.status));
    expect(final.status).toBe('canceled');
    expect(final.output ?? []).toEqual([]);
    // Stopped mid-loop, not after it.
    expect(final.progress?.step ?? 0).toBeLessThan(final.progress?.total ?? 150);
    // The runner stopped too (its slot is free again for the next test): it logged the cancel and stored nothing.
    await expect
      .poll(async () => ((await (await fetch(`${stack.runnerUrl}/health-check`)).json()) as { status: string }).status, {
        timeout: 10_000,
      })
      .toBe('READY');
    expect(await storedObjects(stack.s3, p.id)).toEqual([]);
  });

  it('a busy runner (one slot, two predictions at once): the second waits in line, shows its place, and starts when the first ends; each runs once', async () => {
    const input = { width: 256, height: 256, num_inference_steps: 40 };
    const a = await createPrediction({ prompt: 'the first of two', ...input });
    const b = await createPrediction({ prompt: 'the second of two', ...input });
    // While the first runs on the only slot, the second waits at the head of the line.
    const waiting = await waitForStatus(b.id, (x) => x.status === 'starting' && x.queue !== undefined, 30_000);
    expect(waiting.queue?.position).toBe(0);
    const [fa, fb] = await Promise.all(
      [a, b].map((p) => waitForStatus(p.id, (x) => ['succeeded', 'failed', 'canceled'].includes(x.status), 90_000)),
    );
    expect([fa.status, fb.status]).toEqual(['succeeded', 'succeeded']);
    // One slot: the runs did not overlap, and they started in creation order (the runner's own log, one clock).
    const at = (id: string, msg: string) =>
      Date.parse(String(stack.runner.logRecords().find((r) => r.prediction_id === id && r.msg === msg)?.time));
    expect(at(b.id, 'prediction started')).toBeGreaterThanOrEqual(at(a.id, 'prediction completed'));
    // No prediction lost or run twice: one run and one stored object each.
    for (const p of [a, b]) {
      expect(runnerStarts(stack.runner, p.id)).toBe(1);
      expect(await storedObjects(stack.s3, p.id)).toEqual(['0.png']);
    }
  });

  it("the client's webhook gets start and completed, signed per Standard Webhooks, honouring the events filter", async () => {
    const p = await createPrediction(
      { prompt: 'a webhook for you', ...TINY },
      { webhook: hooks.url, webhook_events_filter: ['start', 'completed'] },
    );
    const completed = await hooks.waitFor(p.id, (w) => w.body.status === 'succeeded', 60_000);
    expect(completed.body.output?.[0]).toMatch(/\/0\.png/);
    const deliveries = hooks.forPrediction(p.id);
    expect(deliveries.every((w) => w.signatureValid)).toBe(true);
    expect(deliveries.every((w) => w.webhookId)).toBe(true);
    // start first (not yet terminal), completed last; no per-step output events (filtered out).
    expect(deliveries[0].body.status).not.toBe('succeeded');
    expect(deliveries.at(-1)?.body.status).toBe('succeeded');
    expect(deliveries.length).toBeLessThanOrEqual(3);
    expect(new Set(deliveries.map((w) => w.webhookId)).size).toBe(deliveries.length);
  });
});

describe.skipIf(!!chromiumSkipReason)(`<sd-image> on a third-party page against the real edge${chromiumSkipReason}`, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--headless'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('generates an image with a publishable key from its listed origin (CORS, stream, S3 image)', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(site.origin);
    await page.evaluate(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        const w = window as unknown as { violations?: string[] };
        w.violations = [...(w.violations ?? []), `${e.violatedDirective} ${e.blockedURI}`];
      });
    });
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('a lighthouse at dusk, watercolor');
    await widget.locator('button').click();
    await widget.locator('figure img').waitFor({ state: 'visible', timeout: 30_000 });
    const img = await widget
      .locator('figure img')
      .evaluate((i: HTMLImageElement) => ({ src: i.src, w: i.naturalWidth, h: i.naturalHeight }));
    expect(img.src).toMatch(new RegExp(`^${stack.s3.endpoint}/outputs/predictions/`));
    expect([img.w, img.h]).toEqual([64, 64]);
    expect(await widget.getAttribute('state')).toBe('succeeded');
    expect(errors).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { violations?: string[] }).violations ?? [])).toEqual([]);
    await page.close();
  });

  it('two browser visitors of one page (one pk_ key) each see only their own prediction', async () => {
    const visitors = await Promise.all([browser.newContext(), browser.newContext()]);
    const seen: Array<{ id: string; token: string }> = [];
    for (const [i, context] of visitors.entries()) {
      const page = await context.newPage();
      await page.goto(site.origin);
      const widget = page.locator('sd-image');
      const done = page.evaluate(
        () =>
          new Promise<string>((resolve) =>
            document.addEventListener('sd-image:done', (e) => resolve((e as CustomEvent<{ id: string }>).detail.id)),
          ),
      );
      await widget.locator('textarea').fill(`visitor ${i + 1}'s picture`);
      await widget.locator('button').click();
      const id = await done;
      // The widget keeps its visitor token in this visitor's localStorage.
      const token = await page.evaluate(() => {
        const slot = Object.keys(localStorage).find((k) => k.startsWith('sd-image:visitor:'));
        return slot ? (JSON.parse(localStorage.getItem(slot) ?? '{}') as { token: string }).token : '';
      });
      seen.push({ id, token });
    }
    expect(seen[0].token).not.toBe(seen[1].token);
    const asVisitor = (token: string, path: string) =>
      fetch(`${stack.edgeUrl}${path}`, { headers: { authorization: `Bearer ${token}`, origin: site.origin } });
    for (const [me, other] of [
      [seen[0], seen[1]],
      [seen[1], seen[0]],
    ]) {
      expect((await asVisitor(me.token, `/v1/predictions/${me.id}`)).status).toBe(200);
      expect((await asVisitor(me.token, `/v1/predictions/${other.id}`)).status).toBe(404);
      const cancel = await fetch(`${stack.edgeUrl}/v1/predictions/${other.id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${me.token}`, origin: site.origin },
      });
      expect(cancel.status).toBe(404);
      const listed = (await (await asVisitor(me.token, '/v1/predictions')).json()) as { results: Array<{ id: string }> };
      expect(listed.results.map((r) => r.id)).toEqual([me.id]);
    }
    await Promise.all(visitors.map((v) => v.close()));
  });

  it('shows the real 429 with its Retry-After when the key spent its budget', async () => {
    const page = await browser.newPage();
    await page.goto(`${site.origin}/?key=widget-limited`);
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('a first picture');
    await widget.locator('button').click();
    await widget.locator('figure img').waitFor({ state: 'visible', timeout: 30_000 });
    await widget.locator('textarea').fill('a second picture, too soon');
    await widget.locator('button').click();
    const error = widget.locator('.error');
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    // The edge's Retry-After for a one-per-minute key is up to 60 s, which the widget words in seconds or as a minute.
    expect(await error.textContent()).toMatch(/^Too many images requested right now\. Try again in (\d+ seconds?|1 minute)\.$/);
    expect(await widget.locator('button').isDisabled()).toBe(true);
    await page.close();
  });

  it('explains a key the edge refuses (401)', async () => {
    const page = await browser.newPage();
    await page.goto(`${site.origin}/?key=nonexistent`);
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('a cat');
    await widget.locator('button').click();
    await widget.locator('.error').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await widget.locator('.error').textContent()).toBe(
      'This image generator is not set up correctly (its key was refused). Please tell the site owner.',
    );
    await page.close();
  });

  it('the same key from an origin it does not list is refused', async () => {
    const res = await api('/v1/predictions', {
      key: stack.keys.widget.key,
      headers: { origin: 'http://127.0.0.1:1' },
      body: { version: stack.model.ref, input: { prompt: 'x', ...TINY } },
    });
    expect(res.status).toBe(403);
  });
});
