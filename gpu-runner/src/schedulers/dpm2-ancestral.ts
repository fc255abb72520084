// DPM2 ancestral (k-diffusion's sample_dpm_2_ancestral) as diffusers' KDPM2AncestralDiscreteScheduler: DPM2 aimed at
// sigma_down instead of the next sigma, then fresh noise of size sigma_up from the generator after the second
// evaluation of each interval (one draw per interval, none on the first evaluation).

import { KDPM2_BETAS, kdpm2PredictOriginal } from './dpm2.ts';
import { buildKdpm2Schedule, scaleBySigmaFloat32 } from './kdpm2-schedule.ts';
import { assertSameLength, checkSteps, drawNoise, trainingSigmas } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readAlphasCumprod, readBoolean, readChoice, readSpacing } from './scheduler-config.ts';
import { addNoiseSigma, initNoiseSigmaFor, rejectUnsupportedSigmaOptions, trainingSigmaSchedule } from './sigma-schedule.ts';
import { StepIndexTracker } from './step-index.ts';

const f32 = Math.fround;

export class Dpm2AncestralScheduler implements Scheduler {
  readonly order = 2;
  timesteps: Float64Array = new Float64Array(0);
  sigmas: Float64Array;
  initNoiseSigma: number;

  private sigmasInterpol: Float64Array = new Float64Array(0);
  private sigmasUp: Float64Array = new Float64Array(0);
  private sigmasDown: Float64Array = new Float64Array(0);
  private readonly trainSigmas: Float64Array;
  private readonly predictionType;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly useKarras: boolean;
  private readonly steps = new StepIndexTracker({ float32Timestep: true, fallbackToLast: false });
  /** The sample at the start of the interval, kept between the two evaluations (diffusers' self.sample). */
  private firstSample: Float32Array | null = null;

  constructor(
    config: SchedulerConfig,
    readonly name: string = 'dpm2_a',
  ) {
    rejectUnsupportedSigmaOptions(config, name);
    this.trainSigmas = trainingSigmas(readAlphasCumprod(config, { betas: KDPM2_BETAS, hasRescaleZeroSnr: false }).alphasCumprod);
    this.predictionType = readChoice(config, 'prediction_type', ['epsilon', 'v_prediction'] as const, 'epsilon');
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'linspace'));
    this.useKarras = readBoolean(config, 'use_karras_sigmas', false);
    this.sigmas = trainingSigmaSchedule(this.trainSigmas);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.trainSigmas.length);
    const s = buildKdpm2Schedule(this.trainSigmas, numInferenceSteps, {
      spacing: this.spacing,
      stepsOffset: this.stepsOffset,
      useKarrasSigmas: this.useKarras,
      ancestral: true,
    });
    this.timesteps = s.timesteps;
    this.sigmas = s.sigmas;
    this.sigmasInterpol = s.sigmasInterpol;
    this.sigmasUp = s.sigmasUp as Float64Array;
    this.sigmasDown = s.sigmasDown as Float64Array;
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
    this.firstSample = null;
    this.steps.reset();
  }

  setBeginIndex(beginIndex: number): void {
    this.steps.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const idx = this.steps.index(this.timesteps, timestep);
    const sigma = this.firstSample === null ? this.sigmas[idx] : this.sigmasInterpol[idx - 1];
    return scaleBySigmaFloat32(sample, sigma);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, `${this.name} step`);
    if (this.timesteps.length === 0) throw new Error(`${this.name}: call setTimesteps before step`);
    const idx = this.steps.index(this.timesteps, timestep);
    if (idx >= this.timesteps.length)
      throw new Error(`${this.name}: step ${idx} is past the last timestep (${this.timesteps.length} entries)`);
    const firstOrder = this.firstSample === null;
    // 1. the interval: from sigma through the midpoint sigma_interpol to sigma_down, plus sigma_up of fresh noise
    const sigma = firstOrder ? this.sigmas[idx] : this.sigmas[idx - 1];
    const sigmaInterpol = firstOrder ? this.sigmasInterpol[idx] : this.sigmasInterpol[idx - 1];
    const sigmaUp = firstOrder ? this.sigmasUp[idx] : this.sigmasUp[idx - 1];
    const sigmaDown = this.sigmasDown[idx === 0 ? this.sigmasDown.length - 1 : idx - 1];
    // 2. compute predicted original sample (x_0) at the sigma the model was evaluated at
    const predOriginal = kdpm2PredictOriginal(this.predictionType, modelOutput, sample, firstOrder ? sigma : sigmaInterpol);
    const n = sample.length;
    const prevSample = new Float32Array(n);
    if (firstOrder) {
      // 3a. Euler step to the midpoint, remembering where the interval started
      const dt = f32(sigmaInterpol - sigma);
      for (let i = 0; i < n; i++) prevSample[i] = sample[i] + f32(f32(f32(sample[i] - predOriginal[i]) / sigma) * dt);
      this.firstSample = sample.slice();
    } else {
      // 3b. the midpoint slope from the interval's start down to sigma_down, then the noise drawn after it
      const start = this.firstSample as Float32Array;
      const dt = f32(sigmaDown - sigma);
      for (let i = 0; i < n; i++) prevSample[i] = start[i] + f32(f32(f32(sample[i] - predOriginal[i]) / sigmaInterpol) * dt);
      const noise = drawNoise(this.name, ctx, n);
      for (let i = 0; i < n; i++) prevSample[i] = prevSample[i] + f32(noise[i] * sigmaUp);
      this.firstSample = null;
    }
    this.steps.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, `${this.name} addNoise`);
    return addNoiseSigma(originalSamples, noise, this.sigmas[this.steps.noiseIndex(this.timesteps, timestep)]);
  }
}
