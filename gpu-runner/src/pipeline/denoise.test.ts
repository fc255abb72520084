import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  maxAbs,
  maxAbsDiff,
  readReferenceJson,
  referenceDir,
  referenceSkipReason,
  toFloat32,
} from '../../../test/support/reference.ts';
import { loadSdModel, type SdModel } from '../model/sd-model.ts';
import type { Scheduler, StepContext } from '../schedulers/scheduler.ts';
import { denoise, guidedStepCount } from './denoise.ts';
import type { GoldenCase } from './golden-cases.ts';
import { CanceledError } from './types.ts';

/**
 * A test double, not a scheduler: it replays the golden's latents so the loop's own part (batched U-Net call,
 * guidance mix, buffers) is checked step by step against the stored noise_pred, independent of any scheduler.
 */
function replayScheduler(golden: GoldenCase, preds: Float32Array[], seen: Set<Float32Array>): Scheduler {
  let i = 0;
  return {
    name: 'replay',
    order: 1,
    initNoiseSigma: 1,
    timesteps: Float64Array.from(golden.timesteps.data),
    sigmas: null,
    setTimesteps() {},
    setBeginIndex() {},
    scaleModelInput: (s) => s,
    step(modelOutput: Float32Array, _t: number, _s: Float32Array, _ctx: StepContext) {
      seen.add(modelOutput);
      preds.push(modelOutput.slice());
      return { prevSample: toFloat32(golden.steps[i++].latents) };
    },
    addNoise: (x) => x,
  };
}

const zeroNoise = { randn: (shape: readonly number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1)) };

// Golden: ../shared/reference/pipeline/txt2img_*.json (diffusers OnnxStableDiffusionPipeline); tolerance abs 1e-4·max(1,|ref|).
describe.skipIf(!referenceDir)(`denoising loop vs pipeline goldens${referenceSkipReason}`, () => {
  let model: SdModel;
  const cases: Record<string, GoldenCase> = {};
  beforeAll(async () => {
    model = await loadSdModel(join(referenceDir!, 'tiny-sd'), { intraOpNumThreads: 1 });
    for (const name of ['txt2img_ddim10_astronaut', 'txt2img_lcm4_astronaut'])
      cases[name] = readReferenceJson<GoldenCase>('pipeline', `${name}.json`);
  });
  afterAll(() => model?.release());

  function run(
    golden: GoldenCase,
    extra: Partial<Parameters<typeof denoise>[0]> = {},
    preds: Float32Array[] = [],
    seen = new Set<Float32Array>(),
  ) {
    const ehs = golden.encoder_hidden_states;
    const per = 77 * 32;
    const guided = golden.guidance_scale > 1;
    const ehsData = toFloat32(ehs);
    return denoise({
      model,
      scheduler: replayScheduler(golden, preds, seen),
      timesteps: golden.timesteps.data,
      latents: toFloat32(golden.initial_latents!),
      shape: [1, 4, 8, 8],
      cond: { data: ehsData.slice(guided ? per : 0, guided ? 2 * per : per), shape: [1, 77, 32] },
      uncond: guided ? { data: ehsData.slice(0, per), shape: [1, 77, 32] } : undefined,
      guidanceScale: golden.guidance_scale,
      noise: zeroNoise,
      ...extra,
    });
  }

  it('makes one batched [uncond; cond] U-Net call per step and mixes guidance like the reference', async () => {
    const golden = cases.txt2img_ddim10_astronaut;
    const preds: Float32Array[] = [];
    const progress: number[] = [];
    const seen = new Set<Float32Array>();
    const out = await run(golden, { onProgress: (p) => progress.push(p.step) }, preds, seen);
    // Multistep schedulers keep past outputs, so each step must get its own array.
    expect(seen.size).toBe(10);
    expect(out.unetBatchSizes).toEqual(Array(10).fill(2));
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const [i, step] of golden.steps.entries()) {
      const ref = toFloat32(step.noise_pred);
      expect(maxAbsDiff(preds[i], ref), `step ${i}`).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(ref)));
    }
    expect(out.stepWallMs).toHaveLength(10);
    expect(out.stepRunMs.every((r, i) => r > 0 && r <= out.stepWallMs[i])).toBe(true);
  });

  it('skips the uncond pass when guidance is 1', async () => {
    const golden = cases.txt2img_lcm4_astronaut;
    const preds: Float32Array[] = [];
    const seen = new Set<Float32Array>();
    const out = await run(golden, {}, preds, seen);
    expect(out.unetBatchSizes).toEqual([1, 1, 1, 1]);
    expect(seen.size).toBe(4);
    for (const [i, step] of golden.steps.entries()) {
      expect(maxAbsDiff(preds[i], toFloat32(step.unet_output))).toBeLessThanOrEqual(1e-4);
    }
  });

  it('guides the first guidanceEnd of the steps and runs the cond half alone after', async () => {
    const golden = cases.txt2img_ddim10_astronaut;
    const preds: Float32Array[] = [];
    const out = await run(golden, { guidanceEnd: 0.5 }, preds);
    expect(out.unetBatchSizes).toEqual([2, 2, 2, 2, 2, 1, 1, 1, 1, 1]);
    for (const [i, step] of golden.steps.entries()) {
      // The replayed latents are the golden's, so every step's U-Net input is the reference's: guided steps give its
      // noise_pred, later ones the cond half of its U-Net output ([uncond; cond]).
      const output = toFloat32(step.unet_output);
      const ref = i < 5 ? toFloat32(step.noise_pred) : output.subarray(output.length / 2);
      expect(maxAbsDiff(preds[i], ref), `step ${i}`).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(ref)));
    }
    expect((await run(golden, { guidanceEnd: 0 })).unetBatchSizes).toEqual(Array(10).fill(1));
    expect((await run(golden, { guidanceEnd: 1 })).unetBatchSizes).toEqual(Array(10).fill(2));
  });

  it('stops between steps with CanceledError when the signal fires', async () => {
    const golden = cases.txt2img_ddim10_astronaut;
    const ctrl = new AbortController();
    let calls = 0;
    const err = await run(golden, {
      signal: ctrl.signal,
      onProgress: (p) => {
        calls++;
        if (p.step === 3) ctrl.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanceledError);
    expect((err as CanceledError).step).toBe(4);
    expect(calls).toBe(3);
  });
});

describe('guidedStepCount', () => {
  it("counts the steps with (i + 1) / steps <= guidanceEnd, diffusers' control_guidance_end rule", () => {
    expect(guidedStepCount(20, 0.5)).toBe(10);
    expect(guidedStepCount(100, 0.57)).toBe(57); // 0.57 * 100 is 56.99999999999999 in floating point
    expect(guidedStepCount(7, 1)).toBe(7);
    expect(guidedStepCount(7, 0.99)).toBe(6);
    expect(guidedStepCount(25, 0)).toBe(0);
  });

  it('refuses a fraction outside 0..1', () => {
    expect(() => guidedStepCount(10, 1.5)).toThrow(/guidanceEnd must be between 0 and 1, got 1.5/);
    expect(() => guidedStepCount(10, Number.NaN)).toThrow(/guidanceEnd must be between 0 and 1/);
  });
});
