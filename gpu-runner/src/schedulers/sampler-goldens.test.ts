// The A1111-style samplers against goldens made from diffusers v0.31.0's own scheduler classes (goldens/, written by
// goldens/generate_goldens.py): DPM++ 2M SDE, DPM2 and DPM2 a, plain and Karras, 4 and 20 steps, txt2img and img2img.
// Tolerances (float32 round-off): integer timesteps exact; DPM2's midpoint timesteps within 1e-6*max(1,|t|) (about
// 2 float32 ulps: upstream builds its log-sigma table with numpy's SIMD float32 log, which is not correctly rounded
// and differs by CPU, so no port can match those bits everywhere); sigmas and init_noise_sigma rel 1e-6, one step from
// stored inputs abs <= 1e-5*max(1,max|ref|), whole trajectories abs <= 1e-4*max(1,max|ref|); the same trajectories
// again with noise drawn from our torch generator at the golden's seed, which must draw diffusers' noise (abs 1e-5).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, type RefTensor } from '../../../test/support/reference.ts';
import {
  type Golden,
  relDiff,
  runTrajectory,
  GOLDEN_SHAPE as SHAPE,
  StoredNoise,
  tol,
} from '../../../test/support/scheduler-goldens.ts';
import { GeneratorNoise, TorchGenerator } from '../random/torch-generator.ts';
import { createScheduler, schedulerNameFromConfig } from './index.ts';
import type { NoiseSource, Scheduler } from './scheduler.ts';

const GOLDENS = join(import.meta.dirname, 'goldens');
const read = <T>(file: string): T => JSON.parse(readFileSync(join(GOLDENS, file), 'utf8')) as T;
const index = read<{ file: string; name: string; num_model_calls: number; uses_noise: boolean }[]>('index.json');

/** The canonical scheduler each golden's class + config must resolve to. */
const CANONICAL: Record<string, string> = {
  dpmpp_2m_sde: 'dpmpp_2m_sde',
  dpmpp_2m_sde_karras: 'dpmpp_2m_sde_karras',
  kdpm2: 'dpm2',
  kdpm2_karras: 'dpm2_karras',
  kdpm2_a: 'dpm2_a',
  kdpm2_a_karras: 'dpm2_a_karras',
};

/** Integer timesteps exactly; fractional ones (DPM2 midpoints) to within 1e-6 * max(1, |t|). */
function expectTimesteps(got: ArrayLike<number>, want: number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isInteger(want[i])) expect(got[i], `timestep ${i}`).toBe(want[i]);
    else expect(Math.abs(got[i] - want[i]), `timestep ${i}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i])));
  }
}

function build(g: Golden): Scheduler {
  const name = schedulerNameFromConfig({ ...g.config, _class_name: g.scheduler_class });
  expect(name).toBe(CANONICAL[g.name]);
  // By canonical name from a plain SD config (what a request naming the sampler gets), not the golden's own config.
  const sd = { ...g.config, algorithm_type: undefined, use_karras_sigmas: undefined };
  return createScheduler(name, sd);
}

/** A torch generator at the golden's seed, recording what it draws to compare with diffusers' noise. */
class RecordingNoise implements NoiseSource {
  readonly drawn: Float32Array[] = [];
  private readonly inner: GeneratorNoise;
  constructor(seed: number) {
    this.inner = new GeneratorNoise([new TorchGenerator(seed)]);
  }
  randn(shape: readonly number[]): Float32Array {
    const n = this.inner.randn(shape);
    this.drawn.push(n);
    return n;
  }
}

function expectSameNoise(drawn: Float32Array[], steps: { noise: RefTensor | null }[]): void {
  const stored = steps.flatMap((s) => (s.noise ? [s.noise] : []));
  expect(drawn.length).toBe(stored.length);
  // torch's float32 Box-Muller uses its own vectorized log/sin/cos: a few ulps (see torch-generator.ts).
  for (let i = 0; i < drawn.length; i++) expect(maxAbsDiff(drawn[i], stored[i].data)).toBeLessThanOrEqual(1e-5);
}

describe('sampler goldens (src/schedulers/goldens, diffusers 0.31.0)', () => {
  it('cover every sampler at 4 and 20 steps', () => {
    expect(new Set(index.map((e) => e.name))).toEqual(new Set(Object.keys(CANONICAL)));
    for (const name of Object.keys(CANONICAL))
      expect(index.filter((e) => e.name === name).map((e) => e.file)).toEqual([`${name}_4.json`, `${name}_20.json`]);
  });

  for (const entry of index) {
    describe(entry.file, () => {
      const g = read<Golden>(entry.file);

      it('has the timesteps, sigmas, init_noise_sigma and order of diffusers', () => {
        const s = build(g);
        s.setTimesteps(g.num_inference_steps);
        expect(s.timesteps.length).toBe(entry.num_model_calls);
        expectTimesteps(s.timesteps, g.timesteps.data);
        expect(s.order).toBe(g.order);
        expect(relDiff([s.initNoiseSigma], [g.init_noise_sigma])).toBeLessThanOrEqual(1e-6);
        expect(relDiff(s.sigmas ?? [], g.sigmas?.data ?? [])).toBeLessThanOrEqual(1e-6);
      });

      it('reproduces each step from the stored inputs and noise (abs 1e-5 x scale)', () => {
        const s = build(g);
        s.setTimesteps(g.num_inference_steps);
        const noise = new StoredNoise();
        let sample = Float32Array.from(g.initial_latent.data);
        for (const st of g.steps) {
          const input = s.scaleModelInput(sample, st.t);
          expect(maxAbsDiff(input, st.model_input.data)).toBeLessThanOrEqual(tol(st.model_input.data, 1e-5));
          noise.push(st.noise);
          const out = s.step(Float32Array.from(st.model_output.data), st.t, sample, { shape: SHAPE, noise });
          expect(maxAbsDiff(out.prevSample, st.prev_sample.data)).toBeLessThanOrEqual(tol(st.prev_sample.data, 1e-5));
          if (st.pred_original_sample) {
            expect(maxAbsDiff(out.predOriginalSample ?? [], st.pred_original_sample.data)).toBeLessThanOrEqual(
              tol(st.pred_original_sample.data, 1e-5),
            );
          }
          sample = Float32Array.from(st.prev_sample.data);
        }
      });

      it('reproduces the whole trajectory driving the fake model (abs 1e-4 x scale)', () => {
        const s = build(g);
        s.setTimesteps(g.num_inference_steps);
        runTrajectory(s, Float32Array.from(g.initial_latent.data), g.steps, g.final_latent);
      });

      const noiseTitle = entry.uses_noise
        ? `draws diffusers' noise from torch.Generator().manual_seed(${g.noise_seed})`
        : 'draws no noise from a generator it is given';
      it(noiseTitle, () => {
        const s = build(g);
        s.setTimesteps(g.num_inference_steps);
        const noise = new RecordingNoise(g.noise_seed);
        runTrajectory(s, Float32Array.from(g.initial_latent.data), g.steps, g.final_latent, noise);
        expectSameNoise(noise.drawn, g.steps);
      });

      for (const e of g.img2img) {
        if (e.skipped) continue;
        it(`img2img strength ${e.strength}: cut timesteps, add_noise and the seeded loop`, () => {
          const s = build(g);
          s.setTimesteps(g.num_inference_steps);
          const begin = e.t_start * s.order;
          expect(begin).toBe(e.begin_index);
          const used = s.timesteps.slice(begin);
          expectTimesteps(used, e.timesteps.data);
          s.setBeginIndex(begin);
          const noisy = s.addNoise(Float32Array.from(e.image_latent.data), Float32Array.from(e.noise.data), used[0]);
          expect(maxAbsDiff(noisy, e.noisy_latent.data)).toBeLessThanOrEqual(tol(e.noisy_latent.data, 1e-5));
          const noise = new RecordingNoise(g.noise_seed);
          runTrajectory(s, noisy, e.steps, e.final_latent, noise);
          expectSameNoise(noise.drawn, e.steps);
        });
      }
    });
  }
});
