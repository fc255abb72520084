// The API surfaces other tools' users come from, end to end through the real stack (scripts/local-stack.ts: the edge
// under wrangler dev, the runner on the embedded model, s3rver): AUTOMATIC1111's /sdapi/v1 with the request bodies
// Open WebUI and SillyTavern send (HTTP Basic, as they authenticate), the `replicate` client's file inputs and models
// API, and the `openai` client's images.edit, models.list and model/quality/style mapping.
import { openAsBlob } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import type {
  ImageEditParamsNonStreaming as ImageEditParams,
  ImageGenerateParamsNonStreaming as ImageGenerateParams,
} from 'openai/resources/images';
import Replicate from 'replicate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';
import { callEdge, imageMetadata, type PublicPrediction } from './support/stack-probes.ts';

let stack: LocalStack;
let replicate: Replicate;
let openai: OpenAI;
let dir: string;

/** A 64x64 PNG: left half red, right half blue, opaque. */
async function twoTonePng(): Promise<Buffer> {
  const px = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < 64 * 64; i++) px.set(i % 64 < 32 ? [220, 30, 30] : [30, 30, 220], i * 3);
  return sharp(px, { raw: { width: 64, height: 64, channels: 3 } })
    .png()
    .toBuffer();
}

/** OpenAI's kind of mask: RGBA, fully transparent (edit here) on the right half, opaque on the left. */
async function alphaMaskPng(): Promise<Buffer> {
  const px = Buffer.alloc(64 * 64 * 4);
  for (let i = 0; i < 64 * 64; i++) px.set(i % 64 < 32 ? [0, 0, 0, 255] : [0, 0, 0, 0], i * 4);
  return sharp(px, { raw: { width: 64, height: 64, channels: 4 } })
    .png()
    .toBuffer();
}

/** Our kind of mask (and A1111's): white = repaint, on the right half. */
async function whiteRightMaskPng(): Promise<Buffer> {
  const px = Buffer.alloc(64 * 64);
  for (let i = 0; i < 64 * 64; i++) px[i] = i % 64 < 32 ? 0 : 255;
  return sharp(px, { raw: { width: 64, height: 64, channels: 1 } })
    .png()
    .toBuffer();
}

function basicAuth(): string {
  return `Basic ${Buffer.from(`webui:${stack.apiKey}`).toString('base64')}`;
}

async function sdapi(path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.edgeUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: basicAuth(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function getPrediction(id: string): Promise<PublicPrediction> {
  const res = await callEdge(stack.edgeUrl, stack.apiKey, `/v1/predictions/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as PublicPrediction;
}

async function decode(b64: string) {
  return sharp(Buffer.from(b64, 'base64')).metadata();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-surfaces-'));
  stack = await startLocalStack({
    secretKey: { ratePerMinute: 600, maxInFlight: 8 },
    runnerEnv: { SLOTS: '1', ORT_INTRA_OP_THREADS: '1' },
  });
  replicate = new Replicate({ auth: stack.apiKey, baseUrl: `${stack.edgeUrl}/v1`, useFileOutput: false });
  openai = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.edgeUrl}/v1` });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('AUTOMATIC1111 clients', () => {
  it('Open WebUI: reads /options and /sd-models, then txt2img with its body gets base64 images and info', async () => {
    // Open WebUI's automatic1111 engine: GET /sdapi/v1/options for sd_model_checkpoint, GET /sd-models for the list.
    const options = (await (await sdapi('/sdapi/v1/options')).json()) as { sd_model_checkpoint: string };
    const models = (await (await sdapi('/sdapi/v1/sd-models')).json()) as { title: string; model_name: string }[];
    expect(models.map((m) => m.title)).toContain(options.sd_model_checkpoint);
    // Its txt2img body: prompt, batch_size (its n), width, height, steps, negative_prompt.
    const res = await sdapi('/sdapi/v1/txt2img', {
      prompt: 'a red fox in snow',
      batch_size: 2,
      width: 64,
      height: 64,
      steps: 4,
      negative_prompt: 'blurry',
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const out = (await res.json()) as { images: string[]; info: string; parameters: Record<string, unknown> };
    expect(out.images).toHaveLength(2);
    for (const b64 of out.images) expect(await decode(b64)).toMatchObject({ width: 64, height: 64, format: 'png' });
    const info = JSON.parse(out.info) as { seed: number; all_seeds: number[]; sampler_name: string; steps: number };
    expect(info.all_seeds).toEqual([info.seed, info.seed + 1]);
    expect(info).toMatchObject({ sampler_name: 'Euler', steps: 4 });
    expect(out.parameters).toMatchObject({ batch_size: 2, cfg_scale: 7, seed: -1 });
    // Two different seeds made two different images.
    expect(out.images[0]).not.toBe(out.images[1]);
  });

  it('SillyTavern: its generate body (DPM++ 2M + Karras, clip skip, hires fix off, its own url/auth fields) renders; the same seed again is the same image', async () => {
    const body = {
      url: stack.edgeUrl,
      auth: `webui:${stack.apiKey}`,
      prompt: 'a lighthouse at dusk',
      negative_prompt: 'lowres',
      sampler_name: 'DPM++ 2M',
      scheduler: 'Karras',
      steps: 5,
      cfg_scale: 7,
      width: 64,
      height: 64,
      restore_faces: false,
      enable_hr: false,
      hr_upscaler: 'Latent',
      hr_scale: 2,
      denoising_strength: 0.7,
      hr_second_pass_steps: 0,
      seed: 1234,
      override_settings: { CLIP_stop_at_last_layers: 1, sd_vae: 'Automatic' },
      override_settings_restore_afterwards: true,
      save_images: true,
      send_images: true,
      do_not_save_grid: false,
      do_not_save_samples: false,
    };
    const first = (await (await sdapi('/sdapi/v1/txt2img', body)).json()) as { images: string[]; info: string };
    expect(first.images).toHaveLength(1);
    expect(await decode(first.images[0])).toMatchObject({ width: 64, height: 64 });
    expect(JSON.parse(first.info)).toMatchObject({ seed: 1234, all_seeds: [1234] });
    const again = (await (await sdapi('/sdapi/v1/txt2img', body)).json()) as { images: string[] };
    expect(again.images[0]).toBe(first.images[0]);
    // SillyTavern's connect-time probes answer in A1111's shapes.
    const samplers = (await (await sdapi('/sdapi/v1/samplers')).json()) as { name: string }[];
    expect(samplers.map((s) => s.name)).toContain('DPM++ 2M');
    const progress = (await (await sdapi('/sdapi/v1/progress')).json()) as { progress: number; state: { job_count: number } };
    expect(progress).toMatchObject({ progress: 0, state: { job_count: 0 } });
  });

  it('img2img with a mask (raw base64, as A1111 clients send it) runs an inpainting prediction on those bytes', async () => {
    const init = (await twoTonePng()).toString('base64');
    const mask = (await whiteRightMaskPng()).toString('base64');
    const body = {
      prompt: 'green grass',
      init_images: [init],
      denoising_strength: 0.9,
      steps: 4,
      width: 64,
      height: 64,
      seed: 99,
      mask_blur: 4,
      inpainting_fill: 1,
      inpaint_full_res: false,
    };
    const masked = await sdapi('/sdapi/v1/img2img', { ...body, mask });
    expect(masked.status, await masked.clone().text()).toBe(200);
    const out = (await masked.json()) as { images: string[]; info: string };
    expect(await decode(out.images[0])).toMatchObject({ width: 64, height: 64 });
    const info = JSON.parse(out.info) as { prediction_ids: string[]; denoising_strength: number };
    expect(info.denoising_strength).toBe(0.9);
    const p = await getPrediction(info.prediction_ids[0]);
    expect(p.status).toBe('succeeded');
    expect(p.input).toMatchObject({
      image: `data:image/png;base64,${init}`,
      mask: `data:image/png;base64,${mask}`,
      strength: 0.9,
    });
    // The same request without the mask is plain img2img: a different picture from the same seed.
    const plain = (await (await sdapi('/sdapi/v1/img2img', body)).json()) as { images: string[] };
    expect(plain.images[0]).not.toBe(out.images[0]);
  });
});

describe('the replicate client', () => {
  const TINY = { width: 64, height: 64, num_inference_steps: 4 } as const;

  it('replicate.run with a Buffer image uploads it to /v1/files and runs img2img on it unchanged', async () => {
    const buffer = await twoTonePng();
    const output = (await replicate.run(stack.model.ref as `${string}/${string}:${string}`, {
      input: { prompt: 'a painting', image: buffer, prompt_strength: 0.5, disable_safety_checker: true, ...TINY },
    })) as string[];
    expect(output).toHaveLength(1);
    expect(await imageMetadata(output[0])).toMatchObject({ width: 64, height: 64 });
    // The upload is listed as the caller's file, and the prediction ran on its bytes with prompt_strength as strength.
    const files = await replicate.files.list();
    expect(files.results.length).toBeGreaterThan(0);
    const [latest] = (await replicate.predictions.list()).results;
    expect(latest.input).toMatchObject({ strength: 0.5, disable_safety_checker: true });
    expect(latest.logs).toContain('this pipeline has no safety checker');
    expect(String((latest.input as { image: string }).image)).toMatch(/^data:image\/png;base64,/);
  });

  it('replicate.run with a file from a path (fs.openAsBlob) works the same way', async () => {
    const path = join(dir, 'input.png');
    await writeFile(path, await twoTonePng());
    const output = (await replicate.run(stack.model.ref as `${string}/${string}:${string}`, {
      input: { prompt: 'a painting', image: await openAsBlob(path, { type: 'image/png' }), ...TINY },
    })) as string[];
    expect(await imageMetadata(output[0])).toMatchObject({ width: 64, height: 64 });
  });

  it('replicate.files.create / get round-trip the file object; a non-image is refused', async () => {
    const created = await replicate.files.create(await twoTonePng(), { purpose: 'test' });
    expect(created).toMatchObject({ content_type: 'image/png', metadata: { purpose: 'test' } });
    expect(created.urls.get).toBe(`${stack.edgeUrl}/v1/files/${created.id}`);
    const got = await replicate.files.get(created.id);
    expect(got.checksums.sha256).toBe(created.checksums.sha256);
    await expect(replicate.files.create(Buffer.from('not an image'))).rejects.toThrow(/415|PNG, JPEG or WebP/);
  });

  it('replicate.models.get and models.versions.list describe the model with its input schema', async () => {
    const [owner, name] = stack.model.id.split('/');
    const model = await replicate.models.get(owner, name);
    expect(model).toMatchObject({ owner, name, latest_version: { id: stack.model.version } });
    const schema = model.latest_version?.openapi_schema as {
      components: { schemas: { Input: { properties: Record<string, { default?: unknown }>; required: string[] } } };
    };
    expect(schema.components.schemas.Input.required).toContain('prompt');
    expect(schema.components.schemas.Input.properties.num_inference_steps.default).toBe(25);
    expect(Object.keys(schema.components.schemas.Input.properties)).toEqual(
      expect.arrayContaining(['prompt', 'image', 'mask', 'strength', 'prompt_strength', 'seed', 'scheduler']),
    );
    const versions = await replicate.models.versions.list(owner, name);
    expect(versions.results.map((v) => v.id)).toEqual([stack.model.version]);
    await expect(replicate.models.get('nobody', 'nothing')).rejects.toThrow(/404/);
  });

  it('A1111 names sent to /v1/predictions are refused with the field to use instead', async () => {
    const res = await callEdge(stack.edgeUrl, stack.apiKey, '/v1/predictions', {
      body: { version: stack.model.ref, input: { prompt: 'x', steps: 20, cfg_scale: 7, seed: -1 } },
    });
    expect(res.status).toBe(422);
    const message = ((await res.json()) as { error: { message: string } }).error.message;
    expect(message).toContain('unknown field input.steps is not accepted; use input.num_inference_steps');
    expect(message).toContain('use input.guidance_scale');
    expect(message).toContain('omit it or send null for a random seed');
  });
});

describe('the openai client', () => {
  const size = '64x64' as ImageEditParams['size'];

  it('openai.models.list lists the configured models', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toContain(stack.model.id);
  });

  it('images.generate with an OpenAI model name runs the default model and says so; quality and style are mapped', async () => {
    const params = {
      model: 'dall-e-3',
      prompt: 'a blue boat',
      size: size as ImageGenerateParams['size'],
      quality: 'low',
      style: 'vivid',
      response_format: 'b64_json',
    } as ImageGenerateParams;
    const { data: body, response } = await openai.images.generate(params).withResponse();
    expect(response.headers.get('x-model')).toBe(stack.model.ref);
    expect((body as unknown as { model: string }).model).toBe(stack.model.ref);
    expect(await decode(body.data![0].b64_json!)).toMatchObject({ width: 64, height: 64 });
    const p = await getPrediction(response.headers.get('x-prediction-id')!);
    expect(p.input).toMatchObject({ num_inference_steps: 15, guidance_scale: 9 });
  });

  it('images.edit with an image and an OpenAI (alpha) mask inpaints where the mask is transparent', async () => {
    const { data: body, response } = await openai.images
      .edit({
        model: 'gpt-image-1',
        image: await toFile(await twoTonePng(), 'input.png', { type: 'image/png' }),
        mask: await toFile(await alphaMaskPng(), 'mask.png', { type: 'image/png' }),
        prompt: 'green grass',
        size,
        response_format: 'b64_json',
        num_inference_steps: 4,
      } as ImageEditParams)
      .withResponse();
    expect(await decode(body.data![0].b64_json!)).toMatchObject({ width: 64, height: 64 });
    const p = await getPrediction(response.headers.get('x-prediction-id')!);
    // The mask that ran is ours: white (repaint) exactly where OpenAI's mask was transparent (the right half).
    const mask = Buffer.from(String(p.input.mask).replace(/^data:image\/png;base64,/, ''), 'base64');
    const { data } = await sharp(mask).greyscale().raw().toBuffer({ resolveWithObject: true });
    expect(data[32 * 64 + 8]).toBe(0);
    expect(data[32 * 64 + 56]).toBe(255);
  });

  it('images.edit without a mask is img2img at the image size; a transparent background is refused', async () => {
    const image = await toFile(await twoTonePng(), 'input.png', { type: 'image/png' });
    const res = await openai.images.edit({ image, prompt: 'a watercolor', num_inference_steps: 4 } as ImageEditParams);
    expect(res.data![0].url).toMatch(/\/outputs\/predictions\//);
    expect(await imageMetadata(res.data![0].url!)).toMatchObject({ width: 64, height: 64 });
    await expect(
      openai.images.edit({
        image: await toFile(await twoTonePng(), 'input.png', { type: 'image/png' }),
        prompt: 'x',
        background: 'transparent',
      }),
    ).rejects.toThrow(/background must be opaque or auto/);
  });
});
