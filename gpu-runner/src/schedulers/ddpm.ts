// DDPM (Ho et al. 2020) ancestral sampling as diffusers' DDPMScheduler: posterior mean from x0 and x_t, plus
// noise of the fixed variance drawn from the generator on every step with t > 0.

import { addNoiseVp, assertSameLength, checkSteps, discreteTimesteps, drawNoise } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import {
  BETA_SCHEDULES,
  type DiscreteSchedule,
  PREDICTION_TYPES,
  type PredictionType,
  readChoice,
  readDiscreteSchedule,
  readSpacing,
} from './scheduler-config.ts';
import { clipOrThreshold, readThresholdConfig, type ThresholdConfig } from './thresholding.ts';

const VARIANCE_TYPES = ['fixed_small', 'fixed_small_log', 'fixed_large'] as const;

export class DdpmScheduler implements Scheduler {
  readonly name = 'ddpm';
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly sigmas = null;
  timesteps: Float64Array = new Float64Array(0);

  private readonly schedule: DiscreteSchedule<PredictionType>;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly varianceType;
  private readonly threshold: ThresholdConfig;
  private numInferenceSteps = 0;

  constructor(config: SchedulerConfig) {
    this.schedule = readDiscreteSchedule(config, {
      hasRescaleZeroSnr: true,
      betaSchedules: [...BETA_SCHEDULES, 'sigmoid'],
      setAlphaToOne: null,
      predictionTypes: PREDICTION_TYPES,
    });
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'leading'));
    // Learned variances need an 8-channel U-Net output, which no Stable Diffusion export has; diffusers'
    // fixed_large_log takes the square root of a negative log (NaN), so it is refused too.
    this.varianceType = readChoice(config, 'variance_type', VARIANCE_TYPES, 'fixed_small');
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

  /**
   * diffusers' previous_timestep once set_timesteps has run (PR #9384, in v0.31): the next entry of `timesteps`, or -1
   * after the last. The older rule t - train // steps agrees for leading spacing but not for linspace/trailing.
   */
  private previousTimestep(timestep: number): number {
    const index = this.timesteps.indexOf(timestep);
    if (index < 0) {
      throw new Error(
        `ddpm: timestep ${timestep} is not in the scheduler's timesteps [${Array.from(this.timesteps.slice(0, 8)).join(', ')}${this.timesteps.length > 8 ? ', ...' : ''}]`,
      );
    }
    return index === this.timesteps.length - 1 ? -1 : this.timesteps[index + 1];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'ddpm step');
    if (this.numInferenceSteps === 0) throw new Error('ddpm: call setTimesteps before step');
    const prevT = this.previousTimestep(timestep);
    // 1. compute alphas, betas
    const alphaProdT = this.schedule.alphasCumprod[timestep];
    const alphaProdPrev = prevT >= 0 ? this.schedule.alphasCumprod[prevT] : 1;
    const betaProdT = 1 - alphaProdT;
    const betaProdPrev = 1 - alphaProdPrev;
    const currentAlphaT = alphaProdT / alphaProdPrev;
    const currentBetaT = 1 - currentAlphaT;
    // 2. compute predicted original sample from predicted noise, "predicted x_0" of formula (15)
    const n = sample.length;
    const sa = Math.sqrt(alphaProdT);
    const sb = Math.sqrt(betaProdT);
    const { predictionType } = this.schedule;
    const predOriginal = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (predictionType === 'epsilon') predOriginal[i] = (sample[i] - sb * modelOutput[i]) / sa;
      else if (predictionType === 'sample') predOriginal[i] = modelOutput[i];
      else predOriginal[i] = sa * sample[i] - sb * modelOutput[i];
    }
    // 3. clip or threshold "predicted x_0"
    clipOrThreshold(predOriginal, this.threshold, ctx.shape[0] ?? 1);
    // 4. coefficients for pred_original_sample x_0 and current sample x_t, formula (7)
    const origCoeff = (Math.sqrt(alphaProdPrev) * currentBetaT) / betaProdT;
    const curCoeff = (Math.sqrt(currentAlphaT) * betaProdPrev) / betaProdT;
    // 5. the posterior mean mu_t
    const prevSample = new Float32Array(n);
    for (let i = 0; i < n; i++) prevSample[i] = origCoeff * predOriginal[i] + curCoeff * sample[i];
    // 6. add noise of the fixed variance (no noise at t = 0)
    if (timestep > 0) {
      const noise = drawNoise(this.name, ctx, n);
      const std = this.noiseScale(alphaProdT, alphaProdPrev, currentBetaT);
      for (let i = 0; i < n; i++) prevSample[i] += std * noise[i];
    }
    return { prevSample, predOriginalSample: predOriginal };
  }

  /** The multiplier of the unit noise: sqrt of the variance (or diffusers' log-variance variants). */
  private noiseScale(alphaProdT: number, alphaProdPrev: number, currentBetaT: number): number {
    // formula (6)/(7): beta tilde, clamped so its log stays finite
    const variance = Math.max(((1 - alphaProdPrev) / (1 - alphaProdT)) * currentBetaT, 1e-20);
    switch (this.varianceType) {
      case 'fixed_small':
        return Math.sqrt(variance);
      case 'fixed_small_log':
        // diffusers multiplies the noise by exp(0.5 * log(var)) itself, not its square root
        return Math.exp(0.5 * Math.log(variance));
      case 'fixed_large':
        return Math.sqrt(currentBetaT);
    }
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'ddpm addNoise');
    return addNoiseVp(originalSamples, noise, this.schedule.alphasCumprod[timestep]);
  }
}
