// What the multistep solvers (DPM-Solver++, UniPC) share: the config they read, their timesteps and sigmas and the
// loop's position in them, the history of x0 predictions, x0 conversion in the VP parameterisation, half-log-SNR
// lambda, and sigma-based add_noise. diffusers copies these into both classes; here they are written once.

import {
  alphaSigmaFromSigma,
  assertSameLength,
  checkSteps,
  float32Logs,
  interpAtIndex,
  karrasSigmas,
  multistepTimesteps,
  roundHalfEven,
  sigmaToT,
  trainingSigmas,
} from './schedule.ts';
import type { SchedulerConfig } from './scheduler.ts';
import {
  PREDICTION_TYPES,
  type PredictionType,
  readAlphasCumprod,
  readBoolean,
  readChoice,
  readInteger,
  readSpacing,
  type TimestepSpacing,
} from './scheduler-config.ts';
import { StepIndexTracker } from './step-index.ts';
import { readThresholdConfig, type ThresholdConfig } from './thresholding.ts';

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

export interface MultistepConfig {
  numTrainTimesteps: number;
  alphasCumprod: Float64Array;
  trainSigmas: Float64Array;
  predictionType: PredictionType;
  spacing: TimestepSpacing;
  stepsOffset: number;
  solverOrder: number;
  lowerOrderFinal: boolean;
  useKarrasSigmas: boolean;
  finalSigmaType: 'zero' | 'sigma_min';
  /** Dynamic thresholding only: neither solver has clip_sample. */
  threshold: ThresholdConfig;
}

/** The scheduler_config.json keys both multistep solvers read; `unsupported` lists the sigma variants it refuses. */
export function readMultistepConfig(config: SchedulerConfig, name: string, unsupported: readonly string[]): MultistepConfig {
  const { numTrainTimesteps, alphasCumprod } = readAlphasCumprod(config, { hasRescaleZeroSnr: true, clampZeroSnr: true });
  const predictionType = readChoice(config, 'prediction_type', PREDICTION_TYPES, 'epsilon');
  const { spacing, stepsOffset } = readSpacing(config, 'linspace');
  const solverOrder = readInteger(config, 'solver_order', 2, 1);
  const lowerOrderFinal = readBoolean(config, 'lower_order_final', true);
  const useKarrasSigmas = readBoolean(config, 'use_karras_sigmas', false);
  for (const key of unsupported) {
    if (readBoolean(config, key, false)) throw new Error(`scheduler ${name}: config ${key}=true is not supported`);
  }
  const finalSigmaType = readChoice(config, 'final_sigmas_type', ['zero', 'sigma_min'] as const, 'zero');
  const threshold = { ...readThresholdConfig(config, { clipSample: false }), clipSample: false };
  return {
    numTrainTimesteps,
    alphasCumprod,
    trainSigmas: trainingSigmas(alphasCumprod),
    predictionType,
    spacing,
    stepsOffset,
    solverOrder,
    lowerOrderFinal,
    useKarrasSigmas,
    finalSigmaType,
    threshold,
  };
}

/** A multistep solver's schedule, its position in it, and its history of x0 predictions (diffusers' model_outputs). */
export class MultistepSteps {
  timesteps: Float64Array = new Float64Array(0);
  sigmas: Float64Array = new Float64Array(0);
  /** The last solverOrder x0 predictions, oldest first; null until the warm-up has filled them. */
  modelOutputs: (Float32Array | null)[] = [];
  /** How many steps have run at a lower order than solver_order (the warm-up). */
  lowerOrderNums = 0;
  private readonly position = new StepIndexTracker({ float32Timestep: false, fallbackToLast: true });

  constructor(
    private readonly name: string,
    private readonly config: MultistepConfig,
  ) {}

  /** set_timesteps; `last` is one past the last usable training timestep (DPM-Solver's lambda_min_clipped). */
  set(numInferenceSteps: number, last: number): void {
    const c = this.config;
    checkSteps(numInferenceSteps, c.numTrainTimesteps);
    const schedule = buildMultistepSchedule(c.trainSigmas, numInferenceSteps, {
      spacing: c.spacing,
      stepsOffset: c.stepsOffset,
      last,
      useKarrasSigmas: c.useKarrasSigmas,
      finalSigmaType: c.finalSigmaType,
    });
    this.sigmas = schedule.sigmas;
    this.timesteps = schedule.timesteps;
    this.modelOutputs = new Array(c.solverOrder).fill(null);
    this.lowerOrderNums = 0;
    this.position.reset();
  }

  setBeginIndex(beginIndex: number): void {
    this.position.setBeginIndex(beginIndex);
  }

  index(timestep: number): number {
    if (this.timesteps.length === 0) throw new Error(`${this.name}: call setTimesteps before step`);
    return this.position.index(this.timesteps, timestep);
  }

  /** The newest x0 prediction joins the history; the oldest leaves it. */
  remember(x0: Float32Array): void {
    this.modelOutputs.shift();
    this.modelOutputs.push(x0);
  }

  /** Past the current step; call once at the end of step(). */
  advance(): void {
    if (this.lowerOrderNums < this.config.solverOrder) this.lowerOrderNums++;
    this.position.advance();
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, `${this.name} addNoise`);
    return addNoiseSigmaVp(originalSamples, noise, this.sigmas[this.position.noiseIndex(this.timesteps, timestep)]);
  }
}
