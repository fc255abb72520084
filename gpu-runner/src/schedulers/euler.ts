// Euler (Karras et al. 2022, Algorithm 2) as diffusers' EulerDiscreteScheduler with s_churn = 0: a deterministic
// first-order ODE step in sigma, fractional (float32) timesteps, optional Karras sigmas.

import { assertSameLength } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readChoice, readNumber } from './scheduler-config.ts';
import { buildSigmaSchedule, predictOriginal } from './sigma-schedule.ts';
import { readSigmaConfig, SigmaSteps } from './sigma-steps.ts';

export class EulerScheduler implements Scheduler {
  readonly name: string = 'euler';
  readonly order = 1;
  private readonly config;
  private readonly finalSigmaType;
  private readonly sigmaMin: number | null;
  private readonly sigmaMax: number | null;
  private readonly state: SigmaSteps;

  constructor(config: SchedulerConfig) {
    this.config = readSigmaConfig(config, 'euler', { hasRescaleZeroSnr: true, rejectUnsupported: true });
    this.finalSigmaType = readChoice(config, 'final_sigmas_type', ['zero', 'sigma_min'] as const, 'zero');
    const sMin = readNumber(config, 'sigma_min', Number.NaN);
    const sMax = readNumber(config, 'sigma_max', Number.NaN);
    this.sigmaMin = Number.isNaN(sMin) ? null : sMin;
    this.sigmaMax = Number.isNaN(sMax) ? null : sMax;
    this.state = new SigmaSteps(this.name, this.config.trainSigmas, this.config.spacing);
  }

  get timesteps(): Float64Array {
    return this.state.timesteps;
  }
  get sigmas(): Float64Array {
    return this.state.sigmas;
  }
  get initNoiseSigma(): number {
    return this.state.initNoiseSigma;
  }

  setTimesteps(numInferenceSteps: number): void {
    this.state.set(numInferenceSteps, (n) =>
      buildSigmaSchedule(this.config.trainSigmas, n, {
        spacing: this.config.spacing,
        stepsOffset: this.config.stepsOffset,
        float32Linspace: true,
        useKarrasSigmas: this.config.useKarrasSigmas,
        finalSigmaType: this.finalSigmaType,
        sigmaMin: this.sigmaMin,
        sigmaMax: this.sigmaMax,
      }),
    );
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return this.state.scaleModelInput(sample, timestep);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'euler step');
    const { sigmas, timesteps } = this.state;
    const idx = this.state.index(timestep);
    if (idx + 1 >= sigmas.length) throw new Error(`euler: step ${idx} is past the last timestep (${timesteps.length} steps)`);
    // s_churn = 0, so gamma = 0 and sigma_hat = sigma: no noise is added.
    const sigma = sigmas[idx];
    // 1. compute predicted original sample (x_0) from sigma-scaled predicted noise
    const predOriginal = predictOriginal(this.config.predictionType, modelOutput, sample, sigma);
    // 2. convert to an ODE derivative and take the Euler step
    const dt = sigmas[idx + 1] - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const derivative = (sample[i] - predOriginal[i]) / sigma;
      prevSample[i] = sample[i] + derivative * dt;
    }
    this.state.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
