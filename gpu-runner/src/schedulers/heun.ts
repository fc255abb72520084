// Heun's method (Karras et al. 2022, Algorithm 1 without churn) as diffusers' HeunDiscreteScheduler: order 2, two
// model evaluations per sigma interval, so the timesteps repeat every entry after the first (2N-1 in all).

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

export class HeunScheduler implements Scheduler {
  readonly name = 'heun';
  readonly order = 2;
  timesteps: Float64Array = new Float64Array(0);
  sigmas: Float64Array;
  initNoiseSigma: number;

  private readonly trainSigmas: Float64Array;
  private readonly predictionType;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly useKarras: boolean;
  private readonly clipSample: boolean;
  private readonly clipSampleRange: number;
  private readonly steps = new StepIndexTracker({ float32Timestep: true, fallbackToLast: false });
  // First-order state carried into the correction evaluation.
  private prevDerivative: Float64Array | null = null;
  private dt: number | null = null;
  private firstSample: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    rejectUnsupportedSigmaOptions(config, 'heun');
    const betas = { betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'linear' };
    this.trainSigmas = trainingSigmas(readAlphasCumprod(config, { betas, hasRescaleZeroSnr: false }).alphasCumprod);
    this.predictionType = readChoice(config, 'prediction_type', PREDICTION_TYPES, 'epsilon');
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'linspace'));
    this.useKarras = readBoolean(config, 'use_karras_sigmas', false);
    this.clipSample = readBoolean(config, 'clip_sample', false);
    this.clipSampleRange = readNumber(config, 'clip_sample_range', 1);
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
      finalSigmaType: 'zero',
    });
    // sigmas [s0, s1, s1, s2, s2, ..., 0] and timesteps [t0, t1, t1, t2, t2, ...]
    const sig = [s.sigmas[0]];
    for (let i = 1; i < s.sigmas.length - 1; i++) sig.push(s.sigmas[i], s.sigmas[i]);
    sig.push(s.sigmas[s.sigmas.length - 1]);
    const ts = [s.timesteps[0]];
    for (let i = 1; i < s.timesteps.length; i++) ts.push(s.timesteps[i], s.timesteps[i]);
    this.sigmas = Float64Array.from(sig);
    this.timesteps = Float64Array.from(ts);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
    this.prevDerivative = null;
    this.dt = null;
    this.firstSample = null;
    this.steps.reset();
  }

  setBeginIndex(beginIndex: number): void {
    this.steps.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.steps.index(this.timesteps, timestep)]);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'heun step');
    const idx = this.steps.index(this.timesteps, timestep);
    if (idx + 1 >= this.sigmas.length)
      throw new Error(`heun: step ${idx} is past the last timestep (${this.timesteps.length} entries)`);
    const firstOrder = this.dt === null;
    const sigma = firstOrder ? this.sigmas[idx] : this.sigmas[idx - 1];
    const sigmaNext = firstOrder ? this.sigmas[idx + 1] : this.sigmas[idx];
    // 1. compute predicted original sample (x_0), at sigma_hat (= sigma) or at sigma_next for the correction
    const predOriginal = predictOriginal(this.predictionType, modelOutput, sample, firstOrder ? sigma : sigmaNext);
    if (this.clipSample) {
      const r = this.clipSampleRange;
      for (let i = 0; i < predOriginal.length; i++) predOriginal[i] = Math.min(r, Math.max(-r, predOriginal[i]));
    }
    const n = sample.length;
    const prevSample = new Float32Array(n);
    if (firstOrder) {
      // 2. first order: an Euler step, remembered for the correction
      const derivative = new Float64Array(n);
      for (let i = 0; i < n; i++) derivative[i] = (sample[i] - predOriginal[i]) / sigma;
      const dt = sigmaNext - sigma;
      for (let i = 0; i < n; i++) prevSample[i] = sample[i] + derivative[i] * dt;
      this.prevDerivative = derivative;
      this.dt = dt;
      // a copy: the caller may reuse its sample buffer before the correction step
      this.firstSample = sample.slice();
    } else {
      // 2. second order: average the two slopes and redo the step from the first sample (Heun's method)
      const prev = this.prevDerivative as Float64Array;
      const start = this.firstSample as Float32Array;
      const dt = this.dt as number;
      for (let i = 0; i < n; i++) {
        const derivative = ((sample[i] - predOriginal[i]) / sigmaNext + prev[i]) / 2;
        prevSample[i] = start[i] + derivative * dt;
      }
      this.prevDerivative = null;
      this.dt = null;
      this.firstSample = null;
    }
    this.steps.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'heun addNoise');
    return addNoiseSigma(originalSamples, noise, this.sigmas[this.steps.noiseIndex(this.timesteps, timestep)]);
  }
}
