// Euler (Karras et al. 2022, Algorithm 2) as diffusers' EulerDiscreteScheduler with s_churn = 0: a deterministic
// first-order ODE step in sigma, fractional (float32) timesteps, optional Karras sigmas.

import { assertSameLength, checkSteps, trainingSigmas } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { PREDICTION_TYPES, readAlphasCumprod, readBoolean, readChoice, readNumber, readSpacing } from './scheduler-config.ts';
import {
  addNoiseSigma,
  buildSigmaSchedule,
  initNoiseSigmaFor,
  predictOriginal,
  rejectUnsupportedSigmaOptions,
  scaleBySigma,
  trainingSigmaSchedule,
} from './sigma-schedule.ts';
import { StepIndexTracker } from './step-index.ts';

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
  private readonly steps = new StepIndexTracker({ float32Timestep: true, fallbackToLast: false });

  constructor(config: SchedulerConfig) {
    rejectUnsupportedSigmaOptions(config, 'euler');
    this.trainSigmas = trainingSigmas(readAlphasCumprod(config, { hasRescaleZeroSnr: true, clampZeroSnr: true }).alphasCumprod);
    this.predictionType = readChoice(config, 'prediction_type', PREDICTION_TYPES, 'epsilon');
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'linspace'));
    this.useKarras = readBoolean(config, 'use_karras_sigmas', false);
    this.finalSigmaType = readChoice(config, 'final_sigmas_type', ['zero', 'sigma_min'] as const, 'zero');
    const sMin = readNumber(config, 'sigma_min', Number.NaN);
    const sMax = readNumber(config, 'sigma_max', Number.NaN);
    this.sigmaMin = Number.isNaN(sMin) ? null : sMin;
    this.sigmaMax = Number.isNaN(sMax) ? null : sMax;
    // Before setTimesteps: the full training schedule, as diffusers' constructor leaves it.
    this.sigmas = trainingSigmaSchedule(this.trainSigmas);
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
    this.steps.reset();
  }

  setBeginIndex(beginIndex: number): void {
    this.steps.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.steps.index(this.timesteps, timestep)]);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'euler step');
    const idx = this.steps.index(this.timesteps, timestep);
    if (idx + 1 >= this.sigmas.length)
      throw new Error(`euler: step ${idx} is past the last timestep (${this.timesteps.length} steps)`);
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
    this.steps.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'euler addNoise');
    return addNoiseSigma(originalSamples, noise, this.sigmas[this.steps.noiseIndex(this.timesteps, timestep)]);
  }
}
