// Progress is counted in the denoising steps the caller asked for, whatever the scheduler visits: PNDM's warm-up
// repeats a timestep, Heun and DPM2 evaluate the model twice per step. img2img counts the steps its strength leaves.
import { SCHEDULER_NAMES } from '@sd/shared/scheduler-names';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDefaultModel } from '../default-model/write-model.ts';
import { stepCounter } from './denoise.ts';
import { StableDiffusionPipeline } from './pipeline.ts';
import type { GenerateRequest, StepProgress } from './types.ts';

describe('stepCounter', () => {
  const finished = (iterations: number, steps: number, order: number) => {
    const count = stepCounter(iterations, steps, order);
    return Array.from({ length: iterations }, (_, i) => count(i));
  };

  it('finishes one step per iteration for first-order schedulers', () => {
    expect(finished(4, 4, 1)).toEqual([1, 2, 3, 4]);
  });

  it("skips PNDM's warm-up iteration and Heun's first evaluation of each later step", () => {
    expect(finished(5, 4, 1)).toEqual([null, 1, 2, 3, 4]);
    expect(finished(7, 4, 2)).toEqual([null, 1, null, 2, null, 3, 4]);
  });
});

describe('progress of a generation', () => {
  let pipe: StableDiffusionPipeline;
  beforeAll(async () => {
    pipe = await StableDiffusionPipeline.load(await ensureDefaultModel(), { intraOpNumThreads: 1 });
  });
  afterAll(() => pipe?.release());

  const base: GenerateRequest = {
    prompt: 'a red circle on a blue background',
    width: 64,
    height: 64,
    steps: 5,
    guidanceScale: 7.5,
    seed: 3,
  };

  async function progress(request: GenerateRequest): Promise<StepProgress[]> {
    const seen: StepProgress[] = [];
    await pipe.generate(request, { onProgress: (p) => seen.push(p) });
    return seen;
  }

  it.each(SCHEDULER_NAMES)('%s reports steps 1..N of the N requested, each once', async (scheduler) => {
    const seen = await progress({ ...base, scheduler });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(seen.map((p) => p.total))).toEqual(new Set([5]));
  });

  it.each(SCHEDULER_NAMES)('%s img2img at strength 0.6 of 5 steps reports the 3 steps that run', async (scheduler) => {
    const image = {
      kind: 'pixels' as const,
      data: new Uint8Array(64 * 64 * 3).fill(128),
      width: 64,
      height: 64,
      channels: 3 as const,
    };
    const seen = await progress({ ...base, scheduler, image, strength: 0.6 });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((p) => p.total))).toEqual(new Set([3]));
  });
});
