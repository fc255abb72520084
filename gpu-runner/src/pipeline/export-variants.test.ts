import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff } from '../../../test/support/reference.ts';
import {
  buildRandomModelFiles,
  ensureRandomModel,
  type ModelVariantOptions,
  RANDOM_MODEL_GENERATOR_VERSION,
  writeRandomModel,
} from '../default-model/random-model.ts';
import type { BoundRun, Feed, FloatOutput } from '../model/onnx-session.ts';
import { maskImage, maskToLatent } from './inpaint.ts';
import { StableDiffusionPipeline } from './pipeline.ts';
import { type GenerateRequest, type GenerateResult, type ImageInput, InvalidRequestError } from './types.ts';
import { encodeImage, rgbToUnitRange } from './vae.ts';

// The seeded-random model written with other exporters' and model families' conventions (default-model's variant
// options), so every branch of the loader and the pipeline runs on a real graph. Variants that change only an
// interface (dtypes, shapes, output form) have the default model's weights, so their images must not change.

// onnx-proto is CommonJS; load it as graph-builder.ts does.
const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');

const SIZE = 64;
const BASE: GenerateRequest = {
  prompt: 'a red fox in the snow',
  width: SIZE,
  height: SIZE,
  steps: 3,
  guidanceScale: 7.5,
  seed: 11,
};

/** SD 2.1's own scheduler_config.json (DDIM, v-prediction). */
const SD2_SCHEDULER = {
  _class_name: 'DDIMScheduler',
  _diffusers_version: '0.8.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'v_prediction',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
};

/** SD-Turbo's conventions: trailing timestep spacing, an Euler-family scheduler, no guidance. */
const TURBO_SCHEDULER = {
  _class_name: 'EulerAncestralDiscreteScheduler',
  _diffusers_version: '0.24.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  steps_offset: 1,
  timestep_spacing: 'trailing',
  trained_betas: null,
};

const VARIANTS = {
  base: {},
  int64Timestep: { timestepDtype: 'int64' },
  scalarTimestep: { timestepShape: 'scalar' },
  int64Ids: { inputIdsDtype: 'int64' },
  latentParameters: { vaeEncoderOutput: 'latent_parameters' },
  inpainting: { unetInChannels: 9 },
  sd2: { hiddenSize: 96, padToken: '!', schedulerConfig: SD2_SCHEDULER },
  sd2EosPadding: { hiddenSize: 96, padToken: 'eos', schedulerConfig: SD2_SCHEDULER },
  turbo: { schedulerConfig: TURBO_SCHEDULER },
} satisfies Record<string, ModelVariantOptions>;
type VariantName = keyof typeof VARIANTS;

let root = '';
const pipes = new Map<VariantName, StableDiffusionPipeline>();

async function pipeline(name: VariantName): Promise<StableDiffusionPipeline> {
  const existing = pipes.get(name);
  if (existing) return existing;
  const dir = join(root, name);
  await writeRandomModel(dir, VARIANTS[name]);
  const pipe = await StableDiffusionPipeline.load(dir, { intraOpNumThreads: 1 });
  pipes.set(name, pipe);
  return pipe;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd-export-variants-'));
});
afterAll(async () => {
  for (const pipe of pipes.values()) await pipe.release();
  await rm(root, { recursive: true, force: true });
});

function expectImages(result: GenerateResult, count = 1): void {
  expect(result.width).toBe(SIZE);
  expect(result.height).toBe(SIZE);
  expect(result.images).toHaveLength(count);
  for (const image of result.images) {
    expect(image.rgb).toHaveLength(SIZE * SIZE * 3);
    expect(image.decoded.every(Number.isFinite)).toBe(true);
  }
  expect(result.latents.data.every(Number.isFinite)).toBe(true);
}

/** Records a copy of every U-Net feed at each run (the loop binds its buffers once and refills them per step). */
function recordUnetFeeds(pipe: StableDiffusionPipeline): {
  runs: Record<string, Float32Array | BigInt64Array>[];
  restore(): void;
} {
  const unet = pipe.model.unet;
  const original = unet.bind;
  const runs: Record<string, Float32Array | BigInt64Array>[] = [];
  unet.bind = (feeds: Record<string, Feed>, outputs: Record<string, FloatOutput>): BoundRun => {
    const bound = original.call(unet, feeds, outputs);
    return {
      run() {
        const copy: Record<string, Float32Array | BigInt64Array> = {};
        for (const [name, feed] of Object.entries(feeds)) {
          copy[name] = feed.data instanceof BigInt64Array ? feed.data.slice() : Float32Array.from(feed.data as ArrayLike<number>);
        }
        runs.push(copy);
        return bound.run();
      },
    };
  };
  const restore = () => {
    unet.bind = original;
  };
  return { runs, restore };
}

/** A smooth RGB test picture. */
function picture(seed = 0): Extract<ImageInput, { kind: 'pixels' }> {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const p = (y * SIZE + x) * 3;
      data[p] = (x * 4 + seed) & 255;
      data[p + 1] = (y * 4) & 255;
      data[p + 2] = ((x + y) * 2) & 255;
    }
  }
  return { kind: 'pixels', data, width: SIZE, height: SIZE, channels: 3 };
}

/** White (repaint) on the right half. */
const RIGHT_HALF = new Uint8Array(SIZE * SIZE).map((_, i) => (i % SIZE >= SIZE / 2 ? 255 : 0));
const MASK: ImageInput = { kind: 'pixels', data: RIGHT_HALF, width: SIZE, height: SIZE, channels: 1 };

describe('variant options of the seeded-random model', () => {
  it("leave the default model's bytes as generator version 2 wrote them", () => {
    const digest = (options?: ModelVariantOptions) => {
      const hash = createHash('sha256');
      for (const f of buildRandomModelFiles(options)) hash.update(f.path).update(f.data);
      return hash.digest('hex');
    };
    // Pinned for RANDOM_MODEL_GENERATOR_VERSION 2 (1 had no hidden_states outputs and was
    // 94a6efac51752ba73fd2eca62ad378cacddd619b62f98f47bbc6ef8590709f6a): a change of the default's bytes must bump the
    // version (and this).
    expect(RANDOM_MODEL_GENERATOR_VERSION).toBe(2);
    expect(digest()).toBe('3885ae6c01abb01ad75828c73392afdcc03611d65129446a78dbc1fa2b88f5d5');
    expect(digest({})).toBe(digest());
  });

  it.each([
    ['unet/model.onnx', { timestepDtype: 'int64' }],
    ['unet/model.onnx', { timestepShape: 'scalar' }],
    ['text_encoder/model.onnx', { inputIdsDtype: 'int64', padToken: '!' }],
    ['text_encoder/model.onnx', { textHiddenStates: false }],
    ['vae_encoder/model.onnx', { vaeEncoderOutput: 'latent_parameters' }],
  ] as const)('keep every named weight of %s for %o', (path, options) => {
    const weights = (o: ModelVariantOptions) => {
      const file = buildRandomModelFiles(o).find((f) => f.path === path)!;
      const graph = onnx.ModelProto.decode(file.data).graph!;
      // const_* are the builder's shared constants (shapes, axes), named in creation order.
      return new Map(
        (graph.initializer ?? [])
          .filter((t) => !t.name!.startsWith('const_'))
          .map((t) => [t.name!, Buffer.from(t.rawData!).toString('base64')]),
      );
    };
    const base = weights({});
    const variant = weights(options);
    expect(base.size).toBeGreaterThan(10);
    expect(variant).toEqual(base);
  });

  it('reject options out of range, naming the value', () => {
    expect(() => buildRandomModelFiles({ hiddenSize: 30 })).toThrow(
      "hiddenSize must be a multiple of 4 (the text encoder's heads) between 8 and 1024, got 30",
    );
    expect(() => buildRandomModelFiles({ unetInChannels: 5 as 4 })).toThrow('unetInChannels must be 4 or 9, got 5');
    expect(() => buildRandomModelFiles({ schedulerConfig: { prediction_type: 'epsilon' } })).toThrow(
      'schedulerConfig._class_name',
    );
  });

  it('are never taken for the random model itself by ensureRandomModel', async () => {
    const cache = join(root, 'cache');
    await writeRandomModel(join(cache, 'sd-random-v1'), { timestepDtype: 'int64' });
    const dir = await ensureRandomModel(cache);
    const pipe = await StableDiffusionPipeline.load(dir, { intraOpNumThreads: 1 });
    try {
      expect(pipe.model.io.unet.timestepDtype).toBe('float32');
    } finally {
      await pipe.release();
    }
  });
});

describe('interface-only variants give the default model images (same weights; tolerance: exact)', () => {
  it.each([
    ['int64 timestep [batch] (optimum 1.x)', 'int64Timestep'],
    ['float32 rank-0 timestep (newer optimum)', 'scalarTimestep'],
    ['int64 input_ids (newer optimum)', 'int64Ids'],
  ] as const)('%s', async (_title, name) => {
    const base = await (await pipeline('base')).generate(BASE);
    const variant = await pipeline(name);
    const out = await variant.generate(BASE);
    expectImages(out);
    expect(maxAbsDiff(out.latents.data, base.latents.data)).toBe(0);
    expect(maxAbsDiff(out.images[0].rgb, base.images[0].rgb)).toBe(0);
  });

  it('reads the dtypes and the timestep rank from the graphs', async () => {
    expect((await pipeline('base')).model.io.unet).toMatchObject({ timestepDtype: 'float32', timestepShape: 'batch' });
    expect((await pipeline('base')).model.io.text.inputDtype).toBe('int32');
    expect((await pipeline('int64Timestep')).model.io.unet).toMatchObject({ timestepDtype: 'int64', timestepShape: 'batch' });
    expect((await pipeline('scalarTimestep')).model.io.unet).toMatchObject({ timestepDtype: 'float32', timestepShape: 'scalar' });
    expect((await pipeline('int64Ids')).model.io.text.inputDtype).toBe('int64');
  });

  it('feeds an int64 timestep as the truncated integer (numpy astype), one per batch item', async () => {
    const pipe = await pipeline('int64Timestep');
    const rec = recordUnetFeeds(pipe);
    try {
      // Euler with linspace spacing has a fractional timestep: linspace(0, 999, 3) reversed = 999, 499.5, 0.
      expectImages(await pipe.generate({ ...BASE, scheduler: 'euler' }));
    } finally {
      rec.restore();
    }
    expect(rec.runs.map((r) => [...(r.timestep as BigInt64Array)])).toEqual([
      [999n, 999n],
      [499n, 499n],
      [0n, 0n],
    ]);
  });

  it('takes the mean of a latent_parameters encoder output (mean and logvar): img2img as with latent_sample', async () => {
    const pipe = await pipeline('latentParameters');
    expect(pipe.model.io.vaeEncoder).toEqual({ input: 'sample', output: 'latent_parameters' });
    expect(pipe.model.vaeEncoder?.output('latent_parameters')?.dims[1]).toBe(8);
    const request = { ...BASE, image: picture(), strength: 0.7 };
    const base = await (await pipeline('base')).generate(request);
    const out = await pipe.generate(request);
    expectImages(out);
    expect(maxAbsDiff(out.latents.data, base.latents.data)).toBe(0);
    expect(maxAbsDiff(out.images[0].rgb, base.images[0].rgb)).toBe(0);
  });
});

describe('9-channel inpainting U-Net', () => {
  it('is recognised from the graph and refuses requests without an image and a mask', async () => {
    const pipe = await pipeline('inpainting');
    expect(pipe.model.io.unet.inChannels).toBe(9);
    expect(pipe.model.io.isInpainting).toBe(true);
    expect(pipe.model.io.latentChannels).toBe(4);
    await expect(pipe.generate(BASE)).rejects.toThrow(
      new InvalidRequestError('this is an inpainting model (9-channel U-Net): it needs an image and a mask'),
    );
    await expect(pipe.generate({ ...BASE, image: picture() })).rejects.toThrow(
      new InvalidRequestError('this is an inpainting model (9-channel U-Net): give it a mask with the image'),
    );
  });

  it('gets concat(latents, mask, masked-image latents) on every call, uncond and cond halves alike', async () => {
    const pipe = await pipeline('inpainting');
    const { model } = pipe;
    const image = picture();
    const c = 4;
    const plane = (SIZE / 8) * (SIZE / 8);
    const initLatents = Float32Array.from({ length: c * plane }, (_, i) => Math.sin(i));
    const rec = recordUnetFeeds(pipe);
    let out: GenerateResult;
    try {
      out = await pipe.generate({ ...BASE, image, mask: MASK, initLatents });
    } finally {
      rec.restore();
    }
    expectImages(out);

    // What diffusers' inpainting pipeline prepares: the binarized latent mask and the encoded masked image.
    const latentMask = maskToLatent(RIGHT_HALF, SIZE, SIZE, 8);
    const pixels = new Float32Array(3 * SIZE * SIZE);
    rgbToUnitRange(image.data, SIZE, SIZE, pixels);
    const masked = (await encodeImage(model, maskImage(pixels, RIGHT_HALF, SIZE, SIZE), [1, 3, SIZE, SIZE])).data;
    expect(latentMask.some((m) => m === 1) && latentMask.some((m) => m === 0)).toBe(true);

    expect(rec.runs).toHaveLength(BASE.steps + 1); // PNDM's PLMS warm-up repeats the first timestep
    for (const [i, run] of rec.runs.entries()) {
      const sample = run.sample as Float32Array;
      expect(sample).toHaveLength(2 * 9 * plane); // [uncond; cond] × 9 channels
      for (let b = 0; b < 2; b++) {
        const item = sample.subarray(b * 9 * plane, (b + 1) * 9 * plane);
        expect(maxAbsDiff(item.subarray(c * plane, (c + 1) * plane), latentMask), `run ${i} item ${b} mask`).toBe(0);
        expect(maxAbsDiff(item.subarray((c + 1) * plane), masked), `run ${i} item ${b} masked image`).toBe(0);
        // PNDM: init_noise_sigma 1 and an identity scale_model_input, so the first call sees the start latents.
        if (i === 0) expect(maxAbsDiff(item.subarray(0, c * plane), initLatents)).toBe(0);
      }
    }
  });

  it('lays out mask and masked-image latents per image: image i of two is the single run with seed + i', async () => {
    const pipe = await pipeline('inpainting');
    const request = { ...BASE, steps: 2, image: picture(), mask: MASK };
    const two = await pipe.generate({ ...request, numOutputs: 2 });
    const second = await pipe.generate({ ...request, seed: BASE.seed + 1 });
    expectImages(two, 2);
    // Tolerance 1e-4: onnxruntime may sum in another order for batch 4 than for batch 2.
    expect(maxAbsDiff(two.images[1].decoded, second.images[0].decoded)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(two.images[0].decoded, two.images[1].decoded)).toBeGreaterThan(1e-2);
  });

  it('never sees the pixels under the mask: changing them leaves the result as it was', async () => {
    const pipe = await pipeline('inpainting');
    const a = picture(0);
    const underMask = picture(0);
    const outside = picture(0);
    for (let p = 0; p < SIZE * SIZE; p++) {
      const target = RIGHT_HALF[p] === 255 ? underMask : outside;
      target.data[p * 3] = 255 - target.data[p * 3];
    }
    const request = { ...BASE, mask: MASK, steps: 2 };
    const first = await pipe.generate({ ...request, image: a });
    const changedUnder = await pipe.generate({ ...request, image: underMask });
    const changedOutside = await pipe.generate({ ...request, image: outside });
    expect(maxAbsDiff(changedUnder.latents.data, first.latents.data)).toBe(0);
    expect(maxAbsDiff(changedOutside.latents.data, first.latents.data)).toBeGreaterThan(1e-4);
  });
});

describe('inpainting keeps the input outside the mask', () => {
  // sigma 1 px at 64x64 (overlayWeights): 3 px of soft edge on each side of the mask's border.
  const EDGE = 3;

  it.each(['base', 'inpainting'] as const)(
    '%s U-Net: far from the mask the pixels are the input, inside they change',
    async (name) => {
      const pipe = await pipeline(name);
      const image = picture();
      const out = await pipe.generate({ ...BASE, image, mask: MASK, steps: 2 });
      expectImages(out);
      const rgb = out.images[0].rgb;
      let keptDiff = 0;
      let repaintDiff = 0;
      let repaintCount = 0;
      for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++) {
          for (let ch = 0; ch < 3; ch++) {
            const i = (y * SIZE + x) * 3 + ch;
            const diff = Math.abs(rgb[i] - image.data[i]);
            if (x < SIZE / 2 - EDGE) keptDiff = Math.max(keptDiff, diff);
            if (x >= SIZE / 2 + EDGE) {
              repaintDiff += diff;
              repaintCount++;
            }
          }
        }
      }
      // Kept: the input's own pixels (tolerance 1 for rounding); the VAE round trip alone would change them.
      expect(keptDiff).toBeLessThanOrEqual(1);
      expect(repaintDiff / repaintCount).toBeGreaterThan(10);
      // The decoder's own output still differs from the input on the kept side: the overlay is what keeps it.
      const decodedRgb = out.images[0].decoded;
      expect(decodedRgb.length).toBe(3 * SIZE * SIZE);
    },
  );
});

describe('SD 2.x conventions (v-prediction, pad token "!", hidden size 96)', () => {
  it('reads the hidden size from the graphs and returns embeddings of that width', async () => {
    const pipe = await pipeline('sd2');
    expect(pipe.model.io.text.hiddenSize).toBe(96);
    const out = await pipe.generate({ ...BASE, returnEmbeddings: true });
    expectImages(out);
    expect(out.embeddings?.cond.shape).toEqual([1, 77, 96]);
    expect(out.embeddings?.uncond?.shape).toEqual([1, 77, 96]);
  });

  it('pads with id 0 and gives the padding positions other embeddings than EOS padding', async () => {
    const sd2 = await pipeline('sd2');
    const eos = await pipeline('sd2EosPadding');
    const config = JSON.parse(await readFile(join(root, 'sd2', 'tokenizer', 'tokenizer_config.json'), 'utf8'));
    expect(config.pad_token).toBe('!');
    const ids = sd2.tokenize('a cat', {}).ids[0];
    const eosIds = eos.tokenize('a cat', {}).ids[0];
    const eosId = eosIds[eosIds.length - 1];
    const end = ids.indexOf(eosId); // the first EOS closes the prompt
    expect(end).toBeGreaterThan(1);
    expect(ids.slice(0, end + 1)).toEqual(eosIds.slice(0, end + 1));
    expect(ids.slice(end + 1).every((id) => id === 0)).toBe(true);
    expect(eosIds.slice(end + 1).every((id) => id === eosId)).toBe(true);

    const request = { ...BASE, prompt: 'a cat', guidanceScale: 0, steps: 1, returnEmbeddings: true };
    const a = (await sd2.generate(request)).embeddings!.cond.data;
    const b = (await eos.generate(request)).embeddings!.cond.data;
    const hidden = 96;
    // Causal attention: positions up to the first EOS see the same tokens; the padding after it differs.
    expect(maxAbsDiff(a.subarray(0, (end + 1) * hidden), b.subarray(0, (end + 1) * hidden))).toBe(0);
    expect(maxAbsDiff(a.subarray((end + 1) * hidden), b.subarray((end + 1) * hidden))).toBeGreaterThan(1e-3);
  });

  it("uses the model's v_prediction config, which changes the result against epsilon with the same weights", async () => {
    const pipe = await pipeline('sd2');
    expect(pipe.defaultScheduler).toBe('ddim');
    const own = await pipe.generate(BASE);
    const v = await pipe.generate({ ...BASE, schedulerConfig: { prediction_type: 'v_prediction' } });
    const eps = await pipe.generate({ ...BASE, schedulerConfig: { prediction_type: 'epsilon' } });
    expectImages(own);
    expect(own.scheduler).toBe('ddim');
    expect(maxAbsDiff(own.latents.data, v.latents.data)).toBe(0);
    expect(maxAbsDiff(own.latents.data, eps.latents.data)).toBeGreaterThan(1e-2);
  });
});

describe('SD-Turbo conventions (trailing spacing, euler_a, guidance 0)', () => {
  it('runs single-batch U-Net calls at the trailing timesteps without an uncond pass', async () => {
    const pipe = await pipeline('turbo');
    expect(pipe.defaultScheduler).toBe('euler_a');
    const rec = recordUnetFeeds(pipe);
    let one: GenerateResult;
    let two: GenerateResult;
    try {
      one = await pipe.generate({ ...BASE, steps: 1, guidanceScale: 0 });
      two = await pipe.generate({ ...BASE, steps: 2, guidanceScale: 0, numOutputs: 2 });
    } finally {
      rec.restore();
    }
    expectImages(one);
    expectImages(two, 2);
    expect(one.scheduler).toBe('euler_a');
    expect(one.unetBatchSizes).toEqual([1]);
    expect(two.unetBatchSizes).toEqual([2, 2]);
    // trailing: round(arange(1000, 0, -1000/N)) - 1.
    expect(rec.runs.map((r) => [...(r.timestep as Float32Array)])).toEqual([[999], [999, 999], [499, 499]]);
    // Without guidance the encoder_hidden_states hold the prompt only: one [77, hidden] window per image.
    expect(rec.runs[0].encoder_hidden_states).toHaveLength(77 * 64);
    expect(one.images[0].rgb.some((v, i) => v !== two.images[0].rgb[i])).toBe(true); // 1 vs 2 steps differ
  });
});
