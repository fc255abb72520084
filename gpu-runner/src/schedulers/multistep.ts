// Pieces the multistep solvers (DPM-Solver++, UniPC) share: x0 conversion in the VP parameterisation, half-log-SNR
// lambda, the timestep-to-index lookup with diffusers' fallbacks, and sigma-based add_noise.
import { alphaSigmaFromSigma, indexForTimestep } from './schedule.ts';

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
  else if (predictionType === 'v_prediction') for (let i = 0; i < out.length; i++) out[i] = alpha * sample[i] - sigmaT * modelOutput[i];
  else out.set(modelOutput);
  return out;
}

/** lambda = log(alpha_t) - log(sigma_t); +Infinity at sigma = 0. */
export function lambdaOf(p: { alpha: number; sigmaT: number }): number {
  return Math.log(p.alpha) - Math.log(p.sigmaT);
}

/** The step index for a timestep: current index, else begin index, else lookup (the last index when absent). */
export function multistepIndexForNoise(timesteps: Float64Array, timestep: number, beginIndex: number | null, stepIndex: number | null): number {
  if (beginIndex === null) return indexForTimestep(timesteps, timestep, true);
  return stepIndex ?? beginIndex;
}

export function addNoiseSigmaVp(x0: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  const { alpha, sigmaT } = alphaSigmaFromSigma(sigma);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = alpha * x0[i] + sigmaT * noise[i];
  return out;
}
