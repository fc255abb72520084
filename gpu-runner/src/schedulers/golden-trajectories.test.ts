// Every scheduler golden in ../shared/reference/schedulers (diffusers v0.31.0, bit-identical with v0.35.2), with the
// tolerances its README states: timesteps exact (float32-exact for the Euler family), sigmas and init_noise_sigma
// rel 1e-6, one step from stored inputs abs <= 1e-5*max(1,max|ref|), whole trajectories abs <= 1e-4*max(1,max|ref|).
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, readReferenceJson, referenceDir, referenceSkipReason } from '../../../test/support/reference.ts';
import {
  type Golden,
  relDiff,
  runTrajectory,
  GOLDEN_SHAPE as SHAPE,
  StoredNoise,
  tol,
} from '../../../test/support/scheduler-goldens.ts';
import { createScheduler, schedulerNameFromConfig } from './index.ts';
import type { Scheduler } from './scheduler.ts';

const f32 = Math.fround;

function build(g: Golden): Scheduler {
  const name = schedulerNameFromConfig({ ...g.config, _class_name: g.scheduler_class });
  return createScheduler(name, g.config);
}

describe.skipIf(!referenceDir)(`scheduler goldens (shared/reference/schedulers, diffusers 0.31)${referenceSkipReason}`, () => {
  const index = referenceDir ? readReferenceJson<{ file: string }[]>('schedulers', 'index.json') : [];
  for (const { file } of index) {
    describe(file, () => {
      const g = readReferenceJson<Golden>('schedulers', file);

      it('has the timesteps, sigmas, init_noise_sigma and order of diffusers', () => {
        const s = build(g);
        s.setTimesteps(g.num_inference_steps);
        expect(Array.from(s.timesteps, f32)).toEqual(Array.from(Float32Array.from(g.timesteps.data)));
        expect(s.order).toBe(g.order);
        expect(relDiff([s.initNoiseSigma], [g.init_noise_sigma])).toBeLessThanOrEqual(1e-6);
        if (g.sigmas) {
          expect(s.sigmas).not.toBeNull();
          expect(relDiff(s.sigmas ?? [], g.sigmas.data)).toBeLessThanOrEqual(1e-6);
        } else {
          expect(s.sigmas).toBeNull();
        }
      });

      it('reproduces each step from the stored inputs (abs 1e-5 x scale)', () => {
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
            expect(out.predOriginalSample).toBeDefined();
            expect(maxAbsDiff(out.predOriginalSample ?? [], st.pred_original_sample.data)).toBeLessThanOrEqual(
              tol(st.pred_original_sample.data, 1e-5),
            );
          }
          // The next step starts from diffusers' own prev_sample, so each step is checked alone.
          sample = Float32Array.from(st.prev_sample.data);
        }
      });

      it('reproduces the whole trajectory driving the fake model (abs 1e-4 x scale)', () => {
        const s = build(g);
        s.setTimesteps(g.num_inference_steps);
        runTrajectory(s, Float32Array.from(g.initial_latent.data), g.steps, g.final_latent);
      });

      for (const e of g.img2img) {
        it.skipIf(e.skipped)(`img2img strength ${e.strength}: cut timesteps, add_noise and the loop`, () => {
          const s = build(g);
          s.setTimesteps(g.num_inference_steps);
          const begin = e.t_start * s.order;
          const used = s.timesteps.slice(begin);
          expect(Array.from(used, f32)).toEqual(Array.from(Float32Array.from(e.timesteps.data)));
          s.setBeginIndex(begin);
          expect(f32(used[0])).toBe(f32(e.latent_timestep));
          const noisy = s.addNoise(Float32Array.from(e.image_latent.data), Float32Array.from(e.noise.data), used[0]);
          expect(maxAbsDiff(noisy, e.noisy_latent.data)).toBeLessThanOrEqual(tol(e.noisy_latent.data, 1e-5));
          runTrajectory(s, noisy, e.steps, e.final_latent);
        });
      }
    });
  }
});
