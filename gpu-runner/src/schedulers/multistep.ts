// Pieces the multistep solvers (DPM-Solver++, UniPC) share: their timesteps and sigmas, x0 conversion in the VP
// parameterisation, half-log-SNR lambda, and sigma-based add_noise.

import {
  alphaSigmaFromSigma,
  float32Logs,
  interpAtIndex,
  karrasSigmas,
  multistepTimesteps,
  roundHalfEven,
  sigmaToT,
} from './schedule.ts';
import type { TimestepSpacing } from './scheduler-config.ts';

const f32 = Math.fround;

export interface MultistepScheduleOptions {
  spacing: TimestepSpacing;
  stepsOffset: number;
  /** One past the last usable training timestep (DPM-Solver's lambda_min_clipped cuts the tail). */
  last: number;
  useKarrasSigmas: boolean;
  finalSigmaType: 'zero' | 'sigma_min';
}

/** Integer timesteps (rounded from Karras sigmas when on) and float32 sigmas with the final sigma appended. */
export function buildMultistepSchedule(
  trainSigmas: Float64Array,
  n: number,
  opts: MultistepScheduleOptions,
): { timesteps: Float64Array; sigmas: Float64Array } {
  let timesteps = multistepTimesteps(opts.spacing, trainSigmas.length, opts.last, n, opts.stepsOffset);
  let sigmas: number[];
  if (opts.useKarrasSigmas) {
    const logSigmas = float32Logs(trainSigmas);
    sigmas = Array.from(karrasSigmas(trainSigmas[0], trainSigmas[trainSigmas.length - 1], n));
    timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas)));
  } else {
    sigmas = timesteps.map((t) => interpAtIndex(t, trainSigmas));
  }
  const sigmaLast = opts.finalSigmaType === 'zero' ? 0 : opts.useKarrasSigmas ? sigmas[sigmas.length - 1] : trainSigmas[0];
  return { timesteps: Float64Array.from(timesteps), sigmas: Float64Array.from([...sigmas, sigmaLast], f32) };
}

/** x0 from the model output at sigma (alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t). */
export function convertToX0(
  predictionType: 'epsilon' | 'v_prediction' | 'sample',
  modelOutput: Float32Array,
  sample: Float32Array,
  sigma: number,
): Float32Array {
  const { alpha, sigmaT } = alphaSigmaFromSigma(sigma);
  const out = new Float32Array(sample.length);
  if (predictionType === 'epsilon') for (let i = 0; i < out.length; i++) out[i] = (sample[i] - sigmaT * modelOutput[i]) / alpha;
  else if (predictionType === 'v_prediction')
    for (let i = 0; i < out.length; i++) out[i] = alpha * sample[i] - sigmaT * modelOutput[i];
  else out.set(modelOutput);
  return out;
}

/** lambda = log(alpha_t) - log(sigma_t); +Infinity at sigma = 0. */
export function lambdaOf(p: { alpha: number; sigmaT: number }): number {
  return Math.log(p.alpha) - Math.log(p.sigmaT);
}

export function addNoiseSigmaVp(x0: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  const { alpha, sigmaT } = alphaSigmaFromSigma(sigma);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = alpha * x0[i] + sigmaT * noise[i];
  return out;
}
