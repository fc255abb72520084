// The AUTOMATIC1111 surface (/sdapi/v1) through the real worker entry, KV, Queue and Durable Objects, with the
// network faked at fetch: the runner accepts, the test plays its webhooks, output URLs serve PNG bytes.

import { exports } from 'cloudflare:workers';
import { bytesToBase64 } from '@sd/shared/base64';
import { describe, expect, it } from 'vitest';
import {
  api,
  createKey,
  fakeNetwork,
  RUNNER_URL,
  runnerEnvelope,
  runnerPuts,
  type Seen,
  sendRunnerWebhook,
  useEdgeHarness,
  waitFor,
} from './support/edge-harness.ts';

useEdgeHarness();

// A 1x1 PNG: what the fake bucket serves for every output, so the base64 in `images` can be checked byte for byte.
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PNG_BYTES = Uint8Array.from(atob(PNG_1X1), (ch) => ch.charCodeAt(0));

function fakeRunnerAndBucket(): Seen[] {
  return fakeNetwork((req) => {
    if (req.url.startsWith(RUNNER_URL)) return new Response('{}', { status: 202 });
    if (req.url.startsWith('https://bucket.test/')) return new Response(PNG_BYTES, { headers: { 'content-type': 'image/png' } });
    return new Response('no route', { status: 404 });
  });
}

/** Plays the runner for every prediction the edge dispatches: progress, then success with one URL per output. */
async function completeDispatched(seen: Seen[], count: number): Promise<Record<string, unknown>[]> {
  const inputs: Record<string, unknown>[] = [];
  const done = new Set<string>();
  while (done.size < count) {
    const put = await waitFor(() =>
      seen.find((s) => s.method === 'PUT' && s.url.startsWith(`${RUNNER_URL}/predictions/`) && !done.has(s.url)),
    );
    done.add(put.url);
    const id = put.url.slice(`${RUNNER_URL}/predictions/`.length);
    const job = JSON.parse(put.body) as { input: Record<string, unknown> };
    inputs.push(job.input);
    const n = Number(job.input.num_outputs);
    const output = Array.from({ length: n }, (_, i) => `https://bucket.test/${id}/${i}.png`);
    const res = await sendRunnerWebhook(
      runnerEnvelope(id, { status: 'succeeded', output, completed_at: new Date().toISOString() }),
    );
    expect(res.status).toBe(200);
  }
  return inputs;
}

function basic(key: string): string {
  return `Basic ${btoa(`webui:${key}`)}`;
}

/** A request with exactly the given Authorization header (or none), as an A1111 client sends it. */
function withAuth(authorization: string | null, path: string, json?: unknown): Promise<Response> {
  const headers = new Headers(json === undefined ? {} : { 'content-type': 'application/json' });
  if (authorization !== null) headers.set('authorization', authorization);
  const init = json === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(json) };
  return exports.default.fetch(new Request(new URL(path, 'http://edge.test'), init));
}

describe('AUTOMATIC1111 txt2img and img2img', () => {
  it("SillyTavern's txt2img body with HTTP Basic gets base64 images, parameters and info with the seeds", async () => {
    const { key } = await createKey();
    const seen = fakeRunnerAndBucket();
    const body = {
      url: 'http://127.0.0.1:7860',
      auth: `webui:${key}`,
      prompt: 'a castle on a hill',
      negative_prompt: 'lowres',
      sampler_name: 'DPM++ 2M',
      scheduler: 'Karras',
      steps: 20,
      cfg_scale: 6.5,
      width: 512,
      height: 768,
      restore_faces: false,
      enable_hr: false,
      denoising_strength: 0.7,
      override_settings: { CLIP_stop_at_last_layers: 2 },
      save_images: true,
      send_images: true,
    };
    const call = withAuth(basic(key), '/sdapi/v1/txt2img', body);
    const [inputs] = await Promise.all([completeDispatched(seen, 1), call]);
    const res = await call;
    expect(res.status, await res.clone().text()).toBe(200);
    const out = (await res.json()) as { images: string[]; parameters: Record<string, unknown>; info: string };
    expect(out.images).toEqual([bytesToBase64(PNG_BYTES)]);
    expect(out.parameters).toMatchObject({ prompt: 'a castle on a hill', steps: 20, sampler_name: 'DPM++ 2M', seed: -1 });
    const info = JSON.parse(out.info) as { seed: number; all_seeds: number[]; sampler_name: string; clip_skip: number };
    expect(info.all_seeds).toEqual([info.seed]);
    expect(info).toMatchObject({ sampler_name: 'DPM++ 2M', clip_skip: 2 });
    // What reached the runner: our names, the seed the info reports, Karras DPM++ 2M, clip skip 2.
    expect(inputs[0]).toMatchObject({
      scheduler: 'dpmpp_2m_karras',
      num_inference_steps: 20,
      guidance_scale: 6.5,
      width: 512,
      height: 768,
      clip_skip: 2,
      seed: info.seed,
    });
  });

  it('batch_size 2 x n_iter 2 runs two predictions of two images with consecutive seeds', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerAndBucket();
    const call = api(key)('/sdapi/v1/txt2img', {
      method: 'POST',
      json: { prompt: 'two by two', seed: 1000, batch_size: 2, n_iter: 2, steps: 4 },
    });
    const [inputs, res] = await Promise.all([completeDispatched(seen, 2), call]);
    expect(res.status, await res.clone().text()).toBe(200);
    const out = (await res.json()) as { images: string[]; info: string };
    expect(out.images).toHaveLength(4);
    expect(JSON.parse(out.info).all_seeds).toEqual([1000, 1001, 1002, 1003]);
    expect(inputs.map((i) => [i.seed, i.num_outputs])).toEqual([
      [1000, 2],
      [1002, 2],
    ]);
  });

  it('img2img with a mask (raw base64, as A1111 clients send) reaches the runner as an inpainting input', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerAndBucket();
    const call = api(key)('/sdapi/v1/img2img', {
      method: 'POST',
      json: { prompt: 'repaint', init_images: [PNG_1X1], mask: PNG_1X1, denoising_strength: 0.6, steps: 10, mask_blur: 4 },
    });
    const [inputs, res] = await Promise.all([completeDispatched(seen, 1), call]);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { images: string[] }).images).toHaveLength(1);
    expect(inputs[0]).toMatchObject({
      image: `data:image/png;base64,${PNG_1X1}`,
      mask: `data:image/png;base64,${PNG_1X1}`,
      strength: 0.6,
      num_inference_steps: 10,
    });
  });

  it('limits and validation answer in A1111 names: batch_size over the key limit, steps over the maximum', async () => {
    const { key } = await createKey({ maxOutputs: 2 });
    fakeRunnerAndBucket();
    const big = await api(key)('/sdapi/v1/txt2img', { method: 'POST', json: { prompt: 'x', batch_size: 3 } });
    expect(big.status).toBe(422);
    const bigBody = (await big.json()) as { error: { param: string; message: string } };
    expect(bigBody.error.param).toBe('batch_size');
    expect(bigBody.error.message).toBe('batch_size must be an integer between 1 and 2, got 3');
    const steps = await api(key)('/sdapi/v1/txt2img', { method: 'POST', json: { prompt: 'x', steps: 500 } });
    expect(((await steps.json()) as { error: { param: string } }).error.param).toBe('steps');
    const hires = await api(key)('/sdapi/v1/txt2img', { method: 'POST', json: { prompt: 'x', enable_hr: true } });
    expect(hires.status).toBe(422);
  });

  it('needs a key: no credentials is 401, a bad Basic password is 401', async () => {
    const none = await withAuth(null, '/sdapi/v1/txt2img', { prompt: 'x' });
    expect(none.status).toBe(401);
    const bad = await withAuth(basic('sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'), '/sdapi/v1/sd-models');
    expect(bad.status).toBe(401);
    const garbled = await withAuth('Basic !!!', '/sdapi/v1/sd-models');
    expect(garbled.status).toBe(401);
    const { key } = await createKey();
    expect((await withAuth(basic(key), '/sdapi/v1/sd-models')).status).toBe(200);
    // The key as the user name (some clients only have a "user" box) works too.
    expect((await withAuth(`Basic ${btoa(`${key}:`)}`, '/sdapi/v1/sd-models')).status).toBe(200);
  });
});

describe('AUTOMATIC1111 listings, options and progress', () => {
  it('samplers, schedulers, sd-models and options describe this deployment in A1111 shapes', async () => {
    const { key } = await createKey();
    const get = async (path: string) => {
      const res = await api(key)(path);
      expect(res.status, path).toBe(200);
      return res.json() as Promise<unknown>;
    };
    const samplers = (await get('/sdapi/v1/samplers')) as { name: string; aliases: string[]; options: object }[];
    expect(samplers.map((s) => s.name)).toEqual(expect.arrayContaining(['DPM++ 2M', 'Euler a', 'Euler', 'DDIM']));
    const schedulers = (await get('/sdapi/v1/schedulers')) as { name: string; label: string }[];
    expect(schedulers.map((s) => s.label)).toEqual(['Automatic', 'Uniform', 'Karras']);
    // Every configured model (edge/vitest.config.ts also configures the pull pool sd/pulled:v1), the default first.
    expect(((await get('/sdapi/v1/sd-models')) as unknown[]).slice(0, 1)).toEqual([
      {
        title: 'sd/embedded:embedded-v5',
        model_name: 'sd/embedded',
        hash: 'embedded-v5',
        sha256: null,
        filename: 'sd/embedded',
        config: null,
      },
    ]);
    const options = (await get('/sdapi/v1/options')) as Record<string, unknown>;
    expect(options).toMatchObject({ sd_model_checkpoint: 'sd/embedded:embedded-v5', CLIP_stop_at_last_layers: 1 });
    // Open WebUI posts back what it read: accepted. Changing a setting is refused, not dropped.
    const same = await api(key)('/sdapi/v1/options', { method: 'POST', json: options });
    expect(same.status).toBe(200);
    const other = await api(key)('/sdapi/v1/options', { method: 'POST', json: { sd_model_checkpoint: 'v1-5.safetensors' } });
    expect(other.status).toBe(422);
    expect(((await other.json()) as { error: { message: string } }).error.message).toContain(
      'override_settings.sd_model_checkpoint',
    );
    expect(await get('/sdapi/v1/upscalers')).toEqual([expect.objectContaining({ name: 'None' })]);
  });

  it("/progress reports the caller's running prediction and nobody else's; /interrupt cancels it", async () => {
    const { key } = await createKey();
    const { key: otherKey } = await createKey();
    const seen = fakeRunnerAndBucket();
    const idle = (await (await api(key)('/sdapi/v1/progress')).json()) as { progress: number; state: { job_count: number } };
    expect(idle).toMatchObject({ progress: 0, state: { job_count: 0 } });

    const call = api(key)('/sdapi/v1/txt2img', { method: 'POST', json: { prompt: 'slow one', steps: 20 } });
    const put = await waitFor(() => seen.find((s) => s.method === 'PUT' && s.url.startsWith(`${RUNNER_URL}/predictions/`)));
    const id = put.url.slice(`${RUNNER_URL}/predictions/`.length);
    await sendRunnerWebhook(runnerEnvelope(id, { status: 'processing', progress: { step: 5, total: 20, fraction: 0.25 } }));
    const busy = (await (await api(key)('/sdapi/v1/progress')).json()) as {
      progress: number;
      state: { job: string; job_count: number; sampling_step: number; sampling_steps: number };
    };
    expect(busy.progress).toBe(0.25);
    expect(busy.state).toMatchObject({ job: id, job_count: 1, sampling_step: 5, sampling_steps: 20 });
    const others = (await (await api(otherKey)('/sdapi/v1/progress')).json()) as { state: { job_count: number } };
    expect(others.state.job_count).toBe(0);

    const interrupt = await api(key)('/sdapi/v1/interrupt', { method: 'POST' });
    expect(interrupt.status).toBe(200);
    const res = await call;
    // The interrupted txt2img ends with an error naming the cancel, not a hang.
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('was canceled');
    expect(runnerPuts(seen, id)).toHaveLength(1);
  });
});
