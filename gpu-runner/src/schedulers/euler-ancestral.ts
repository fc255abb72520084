// Euler ancestral (k-diffusion's sample_euler_ancestral) as diffusers' EulerAncestralDiscreteScheduler: an Euler
// step down to sigma_down, then fresh noise of size sigma_up drawn from the generator every step.

import { assertSameLength, checkSteps, drawNoise, trainingSigmas } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readAlphasCumprod, readChoice, readSpacing } from './scheduler-config.ts';
import {
  addNoiseSigma,
  buildSigmaSchedule,
  initNoiseSigmaFor,
  predictOriginal,
  scaleBySigma,
  trainingSigmaSchedule,
} from './sigma-schedule.ts';
import { StepIndexTracker } from './step-index.ts';

export class EulerAncestralScheduler implements Scheduler {
  readonly name = 'euler_a';
  readonly order = 1;
  timesteps: Float64Array = new Float64Array(0);
  sigmas: Float64Array;
  initNoiseSigma: number;

  private readonly trainSigmas: Float64Array;
  private readonly predictionType;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly steps = new StepIndexTracker({ float32Timestep: true, fallbackToLast: false });

  constructor(config: SchedulerConfig) {
    this.trainSigmas = trainingSigmas(readAlphasCumprod(config, { hasRescaleZeroSnr: true, clampZeroSnr: true }).alphasCumprod);
    // diffusers' EulerAncestral has no "sample" prediction.
    this.predictionType = readChoice(config, 'prediction_type', ['epsilon', 'v_prediction'] as const, 'epsilon');
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'linspace'));
    this.sigmas = trainingSigmaSchedule(this.trainSigmas);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.trainSigmas.length);
    const s = buildSigmaSchedule(this.trainSigmas, numInferenceSteps, {
      spacing: this.spacing,
      stepsOffset: this.stepsOffset,
      float32Linspace: true,
      useKarrasSigmas: false,
      finalSigmaType: 'zero',
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

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'euler_a step');
    const idx = this.steps.index(this.timesteps, timestep);
    if (idx + 1 >= this.sigmas.length)
      throw new Error(`euler_a: step ${idx} is past the last timestep (${this.timesteps.length} steps)`);
    const sigma = this.sigmas[idx];
    // 1. compute predicted original sample (x_0) from sigma-scaled predicted noise
    const predOriginal = predictOriginal(this.predictionType, modelOutput, sample, sigma);
    // 2. split the step into a deterministic part (to sigma_down) and fresh noise (sigma_up)
    const sigmaFrom = sigma;
    const sigmaTo = this.sigmas[idx + 1];
    const sigmaUp = Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2);
    const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
    const dt = sigmaDown - sigma;
    // 3. the ODE derivative and the Euler step, then the noise drawn after it (diffusers' order)
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] = sample[i] + ((sample[i] - predOriginal[i]) / sigma) * dt;
    const noise = drawNoise(this.name, ctx, sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] += noise[i] * sigmaUp;
    this.steps.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'euler_a addNoise');
    return addNoiseSigma(originalSamples, noise, this.sigmas[this.steps.noiseIndex(this.timesteps, timestep)]);
  }
}
