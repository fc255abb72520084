// Behaviour of every scheduler without relying on goldens: factory and from_config semantics, timestep/sigma shape
// for each spacing, an ideal-denoiser trajectory that must land on the x0 it implies, noise draw order and counts.
import { SCHEDULER_NAMES } from '@sd/shared/scheduler-names';
import { describe, expect, it } from 'vitest';
import { GeneratorNoise, TorchGenerator } from '../random/torch-generator.ts';
import { createScheduler, schedulerNameFromConfig } from './index.ts';
import { integratePolynomial } from './lms.ts';
import { alphasCumprod, interpAtIndex, makeBetas, trainingSigmas } from './schedule.ts';
import type { NoiseSource, Scheduler, SchedulerConfig } from './scheduler.ts';
import { solveLinear } from './unipc.ts';

/** Stable Diffusion 1.x's scheduler_config.json (PNDM with skip_prk_steps, no timestep_spacing key). */
const SD: SchedulerConfig = {
  _class_name: 'PNDMScheduler',
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  skip_prk_steps: true,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  steps_offset: 1,
  clip_sample: false,
};
const SHAPE = [1, 4, 8, 8];
const TRAIN_SIGMAS = trainingSigmas(
  alphasCumprod(
    makeBetas(
      {
        numTrainTimesteps: 1000,
        betaStart: 0.00085,
        betaEnd: 0.012,
        betaSchedule: 'scaled_linear',
        trainedBetas: null,
        rescaleBetasZeroSnr: false,
      },
      ['scaled_linear'],
    ),
  ),
);

class CountingNoise implements NoiseSource {
  draws = 0;
  constructor(private readonly inner: NoiseSource) {}
  randn(shape: readonly number[]): Float32Array {
    this.draws++;
    return this.inner.randn(shape);
  }
}

/** A perfect denoiser for a fixed x0: the epsilon (or v) that the VP-scaled input implies at timestep t. */
function idealModel(x0: Float32Array, prediction: 'epsilon' | 'v_prediction') {
  return (input: Float32Array, t: number): Float32Array => {
    const sigma = interpAtIndex(t, TRAIN_SIGMAS);
    const alpha = 1 / Math.sqrt(sigma * sigma + 1);
    const sigmaT = sigma * alpha;
    const out = new Float32Array(input.length);
    for (let i = 0; i < out.length; i++) {
      const eps = (input[i] - alpha * x0[i]) / sigmaT;
      out[i] = prediction === 'epsilon' ? eps : alpha * eps - sigmaT * x0[i];
    }
    return out;
  };
}

function run(
  s: Scheduler,
  steps: number,
  model: (x: Float32Array, t: number) => Float32Array,
  noise: NoiseSource,
  start: Float32Array,
): Float32Array {
  s.setTimesteps(steps);
  let x: Float32Array = start.map((v) => v * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(model(s.scaleModelInput(x, t), t), t, x, { shape: SHAPE, noise }).prevSample;
  return x;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('createScheduler', () => {
  it('builds every canonical name and reports it', () => {
    for (const name of SCHEDULER_NAMES) expect(createScheduler(name, SD).name).toBe(name);
  });

  it('accepts aliases from diffusers, Replicate and AUTOMATIC1111', () => {
    expect(createScheduler('K_EULER_ANCESTRAL', SD).name).toBe('euler_a');
    expect(createScheduler('DPM++ 2M Karras', SD).name).toBe('dpmpp_2m_karras');
    expect(createScheduler('EulerDiscreteScheduler', SD).name).toBe('euler');
  });

  it('accepts the AUTOMATIC1111, diffusers and Stability names of DPM++ 2M SDE and DPM2', () => {
    const cases: [string, string][] = [
      ['DPM++ 2M SDE', 'dpmpp_2m_sde'],
      ['DPM++ 2M SDE Karras', 'dpmpp_2m_sde_karras'],
      ['DPM2', 'dpm2'],
      ['DPM2 Karras', 'dpm2_karras'],
      ['DPM2 a', 'dpm2_a'],
      ['DPM2 a Karras', 'dpm2_a_karras'],
      ['KDPM2DiscreteScheduler', 'dpm2'],
      ['KDPM2AncestralDiscreteScheduler', 'dpm2_a'],
      ['K_DPM_2', 'dpm2'],
      ['K_DPM_2_ANCESTRAL', 'dpm2_a'],
    ];
    for (const [alias, name] of cases) expect(createScheduler(alias, SD).name, alias).toBe(name);
  });

  it('maps a DPMSolverMultistep or KDPM2 config to its SDE / Karras variant', () => {
    const dpm = { _class_name: 'DPMSolverMultistepScheduler' };
    expect(schedulerNameFromConfig({ ...dpm, algorithm_type: 'sde-dpmsolver++' })).toBe('dpmpp_2m_sde');
    expect(schedulerNameFromConfig({ ...dpm, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true })).toBe(
      'dpmpp_2m_sde_karras',
    );
    expect(schedulerNameFromConfig({ _class_name: 'KDPM2DiscreteScheduler', use_karras_sigmas: true })).toBe('dpm2_karras');
    expect(schedulerNameFromConfig({ _class_name: 'KDPM2AncestralDiscreteScheduler' })).toBe('dpm2_a');
  });

  it('asking for DPM++ 2M on a model whose own config is the SDE variant gives the deterministic sampler', () => {
    const sdeConfig = { ...SD, algorithm_type: 'sde-dpmsolver++' };
    const n = new CountingNoise(new GeneratorNoise([new TorchGenerator(1)]));
    const start = new TorchGenerator(4).randn(SHAPE);
    run(createScheduler('dpmpp_2m', sdeConfig), 5, (x) => x.map((v) => 0.1 * v), n, start);
    expect(n.draws).toBe(0);
  });

  it('rejects an unknown name, naming it and listing the valid ones', () => {
    expect(() => createScheduler('dpm_fast', SD)).toThrow(/unknown scheduler "dpm_fast"; valid names: ddim, pndm, .*lcm/);
  });

  it("maps a config's _class_name to the model's own scheduler", () => {
    expect(schedulerNameFromConfig(SD)).toBe('pndm');
    expect(schedulerNameFromConfig({ _class_name: 'DPMSolverMultistepScheduler', use_karras_sigmas: true })).toBe(
      'dpmpp_2m_karras',
    );
    expect(() => schedulerNameFromConfig({ _class_name: 'FlowMatchEulerDiscreteScheduler' })).toThrow(
      /FlowMatchEulerDiscreteScheduler/,
    );
  });

  it('ignores keys a class lacks and takes class defaults for missing ones (from_config)', () => {
    const plain = createScheduler('euler', SD);
    const extra = createScheduler('euler', { ...SD, skip_prk_steps: false, solver_order: 3, made_up_key: 'x' });
    plain.setTimesteps(10);
    extra.setTimesteps(10);
    expect(Array.from(extra.timesteps)).toEqual(Array.from(plain.timesteps));
    // class default timestep_spacing: linspace for Euler (starts at 999), leading for DDIM (starts at 901)
    expect(plain.timesteps[0]).toBe(999);
    const ddim = createScheduler('ddim', SD);
    ddim.setTimesteps(10);
    expect(ddim.timesteps[0]).toBe(901);
  });

  it('rejects a config value of the wrong kind, naming the key', () => {
    expect(() => createScheduler('ddim', { ...SD, steps_offset: 'one' })).toThrow(/steps_offset must be a number, got "one"/);
    expect(() => createScheduler('euler', { ...SD, timestep_spacing: 'even' })).toThrow(
      /timestep_spacing must be one of leading, trailing, linspace, got "even"/,
    );
    expect(() => createScheduler('lms', { ...SD, beta_schedule: 'cubic' })).toThrow(/beta_schedule/);
  });

  it('honours trained_betas over beta_start/beta_end', () => {
    const betas = Array.from({ length: 1000 }, (_, i) => 0.0001 + (0.02 - 0.0001) * (i / 999));
    const fromTrained = createScheduler('euler', { ...SD, beta_schedule: 'linear', beta_start: 0.5, trained_betas: betas });
    const fromLinear = createScheduler('euler', { ...SD, beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02 });
    fromTrained.setTimesteps(5);
    fromLinear.setTimesteps(5);
    expect(maxAbsDiff(fromTrained.sigmas ?? [], fromLinear.sigmas ?? [])).toBeLessThan(1e-4);
  });
});

describe.each(SCHEDULER_NAMES)('%s timesteps and sigmas', (name) => {
  for (const spacing of ['leading', 'trailing', 'linspace'] as const) {
    it.each([1, 4, 20, 50])(`${spacing}, %i steps: right count, non-increasing, in range`, (steps) => {
      const s = createScheduler(name, { ...SD, timestep_spacing: spacing });
      if (name === 'lcm' && steps > 50) return;
      s.setTimesteps(steps);
      const twoEvaluations = name === 'heun' || name.startsWith('dpm2');
      const expected = twoEvaluations ? 2 * steps - 1 : name === 'pndm' && steps > 1 ? steps + 1 : steps;
      expect(s.timesteps.length).toBe(expected);
      // DPM2 as upstream: Karras t_i are rounded but its midpoint timesteps are not, and DPM2 a's midpoint sigma is
      // the next sigma itself (k-diffusion's sqrt(sigma * sigma_down) with eta 1), so neighbours may invert by < 1.
      const slack = twoEvaluations && name !== 'heun' ? 1 : 0;
      for (let i = 1; i < s.timesteps.length; i++) expect(s.timesteps[i]).toBeLessThanOrEqual(s.timesteps[i - 1] + slack);
      expect(s.timesteps[0]).toBeLessThanOrEqual(999);
      expect(s.timesteps[s.timesteps.length - 1]).toBeGreaterThanOrEqual(0);
      if (s.sigmas) {
        // DPM2 keeps diffusers' interleaved sigmas: two trailing zeros more than its timesteps need.
        expect(s.sigmas.length).toBe(s.timesteps.length + (name.startsWith('dpm2') ? 3 : 1));
        for (let i = 1; i < s.sigmas.length; i++) expect(s.sigmas[i]).toBeLessThanOrEqual(s.sigmas[i - 1]);
        expect(s.sigmas[s.sigmas.length - 1]).toBe(0);
      }
    });
  }
});

describe.each(SCHEDULER_NAMES)('%s with an ideal denoiser', (name) => {
  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    it(`${prediction}: stays finite and lands on the x0 the model implies`, () => {
      const x0 = new TorchGenerator(1).randn(SHAPE);
      const start = new TorchGenerator(2).randn(SHAPE);
      const s = createScheduler(name, { ...SD, prediction_type: prediction });
      const out = run(s, name === 'lcm' ? 4 : 12, idealModel(x0, prediction), new GeneratorNoise([new TorchGenerator(3)]), start);
      expect(out.every(Number.isFinite)).toBe(true);
      // DDIM and PNDM stop at t = 0 (alpha_cumprod 0.99915 with set_alpha_to_one false), not at pure x0, so about
      // 0.03 * |noise| remains; every other scheduler ends exactly on x0 (measured <= 1.2e-7).
      expect(maxAbsDiff(out, x0)).toBeLessThan(name === 'ddim' || name === 'pndm' ? 0.12 : 1e-5);
    });
  }
});

describe('stochastic schedulers', () => {
  const model = (x: Float32Array, t: number) => x.map((v) => 0.1 * v + 0.01 * Math.sin(t / 100));
  const start = new TorchGenerator(5).randn(SHAPE);

  it('euler_a draws one [1,4,8,8] noise per step, is reproducible from a seed and differs from euler', () => {
    const a = new CountingNoise(new GeneratorNoise([new TorchGenerator(42)]));
    const b = new CountingNoise(new GeneratorNoise([new TorchGenerator(42)]));
    const x1 = run(createScheduler('euler_a', SD), 8, model, a, start);
    const x2 = run(createScheduler('euler_a', SD), 8, model, b, start);
    expect(a.draws).toBe(8);
    expect(Array.from(x1)).toEqual(Array.from(x2));
    const other = run(createScheduler('euler_a', SD), 8, model, new GeneratorNoise([new TorchGenerator(43)]), start);
    expect(maxAbsDiff(x1, other)).toBeGreaterThan(1e-3);
    const euler = run(createScheduler('euler', SD), 8, model, a, start);
    expect(maxAbsDiff(x1, euler)).toBeGreaterThan(1e-3);
  });

  it('ddpm draws noise on every step with t > 0; lcm on every step but the last', () => {
    const d = new CountingNoise(new GeneratorNoise([new TorchGenerator(1)]));
    run(createScheduler('ddpm', SD), 10, model, d, start);
    expect(d.draws).toBe(10); // leading spacing + steps_offset 1: the last timestep is 1
    const l = new CountingNoise(new GeneratorNoise([new TorchGenerator(1)]));
    run(createScheduler('lcm', SD), 4, model, l, start);
    expect(l.draws).toBe(3);
  });

  it('dpmpp_2m_sde draws once per step, dpm2_a once per sigma interval (on its second evaluation)', () => {
    const sde = new CountingNoise(new GeneratorNoise([new TorchGenerator(7)]));
    const xs = run(createScheduler('dpmpp_2m_sde', SD), 6, model, sde, start);
    expect(sde.draws).toBe(6);
    const x2m = run(createScheduler('dpmpp_2m', SD), 6, model, sde, start);
    expect(maxAbsDiff(xs, x2m)).toBeGreaterThan(1e-3);
    const a = new CountingNoise(new GeneratorNoise([new TorchGenerator(7)]));
    run(createScheduler('dpm2_a', SD), 6, model, a, start);
    // 2*6-1 model calls: 5 intervals with two evaluations each, and a final Euler step to 0 without noise
    expect(a.draws).toBe(5);
  });

  it('deterministic schedulers draw nothing', () => {
    for (const name of ['ddim', 'pndm', 'euler', 'heun', 'lms', 'dpmpp_2m', 'dpmpp_2m_karras', 'dpm2', 'dpm2_karras', 'unipc']) {
      const n = new CountingNoise(new GeneratorNoise([new TorchGenerator(1)]));
      run(createScheduler(name, SD), 6, model, n, start);
      expect(n.draws, name).toBe(0);
    }
  });

  it('a stochastic step without a noise source fails, naming the scheduler', () => {
    const s = createScheduler('euler_a', SD);
    s.setTimesteps(4);
    expect(() => s.step(start, s.timesteps[0], start, { shape: SHAPE })).toThrow(/euler_a is stochastic/);
  });
});

describe('algorithm details', () => {
  const model = (x: Float32Array, t: number) => x.map((v) => 0.1 * v + 0.01 * Math.sin(t / 100));
  const start = new TorchGenerator(9).randn(SHAPE);
  const none = new GeneratorNoise([new TorchGenerator(0)]);

  it('heun has order 2 and evaluates the model twice per sigma interval', () => {
    const s = createScheduler('heun', SD);
    expect(s.order).toBe(2);
    s.setTimesteps(5);
    expect(s.timesteps.length).toBe(9);
    expect(s.timesteps[1]).toBe(s.timesteps[2]);
    expect(s.sigmas?.[1]).toBe(s.sigmas?.[2]);
    let calls = 0;
    run(
      s,
      5,
      (x, t) => {
        calls++;
        return model(x, t);
      },
      none,
      start,
    );
    expect(calls).toBe(9);
  });

  it('v_prediction changes the result for the same model output', () => {
    for (const name of ['ddim', 'euler', 'dpmpp_2m', 'unipc', 'lms', 'heun', 'pndm']) {
      const eps = run(createScheduler(name, SD), 6, model, none, start);
      const v = run(createScheduler(name, { ...SD, prediction_type: 'v_prediction' }), 6, model, none, start);
      expect(maxAbsDiff(eps, v), name).toBeGreaterThan(1e-3);
    }
  });

  it("unipc's first step (no corrector, order 1) equals DPM-Solver++'s first-order step", () => {
    const u = createScheduler('unipc', SD);
    const d = createScheduler('dpmpp_2m', SD);
    u.setTimesteps(10);
    d.setTimesteps(10);
    const t = u.timesteps[0];
    const out = model(start, t);
    const a = u.step(out, t, start, { shape: SHAPE }).prevSample;
    const b = d.step(out, t, start, { shape: SHAPE }).prevSample;
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  });

  it('unipc with the corrector disabled differs from the default after the first step', () => {
    const a = run(createScheduler('unipc', SD), 6, model, none, start);
    const b = run(createScheduler('unipc', { ...SD, disable_corrector: [0, 1, 2, 3, 4] }), 6, model, none, start);
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-4);
  });

  it('lms: the first step equals an Euler step (the order-1 coefficient is sigma_next - sigma)', () => {
    const l = createScheduler('lms', SD);
    const e = createScheduler('euler', SD);
    l.setTimesteps(8);
    e.setTimesteps(8);
    const t = l.timesteps[0];
    const out = model(l.scaleModelInput(start, t), t);
    expect(
      maxAbsDiff(l.step(out, t, start, { shape: SHAPE }).prevSample, e.step(out, t, start, { shape: SHAPE }).prevSample),
    ).toBeLessThan(1e-5);
  });

  it('lms integrates its Lagrange basis exactly (cubic over an interval)', () => {
    expect(integratePolynomial((x) => x ** 3 - 2 * x, 0, 2)).toBeCloseTo(0, 12);
    expect(integratePolynomial((x) => 3 * x * x, 14.6, 10.7)).toBeCloseTo(10.7 ** 3 - 14.6 ** 3, 9);
  });

  it('solves the UniPC order-condition systems', () => {
    expect(
      solveLinear(
        [
          [2, 1],
          [1, 3],
        ],
        [3, 5],
      ).map((v) => Number(v.toFixed(12))),
    ).toEqual([0.8, 1.4]);
  });

  it('img2img: setBeginIndex makes a sigma scheduler start at that sigma', () => {
    const s = createScheduler('euler', SD);
    s.setTimesteps(10);
    s.setBeginIndex(4);
    const t = s.timesteps[4];
    const scaled = s.scaleModelInput(Float32Array.of(1), t);
    const sigma = s.sigmas?.[4] ?? Number.NaN;
    expect(scaled[0]).toBeCloseTo(1 / Math.sqrt(sigma * sigma + 1), 6);
    const noisy = s.addNoise(Float32Array.of(0), Float32Array.of(1), t);
    expect(noisy[0]).toBeCloseTo(sigma, 5);
  });

  it('trailing spacing starts at the last training timestep; leading init_noise_sigma is sqrt(sigma_max^2 + 1)', () => {
    const d = createScheduler('ddim', { ...SD, timestep_spacing: 'trailing' });
    d.setTimesteps(4);
    expect(Array.from(d.timesteps)).toEqual([999, 749, 499, 249]);
    const e = createScheduler('euler', { ...SD, timestep_spacing: 'leading' });
    e.setTimesteps(4);
    const max = e.sigmas?.[0] ?? 0;
    expect(e.initNoiseSigma).toBeCloseTo(Math.sqrt(max * max + 1), 5);
  });

  it('setTimesteps rejects a step count outside 1..num_train_timesteps', () => {
    expect(() => createScheduler('ddim', SD).setTimesteps(0)).toThrow(
      /num_inference_steps must be an integer between 1 and num_train_timesteps \(1000\), got 0/,
    );
    expect(() => createScheduler('lcm', SD).setTimesteps(60)).toThrow(/original_inference_steps \(50\), got 60/);
  });
});
