// Euler (Karras et al. 2022, Algorithm 2) as diffusers' EulerDiscreteScheduler with s_churn = 0: a deterministic
// first-order ODE step in sigma, fractional (float32) timesteps, optional Karras sigmas.
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { PREDICTION_TYPES, TIMESTEP_SPACINGS, readBetaConfig, readBoolean, readChoice, readInteger, readNumber } from './scheduler-config.ts';
import { alphasCumprod, assertSameLength, indexForTimestep, makeBetas, trainingSigmas } from './schedule.ts';
import { checkSteps } from './ddim.ts';
import { buildSigmaSchedule, initNoiseSigmaFor, predictOriginal, rejectUnsupportedSigmaOptions, scaleBySigma } from './sigma-schedule.ts';

export class EulerScheduler implements Scheduler {
  readonly name: string = 'euler';
  readonly order = 1;
  timesteps: Float64Array = new Float64Array(0);
  sigmas: Float64Array;
  initNoiseSigma: number;

  private readonly trainSigmas: Float64Array;
  private readonly predictionType;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly useKarras: boolean;
  private readonly finalSigmaType;
  private readonly sigmaMin: number | null;
  private readonly sigmaMax: number | null;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    rejectUnsupportedSigmaOptions(config, 'euler');
    const beta = readBetaConfig(config, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, { hasRescaleZeroSnr: true });
    const ac = alphasCumprod(makeBetas(beta, ['linear', 'scaled_linear', 'squaredcos_cap_v2']));
    // Close to 0 without being 0, so the first sigma is not infinite (the fp16 smallest subnormal, as diffusers).
    if (beta.rescaleBetasZeroSnr) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = trainingSigmas(ac);
    this.predictionType = readChoice(config, 'prediction_type', PREDICTION_TYPES, 'epsilon');
    this.spacing = readChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'linspace');
    this.stepsOffset = readInteger(config, 'steps_offset', 0);
    this.useKarras = readBoolean(config, 'use_karras_sigmas', false);
    this.finalSigmaType = readChoice(config, 'final_sigmas_type', ['zero', 'sigma_min'] as const, 'zero');
    const sMin = readNumber(config, 'sigma_min', Number.NaN);
    const sMax = readNumber(config, 'sigma_max', Number.NaN);
    this.sigmaMin = Number.isNaN(sMin) ? null : sMin;
    this.sigmaMax = Number.isNaN(sMax) ? null : sMax;
    // Before setTimesteps: the full training schedule, as diffusers' constructor leaves it.
    this.sigmas = Float64Array.from([...Array.from(this.trainSigmas).reverse(), 0]);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.trainSigmas.length);
    const s = buildSigmaSchedule(this.trainSigmas, numInferenceSteps, {
      spacing: this.spacing,
      stepsOffset: this.stepsOffset,
      float32Linspace: true,
      useKarrasSigmas: this.useKarras,
      finalSigmaType: this.finalSigmaType,
      sigmaMin: this.sigmaMin,
      sigmaMax: this.sigmaMax,
    });
    this.timesteps = s.timesteps;
    this.sigmas = s.sigmas;
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(beginIndex: number): void {
    this.beginIndex = beginIndex;
  }

  private currentIndex(timestep: number): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, Math.fround(timestep));
    return this.stepIndex;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.currentIndex(timestep)]);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'euler step');
    const idx = this.currentIndex(timestep);
    if (idx + 1 >= this.sigmas.length) throw new Error(`euler: step ${idx} is past the last timestep (${this.timesteps.length} steps)`);
    // s_churn = 0, so gamma = 0 and sigma_hat = sigma: no noise is added.
    const sigma = this.sigmas[idx];
    // 1. compute predicted original sample (x_0) from sigma-scaled predicted noise
    const predOriginal = predictOriginal(this.predictionType, modelOutput, sample, sigma);
    // 2. convert to an ODE derivative and take the Euler step
    const dt = this.sigmas[idx + 1] - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const derivative = (sample[i] - predOriginal[i]) / sigma;
      prevSample[i] = sample[i] + derivative * dt;
    }
    this.stepIndex = idx + 1;
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'euler addNoise');
    return addNoiseSigma(originalSamples, noise, this.sigmas[sigmaIndexForNoise(this.timesteps, timestep, this.beginIndex, this.stepIndex)]);
  }
}

/** Which sigma add_noise uses: by timestep before img2img sets a begin index, else the current/begin index. */
export function sigmaIndexForNoise(timesteps: Float64Array, timestep: number, beginIndex: number | null, stepIndex: number | null, fallbackToLast = false): number {
  if (beginIndex === null) return indexForTimestep(timesteps, Math.fround(timestep), fallbackToLast);
  return stepIndex ?? beginIndex;
}

export function addNoiseSigma(x0: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = x0[i] + noise[i] * sigma;
  return out;
}
