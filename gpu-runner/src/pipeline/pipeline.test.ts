import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  maxAbs,
  maxAbsDiff,
  type RefTensor,
  readReferenceJson,
  referenceDir,
  referencePath,
  referenceSkipReason,
  toFloat32,
} from '../../../test/support/reference.ts';
import { encodeImage as encodePng } from '../image/image-codec.ts';
import { schedulerNameFromConfig } from '../schedulers/index.ts';
import type { GoldenCase, GoldenIndexEntry } from './golden-cases.ts';
import { StableDiffusionPipeline } from './pipeline.ts';
import { CanceledError, type GenerateRequest, InvalidRequestError } from './types.ts';

/** Item b of a batch-first tensor (the goldens may batch several prompts; every image is computed independently). */
function item(t: RefTensor, b: number, batch: number): Float32Array {
  const all = toFloat32(t);
  const size = all.length / batch;
  return all.subarray(b * size, (b + 1) * size);
}

/** Hands out the reference's stored scheduler noises in order (the goldens replaced diffusers' draws with these). */
function storedNoise(golden: GoldenCase, b: number, batch: number) {
  const queue = golden.steps.filter((s) => s.noise).map((s) => item(s.noise!, b, batch));
  return {
    randn(shape: readonly number[]) {
      const next = queue.shift();
      if (!next || next.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`no stored noise left for shape [${shape}]`);
      return next;
    },
  };
}

// Golden: ../shared/reference/pipeline/<case>.json, made by diffusers 0.31 (OnnxStableDiffusionPipeline and the
// img2img procedure of its README) on tiny-sd. Tolerances from that README: latents abs 1e-4·max(1, max|ref|),
// decoded image abs 1e-4, uint8 pixels ±1.
describe.skipIf(!referenceDir)(`StableDiffusionPipeline vs pipeline goldens${referenceSkipReason}`, () => {
  let pipe: StableDiffusionPipeline;
  const index = referenceDir ? readReferenceJson<GoldenIndexEntry[]>('pipeline', 'cases_index.json') : [];
  beforeAll(async () => {
    pipe = await StableDiffusionPipeline.load(join(referenceDir!, 'tiny-sd'), { intraOpNumThreads: 1 });
  });
  afterAll(() => pipe?.release());

  it.each(index.map((c) => [c.name, c] as const))('reproduces %s', async (_name, entry) => {
    const golden = readReferenceJson<GoldenCase>('pipeline', `${entry.name}.json`);
    // The scheduler as the golden built it: its class and its stored config (diffusers' from_config of the model's).
    const scheduler = schedulerNameFromConfig({ ...golden.scheduler_config, _class_name: golden.scheduler_class });
    const batch = golden.prompts.length;
    const ref = toFloat32(golden.final_latents);
    const latentTolerance = 1e-4 * Math.max(1, maxAbs(ref));
    for (let b = 0; b < batch; b++) {
      const request: GenerateRequest = {
        prompt: golden.prompts[b],
        negativePrompt: golden.negative_prompt ?? '',
        width: golden.width,
        height: golden.height,
        steps: golden.num_inference_steps,
        guidanceScale: golden.guidance_scale,
        scheduler,
        schedulerConfig: golden.scheduler_config,
        // diffusers tokenizes literally and truncates at 77.
        promptMode: 'truncate',
        promptWeighting: false,
        seed: entry.seed,
        initLatents: item(golden.kind === 'img2img' ? golden.noise! : golden.initial_noise!, b, batch),
        schedulerNoise: storedNoise(golden, b, batch),
      };
      if (golden.kind === 'img2img') {
        request.image = {
          kind: 'encoded',
          bytes: new Uint8Array(readFileSync(referencePath('pipeline', golden.init_image_png!))),
        };
        request.strength = golden.strength;
      }
      const steps: number[] = [];
      const result = await pipe.generate(request, { onProgress: (p) => steps.push(p.step) });

      expect(steps).toEqual(golden.steps.map((s) => s.i + 1));
      expect(result.unetBatchSizes).toEqual(golden.steps.map(() => (golden.guidance_scale > 1 ? 2 : 1)));
      expect(maxAbsDiff(result.latents.data, item(golden.final_latents, b, batch))).toBeLessThanOrEqual(latentTolerance);
      expect(maxAbsDiff(result.images[0].decoded, item(golden.decoded_image, b, batch))).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(result.images[0].rgb, item(golden.image_uint8_nhwc, b, batch))).toBeLessThanOrEqual(1);
    }
  });

  const base: GenerateRequest = {
    prompt: 'a red cube on a blue table',
    width: 64,
    height: 64,
    steps: 4,
    guidanceScale: 7.5,
    scheduler: 'ddim',
    seed: 7,
  };

  it('gives image i of a multi-output run the same result as a single run with seed + i', async () => {
    const scheduler = 'euler_a';
    const two = await pipe.generate({ ...base, scheduler, numOutputs: 2 });
    const one = await pipe.generate({ ...base, scheduler, seed: base.seed + 1 });
    expect(two.images.map((i) => i.seed)).toEqual([7, 8]);
    expect(maxAbsDiff(two.images[1].decoded, one.images[0].decoded)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(two.images[0].decoded, two.images[1].decoded)).toBeGreaterThan(1e-2);
  });

  it('runs no uncond pass at guidance 1 and a batched one above', async () => {
    expect((await pipe.generate({ ...base, guidanceScale: 1 })).unetBatchSizes).toEqual([1, 1, 1, 1]);
    expect((await pipe.generate({ ...base, numOutputs: 2 })).unetBatchSizes).toEqual([4, 4, 4, 4]);
  });

  it('guides the first guidance_end of the steps: the request, else the model default (1 unless it ships one)', async () => {
    expect(pipe.defaultGuidanceEnd()).toBe(1);
    expect((await pipe.generate({ ...base, guidanceEnd: 0.5 })).unetBatchSizes).toEqual([2, 2, 1, 1]);
    // guidance_end 0 is the prompt's prediction alone: the image guidance 1 gives.
    const none = await pipe.generate({ ...base, guidanceEnd: 0 });
    const plain = await pipe.generate({ ...base, guidanceScale: 1 });
    expect(none.unetBatchSizes).toEqual([1, 1, 1, 1]);
    expect(maxAbsDiff(none.images[0].decoded, plain.images[0].decoded)).toBeLessThanOrEqual(1e-5);
    const dir = mkdtempSync(join(tmpdir(), 'sd-guidance-end-'));
    try {
      cpSync(join(referenceDir!, 'tiny-sd'), dir, { recursive: true });
      writeFileSync(join(dir, 'pipeline_defaults.json'), JSON.stringify({ guidance_end: { txt2img: 0.5 } }));
      const shipped = await StableDiffusionPipeline.load(dir, { intraOpNumThreads: 1 });
      try {
        expect(shipped.defaultGuidanceEnd('txt2img')).toBe(0.5);
        expect(shipped.defaultGuidanceEnd('inpaint')).toBe(1); // a task the file leaves out is guided throughout
        const byDefault = await shipped.generate(base);
        expect(byDefault.unetBatchSizes).toEqual([2, 2, 1, 1]);
        expect(byDefault.images[0].rgb).toEqual((await pipe.generate({ ...base, guidanceEnd: 0.5 })).images[0].rgb);
        expect((await shipped.generate({ ...base, guidanceEnd: 1 })).unetBatchSizes).toEqual([2, 2, 2, 2]);
      } finally {
        await shipped.release();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('returns computed embeddings and skips the text encoder when they come back', async () => {
    const first = await pipe.generate({ ...base, returnEmbeddings: true });
    expect(first.textEncoderSkipped).toBe(false);
    expect(first.embeddings?.cond.shape).toEqual([1, 77, 32]);
    const runs = pipe.model.textEncoder.runCount;
    const again = await pipe.generate({ ...base, embeddings: first.embeddings });
    expect(pipe.model.textEncoder.runCount).toBe(runs);
    expect(again.textEncoderSkipped).toBe(true);
    expect(maxAbsDiff(again.images[0].rgb, first.images[0].rgb)).toBe(0);
  });

  it('cancels between steps', async () => {
    const ctrl = new AbortController();
    const err = await pipe
      .generate({ ...base, steps: 6 }, { signal: ctrl.signal, onProgress: (p) => p.step === 2 && ctrl.abort() })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanceledError);
  });

  it('resizes an img2img input to the requested size', async () => {
    const w = 40;
    const h = 24;
    const px = new Uint8Array(w * h * 3).map((_, i) => (i * 7) % 256);
    const png = await encodePng(px, w, h, 'png');
    const out = await pipe.generate({ ...base, width: 64, height: 96, image: { kind: 'encoded', bytes: png }, strength: 0.5 });
    expect(out.width).toBe(64);
    expect(out.height).toBe(96);
    expect(out.images[0].rgb.length).toBe(64 * 96 * 3);
    expect(out.unetBatchSizes).toHaveLength(2);
  });

  it('inpaints with a 4-channel U-Net keeping the unmasked region at the image latents', async () => {
    const golden = readReferenceJson<GoldenCase>('pipeline', 'img2img_ddim10_s0.6_redcube.json');
    const image = {
      kind: 'pixels' as const,
      data: Uint8Array.from(golden.init_image_uint8_hwc!.data),
      width: 64,
      height: 64,
      channels: 3 as const,
    };
    // White (repaint) on the left half, black (keep) on the right half.
    const mask = new Uint8Array(64 * 64).map((_, i) => (i % 64 < 32 ? 255 : 0));
    const out = await pipe.generate({
      ...base,
      steps: 6,
      image,
      mask: { kind: 'pixels', data: mask, width: 64, height: 64, channels: 1 },
    });
    const imageLatents = toFloat32(golden.init_latents_scaled!);
    let keptDiff = 0;
    let repaintDiff = 0;
    for (let k = 0; k < imageLatents.length; k++) {
      const d = Math.abs(out.latents.data[k] - imageLatents[k]);
      if (k % 8 >= 4) keptDiff = Math.max(keptDiff, d);
      else repaintDiff = Math.max(repaintDiff, d);
    }
    expect(keptDiff).toBeLessThanOrEqual(1e-4);
    expect(repaintDiff).toBeGreaterThan(0.05);
  });

  it('rejects bad requests with the value and the limit', async () => {
    // tiny-sd's U-Net has two up blocks: its latents halve once, so sides are multiples of 16, not just of 8.
    await expect(pipe.generate({ ...base, width: 100 })).rejects.toThrow(
      /width must be a multiple of 16 between 64 and 2048 for this model \(its U-Net needs it\), got 100/,
    );
    await expect(pipe.generate({ ...base, height: 72 })).rejects.toThrow(/height must be a multiple of 16 .*got 72/);
    await expect(pipe.generate({ ...base, scheduler: 'nope' })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(pipe.generate({ ...base, guidanceEnd: 1.5 })).rejects.toThrow(/guidanceEnd must be between 0 and 1, got 1.5/);
    await expect(pipe.generate({ ...base, initLatents: new Float32Array(3) })).rejects.toThrow(
      /initLatents must hold \[1, 4, 8, 8\]/,
    );
  });
});
