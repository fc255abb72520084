// Latent Consistency Models (Luo et al. 2023) as diffusers' LCMScheduler: timesteps picked from the 50-step
// distillation schedule, a consistency-function denoise per step, then fresh noise injected (except at the end).

import { addNoiseVp, alphaProdAt, assertSameLength, checkSteps, drawNoise, linspace } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import {
  type DiscreteSchedule,
  PREDICTION_TYPES,
  type PredictionType,
  readDiscreteSchedule,
  readInteger,
  readNumber,
} from './scheduler-config.ts';
import { StepIndexTracker } from './step-index.ts';
import { clipOrThreshold, readThresholdConfig, type ThresholdConfig } from './thresholding.ts';

const SIGMA_DATA = 0.5;

export class LcmScheduler implements Scheduler {
  readonly name = 'lcm';
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly sigmas = null;
  timesteps: Float64Array = new Float64Array(0);

  private readonly schedule: DiscreteSchedule<PredictionType>;
  private readonly originalInferenceSteps: number;
  private readonly timestepScaling: number;
  private readonly threshold: ThresholdConfig;
  private numInferenceSteps = 0;
  private readonly steps = new StepIndexTracker({ float32Timestep: false, fallbackToLast: false });

  constructor(config: SchedulerConfig) {
    this.schedule = readDiscreteSchedule(config, {
      betas: { betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear' },
      hasRescaleZeroSnr: true,
      setAlphaToOne: true,
      predictionTypes: PREDICTION_TYPES,
    });
    this.originalInferenceSteps = readInteger(config, 'original_inference_steps', 50, 1);
    this.timestepScaling = readNumber(config, 'timestep_scaling', 10);
    this.threshold = readThresholdConfig(config, { clipSample: false });
  }

  setTimesteps(numInferenceSteps: number): void {
    const train = this.schedule.numTrainTimesteps;
    checkSteps(numInferenceSteps, train);
    const original = this.originalInferenceSteps;
    if (original > train) {
      throw new Error(
        `scheduler config original_inference_steps must be at most num_train_timesteps (${train}), got ${original}`,
      );
    }
    if (numInferenceSteps > original) {
      throw new Error(
        `lcm: num_inference_steps must be at most original_inference_steps (${original}), got ${numInferenceSteps}`,
      );
    }
    this.numInferenceSteps = numInferenceSteps;
    // The LCM distillation schedule: k-1, 2k-1, ..., then evenly spaced picks from its reverse.
    const k = Math.floor(train / original);
    const origin = Array.from({ length: original }, (_, i) => (i + 1) * k - 1).reverse();
    const picks = linspace(0, origin.length, numInferenceSteps, false);
    this.timesteps = Float64Array.from(picks, (p) => origin[Math.floor(p)]);
    this.steps.reset();
  }

  setBeginIndex(beginIndex: number): void {
    this.steps.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'lcm step');
    if (this.numInferenceSteps === 0) throw new Error('lcm: call setTimesteps before step');
    const idx = this.steps.index(this.timesteps, timestep);
    // 1. get previous step value
    const prevTimestep = idx + 1 < this.timesteps.length ? this.timesteps[idx + 1] : timestep;
    // 2. compute alphas, betas
    const alphaProdT = this.schedule.alphasCumprod[timestep];
    const alphaProdPrev = alphaProdAt(this.schedule.alphasCumprod, prevTimestep, this.schedule.finalAlphaCumprod);
    const sa = Math.sqrt(alphaProdT);
    const sb = Math.sqrt(1 - alphaProdT);
    // 3. boundary-condition scalings of the consistency function
    const scaled = timestep * this.timestepScaling;
    const cSkip = SIGMA_DATA ** 2 / (scaled ** 2 + SIGMA_DATA ** 2);
    const cOut = scaled / Math.sqrt(scaled ** 2 + SIGMA_DATA ** 2);
    // 4. compute the predicted original sample x_0
    const n = sample.length;
    const { predictionType } = this.schedule;
    const predOriginal = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (predictionType === 'epsilon') predOriginal[i] = (sample[i] - sb * modelOutput[i]) / sa;
      else if (predictionType === 'sample') predOriginal[i] = modelOutput[i];
      else predOriginal[i] = sa * sample[i] - sb * modelOutput[i];
    }
    // 5. clip or threshold x_0
    clipOrThreshold(predOriginal, this.threshold, ctx.shape[0] ?? 1);
    // 6. denoise with the consistency-model parameterisation
    const denoised = new Float32Array(n);
    for (let i = 0; i < n; i++) denoised[i] = cOut * predOriginal[i] + cSkip * sample[i];
    // 7. inject noise for the next step (multistep consistency sampling); the final step returns the denoised sample
    let prevSample = denoised;
    if (idx !== this.numInferenceSteps - 1) {
      const noise = drawNoise(this.name, ctx, n);
      const a = Math.sqrt(alphaProdPrev);
      const b = Math.sqrt(1 - alphaProdPrev);
      prevSample = new Float32Array(n);
      for (let i = 0; i < n; i++) prevSample[i] = a * denoised[i] + b * noise[i];
    }
    this.steps.advance();
    return { prevSample, predOriginalSample: denoised };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'lcm addNoise');
    return addNoiseVp(originalSamples, noise, this.schedule.alphasCumprod[timestep]);
  }
}
