// Timesteps and sigmas of the k-diffusion style schedulers (Euler, Euler ancestral, Heun, LMS): sigmas interpolated
// at the timesteps (or Karras-spaced), a final sigma appended, everything rounded to float32 as diffusers stores it.

import { float32Logs, interpAtIndex, karrasSigmas, roundHalfEven, sigmaTimesteps, sigmaToT } from './schedule.ts';
import type { SchedulerConfig } from './scheduler.ts';
import { readBoolean, readChoice, type TimestepSpacing } from './scheduler-config.ts';

const f32 = Math.fround;

export interface SigmaScheduleOptions {
  spacing: TimestepSpacing;
  stepsOffset: number;
  /** Euler, Euler ancestral, Heun and LMS all build linspace timesteps as float32 (np.linspace(..., dtype=np.float32)). */
  float32Linspace: boolean;
  useKarrasSigmas: boolean;
  finalSigmaType: 'zero' | 'sigma_min';
  /** Euler's sigma_min / sigma_max config overrides for the Karras range (null: from the schedule). */
  sigmaMin?: number | null;
  sigmaMax?: number | null;
  /** KDPM2 rounds the Karras timesteps to integers (half to even, np.round); Euler, Heun and LMS keep fractions. */
  roundKarrasTimesteps?: boolean;
}

export interface SigmaSchedule {
  /** float32 values, descending. */
  timesteps: Float64Array;
  /** float32 values, one per timestep plus the final sigma. */
  sigmas: Float64Array;
}

export function buildSigmaSchedule(trainSigmas: Float64Array, n: number, opts: SigmaScheduleOptions): SigmaSchedule {
  const train = trainSigmas.length;
  let timesteps = sigmaTimesteps(opts.spacing, train, n, opts.stepsOffset, opts.float32Linspace);
  let sigmas = timesteps.map((t) => interpAtIndex(t, trainSigmas));
  if (opts.useKarrasSigmas) {
    const sMin = opts.sigmaMin ?? sigmas[sigmas.length - 1];
    const sMax = opts.sigmaMax ?? sigmas[0];
    const logSigmas = float32Logs(trainSigmas);
    sigmas = Array.from(karrasSigmas(sMin, sMax, n));
    timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
    if (opts.roundKarrasTimesteps) timesteps = timesteps.map(roundHalfEven);
  }
  const last = opts.finalSigmaType === 'zero' ? 0 : trainSigmas[0];
  return {
    timesteps: Float64Array.from(timesteps, f32),
    sigmas: Float64Array.from([...sigmas, last], f32),
  };
}

/** The sigmas a constructor leaves before setTimesteps: the full training schedule, descending, then 0 (as diffusers). */
export function trainingSigmaSchedule(trainSigmas: Float64Array): Float64Array {
  return Float64Array.from([...Array.from(trainSigmas).reverse(), 0]);
}

/** diffusers' init_noise_sigma for sigma schedules: sigma_max for linspace/trailing, sqrt(sigma_max^2 + 1) for leading. */
export function initNoiseSigmaFor(sigmas: Float64Array, spacing: TimestepSpacing): number {
  let max = 0;
  for (const s of sigmas) max = Math.max(max, s);
  return spacing === 'leading' ? f32(Math.sqrt(f32(f32(max * max) + 1))) : max;
}

/** Config keys of sigma variants this port does not implement; setting one is an error rather than a silent change. */
export function rejectUnsupportedSigmaOptions(config: SchedulerConfig, scheduler: string): void {
  for (const key of ['use_exponential_sigmas', 'use_beta_sigmas']) {
    if (readBoolean(config, key, false)) throw new Error(`scheduler ${scheduler}: config ${key}=true is not supported`);
  }
  readChoice(config, 'interpolation_type', ['linear'] as const, 'linear');
  readChoice(config, 'timestep_type', ['discrete'] as const, 'discrete');
}

/** The k-diffusion input scaling 1 / sqrt(sigma^2 + 1). */
export function scaleBySigma(sample: Float32Array, sigma: number): Float32Array {
  const k = 1 / Math.sqrt(sigma * sigma + 1);
  const out = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) out[i] = sample[i] * k;
  return out;
}

/** x0 from a k-diffusion model output at noise level sigma (epsilon, v-prediction or sample). */
export function predictOriginal(
  predictionType: 'epsilon' | 'v_prediction' | 'sample',
  modelOutput: Float32Array,
  sample: Float32Array,
  sigma: number,
): Float32Array {
  const n = sample.length;
  const out = new Float32Array(n);
  if (predictionType === 'epsilon') {
    for (let i = 0; i < n; i++) out[i] = sample[i] - sigma * modelOutput[i];
  } else if (predictionType === 'v_prediction') {
    // c_out * v + c_skip * x
    const cOut = -sigma / Math.sqrt(sigma * sigma + 1);
    const cSkip = 1 / (sigma * sigma + 1);
    for (let i = 0; i < n; i++) out[i] = modelOutput[i] * cOut + sample[i] * cSkip;
  } else {
    out.set(modelOutput);
  }
  return out;
}

/** add_noise of the k-diffusion schedulers: x0 + sigma * noise. */
export function addNoiseSigma(x0: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = x0[i] + noise[i] * sigma;
  return out;
}
