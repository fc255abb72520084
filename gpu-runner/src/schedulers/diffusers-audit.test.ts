// Regression tests from the line-by-line audit against diffusers v0.31: each pins one behaviour of the upstream
// source that an earlier version of this port got wrong (or could silently get wrong).
import { describe, expect, it } from 'vitest';
import { type RefTensor, readReferenceJson, referenceDir, referenceSkipReason } from '../../../test/support/reference.ts';
import { createScheduler } from './index.ts';
import { alphasCumprod, interpAtIndex, makeBetas, trainingSigmas } from './schedule.ts';
import type { NoiseSource } from './scheduler.ts';
import { readBetaConfig } from './scheduler-config.ts';

const SD = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  steps_offset: 1,
  clip_sample: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
};
const SHAPE = [1, 4, 8, 8];
const f32 = Math.fround;

function ramp(seed: number): Float32Array {
  return Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37 + seed) * 2);
}

const zeros: NoiseSource = { randn: (shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)) };

describe('LMS timesteps (diffusers builds linspace with dtype=np.float32)', () => {
  it('interpolates its sigmas at the float32 timesteps, so they equal the Euler schedule bit for bit', () => {
    const trainSigmas = trainingSigmas(
      alphasCumprod(
        makeBetas(readBetaConfig(SD, { betaStart: 0, betaEnd: 0, betaSchedule: 'linear' }, { hasRescaleZeroSnr: false }), [
          'scaled_linear',
        ]),
      ),
    );
    for (const n of [7, 20, 50]) {
      const lms = createScheduler('lms', SD);
      const euler = createScheduler('euler', SD);
      lms.setTimesteps(n);
      euler.setTimesteps(n);
      expect(Array.from(lms.timesteps)).toEqual(Array.from(euler.timesteps));
      expect(Array.from(lms.sigmas ?? [])).toEqual(Array.from(euler.sigmas ?? []));
      // sigma_i = float32(np.interp(float32(t_i), arange(1000), sigmas)), t_i = 999 * (n-1-i) / (n-1)
      for (let i = 0; i < n; i++) {
        const t = f32((999 * (n - 1 - i)) / (n - 1));
        expect(lms.sigmas?.[i]).toBe(f32(interpAtIndex(t, trainSigmas)));
      }
    }
  });
});

describe('DDPM previous timestep (v0.31: the next entry of timesteps, PR #9384)', () => {
  const ac = alphasCumprod(
    makeBetas(readBetaConfig(SD, { betaStart: 0, betaEnd: 0, betaSchedule: 'linear' }, { hasRescaleZeroSnr: true }), [
      'scaled_linear',
    ]),
  );

  /** The posterior mean of DDPM eq. (7) with x0 from epsilon, for a given previous alpha product. */
  function posteriorMean(x: Float32Array, eps: Float32Array, t: number, alphaPrev: number): number[] {
    const a = ac[t];
    const curAlpha = a / alphaPrev;
    return Array.from(x, (xi, i) => {
      const x0 = (xi - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a);
      return ((Math.sqrt(alphaPrev) * (1 - curAlpha)) / (1 - a)) * x0 + ((Math.sqrt(curAlpha) * (1 - alphaPrev)) / (1 - a)) * xi;
    });
  }

  it('linspace: 999 steps back to 666 (not 999 - 1000 // 4 = 749)', () => {
    const s = createScheduler('ddpm', { ...SD, timestep_spacing: 'linspace' });
    s.setTimesteps(4);
    expect(Array.from(s.timesteps)).toEqual([999, 666, 333, 0]);
    const x = ramp(1);
    const eps = ramp(2);
    const got = s.step(eps, 999, x, { shape: SHAPE, noise: zeros }).prevSample;
    const want = posteriorMean(x, eps, 999, ac[666]);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
  });

  it('trailing with 3 steps: 666 steps back to 332 (not 333)', () => {
    const s = createScheduler('ddpm', { ...SD, timestep_spacing: 'trailing' });
    s.setTimesteps(3);
    expect(Array.from(s.timesteps)).toEqual([999, 666, 332]);
    const x = ramp(3);
    const eps = ramp(4);
    const got = s.step(eps, 666, x, { shape: SHAPE, noise: zeros }).prevSample;
    const want = posteriorMean(x, eps, 666, ac[332]);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
  });

  it('leading (the SD default) is unchanged: t - 1000 // N, and alpha 1 after the last step', () => {
    const s = createScheduler('ddpm', SD);
    s.setTimesteps(4);
    expect(Array.from(s.timesteps)).toEqual([751, 501, 251, 1]);
    const x = ramp(5);
    const eps = ramp(6);
    const mid = s.step(eps, 501, x, { shape: SHAPE, noise: zeros }).prevSample;
    const want = posteriorMean(x, eps, 501, ac[251]);
    for (let i = 0; i < mid.length; i++) expect(mid[i]).toBeCloseTo(want[i], 4);
    const last = s.step(eps, 1, x, { shape: SHAPE, noise: zeros }).prevSample;
    const wantLast = posteriorMean(x, eps, 1, 1);
    for (let i = 0; i < last.length; i++) expect(last[i]).toBeCloseTo(wantLast[i], 4);
  });

  it('a timestep outside the schedule is an error naming it', () => {
    const s = createScheduler('ddpm', SD);
    s.setTimesteps(4);
    expect(() => s.step(ramp(1), 500, ramp(2), { shape: SHAPE, noise: zeros })).toThrow(/timestep 500 is not in/);
  });
});

describe('Heun keeps its own copy of the first-order sample', () => {
  it('reusing the caller buffer between the two evaluations does not change the result', () => {
    const run = (reuse: boolean) => {
      const s = createScheduler('heun', SD);
      s.setTimesteps(3);
      let sample: Float32Array = ramp(7).map((v) => v * 10);
      for (const t of s.timesteps) {
        const input = s.scaleModelInput(sample, t);
        const out = input.map((v) => 0.1 * v + 0.01);
        const next = s.step(out, t, sample, { shape: SHAPE }).prevSample;
        if (reuse) {
          sample.set(next);
        } else {
          sample = next;
        }
      }
      return sample;
    };
    expect(Array.from(run(true))).toEqual(Array.from(run(false)));
  });
});

describe.skipIf(!referenceDir)(`torch.linspace in float32 (SD betas)${referenceSkipReason}`, () => {
  it("gives the reference's 1000 scaled_linear betas and alphas_cumprod bit for bit (torch's fused AVX2 kernel)", () => {
    const ref = readReferenceJson<{ betas: RefTensor; alphas_cumprod: RefTensor }>('schedulers', 'scaled_linear_schedule.json');
    const betas = makeBetas(
      readBetaConfig(SD, { betaStart: 0, betaEnd: 0, betaSchedule: 'linear' }, { hasRescaleZeroSnr: false }),
      ['scaled_linear'],
    );
    expect(Array.from(betas)).toEqual(Array.from(Float32Array.from(ref.betas.data)));
    expect(Array.from(alphasCumprod(betas))).toEqual(Array.from(Float32Array.from(ref.alphas_cumprod.data)));
  });
});
