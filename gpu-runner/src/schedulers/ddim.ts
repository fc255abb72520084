// DDIM (Song et al. 2020), as diffusers' DDIMScheduler with eta = 0 (the pipelines' default): deterministic,
// integer timesteps, prev timestep = t - train/steps.

import { addNoiseVp, alphaProdAt, assertSameLength, checkSteps, discreteTimesteps } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import {
  type DiscreteSchedule,
  PREDICTION_TYPES,
  type PredictionType,
  readDiscreteSchedule,
  readSpacing,
} from './scheduler-config.ts';
import { clipOrThreshold, readThresholdConfig, type ThresholdConfig } from './thresholding.ts';

export class DdimScheduler implements Scheduler {
  readonly name = 'ddim';
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly sigmas = null;
  timesteps: Float64Array = new Float64Array(0);

  private readonly schedule: DiscreteSchedule<PredictionType>;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly threshold: ThresholdConfig;
  private numInferenceSteps = 0;

  constructor(config: SchedulerConfig) {
    // With zero terminal SNR the last alpha is exactly 0 and diffusers keeps it (no 2**-24 clamp in DDIM).
    this.schedule = readDiscreteSchedule(config, {
      hasRescaleZeroSnr: true,
      setAlphaToOne: true,
      predictionTypes: PREDICTION_TYPES,
    });
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'leading'));
    this.threshold = readThresholdConfig(config, { clipSample: true });
  }

  setTimesteps(numInferenceSteps: number): void {
    const train = this.schedule.numTrainTimesteps;
    checkSteps(numInferenceSteps, train);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = Float64Array.from(discreteTimesteps(this.spacing, train, numInferenceSteps, this.stepsOffset));
  }

  setBeginIndex(): void {}

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'ddim step');
    if (this.numInferenceSteps === 0) throw new Error('ddim: call setTimesteps before step');
    // 1. get previous step value (=t-1)
    const prevTimestep = timestep - Math.floor(this.schedule.numTrainTimesteps / this.numInferenceSteps);
    // 2. compute alphas, betas
    const alphaProdT = this.schedule.alphasCumprod[timestep];
    const alphaProdPrev = alphaProdAt(this.schedule.alphasCumprod, prevTimestep, this.schedule.finalAlphaCumprod);
    const betaProdT = 1 - alphaProdT;
    const sa = Math.sqrt(alphaProdT);
    const sb = Math.sqrt(betaProdT);
    // 3. compute predicted original sample and predicted noise ("predicted x_0" / "direction" of eq. 12)
    const n = sample.length;
    const { predictionType } = this.schedule;
    const predOriginal = new Float32Array(n);
    const predEpsilon = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      if (predictionType === 'epsilon') {
        predOriginal[i] = (x - sb * m) / sa;
        predEpsilon[i] = m;
      } else if (predictionType === 'sample') {
        predOriginal[i] = m;
        predEpsilon[i] = (x - sa * m) / sb;
      } else {
        predOriginal[i] = sa * x - sb * m;
        predEpsilon[i] = sa * m + sb * x;
      }
    }
    // 4. clip or threshold "predicted x_0"
    clipOrThreshold(predOriginal, this.threshold, ctx.shape[0] ?? 1);
    // 5./6. eta = 0: no variance; direction pointing to x_t
    const dirCoeff = Math.sqrt(1 - alphaProdPrev);
    const prevCoeff = Math.sqrt(alphaProdPrev);
    // 7. x_{t-1} without the random term
    const prevSample = new Float32Array(n);
    for (let i = 0; i < n; i++) prevSample[i] = prevCoeff * predOriginal[i] + dirCoeff * predEpsilon[i];
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'ddim addNoise');
    return addNoiseVp(originalSamples, noise, this.schedule.alphasCumprod[timestep]);
  }
}
