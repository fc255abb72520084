// Heun's method (Karras et al. 2022, Algorithm 1 without churn) as diffusers' HeunDiscreteScheduler: order 2, two
// model evaluations per sigma interval, so the timesteps repeat every entry after the first (2N-1 in all).

import { assertSameLength } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readBoolean, readNumber } from './scheduler-config.ts';
import { buildSigmaSchedule, predictOriginal } from './sigma-schedule.ts';
import { readSigmaConfig, SigmaSteps } from './sigma-steps.ts';

export class HeunScheduler implements Scheduler {
  readonly name = 'heun';
  readonly order = 2;
  private readonly config;
  private readonly clipSample: boolean;
  private readonly clipSampleRange: number;
  private readonly state: SigmaSteps;
  // First-order state carried into the correction evaluation.
  private prevDerivative: Float64Array | null = null;
  private dt: number | null = null;
  private firstSample: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    const betas = { betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'linear' };
    this.config = readSigmaConfig(config, 'heun', { betas, hasRescaleZeroSnr: false, rejectUnsupported: true });
    this.clipSample = readBoolean(config, 'clip_sample', false);
    this.clipSampleRange = readNumber(config, 'clip_sample_range', 1);
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
    this.state.set(numInferenceSteps, (n) => {
      const s = buildSigmaSchedule(this.config.trainSigmas, n, {
        spacing: this.config.spacing,
        stepsOffset: this.config.stepsOffset,
        float32Linspace: true,
        useKarrasSigmas: this.config.useKarrasSigmas,
        finalSigmaType: 'zero',
      });
      // sigmas [s0, s1, s1, s2, s2, ..., 0] and timesteps [t0, t1, t1, t2, t2, ...]
      const sigmas = [s.sigmas[0]];
      for (let i = 1; i < s.sigmas.length - 1; i++) sigmas.push(s.sigmas[i], s.sigmas[i]);
      sigmas.push(s.sigmas[s.sigmas.length - 1]);
      const timesteps = [s.timesteps[0]];
      for (let i = 1; i < s.timesteps.length; i++) timesteps.push(s.timesteps[i], s.timesteps[i]);
      return { sigmas: Float64Array.from(sigmas), timesteps: Float64Array.from(timesteps) };
    });
    this.prevDerivative = null;
    this.dt = null;
    this.firstSample = null;
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return this.state.scaleModelInput(sample, timestep);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'heun step');
    const idx = this.state.index(timestep);
    if (idx + 1 >= this.sigmas.length)
      throw new Error(`heun: step ${idx} is past the last timestep (${this.timesteps.length} entries)`);
    const firstOrder = this.dt === null;
    const sigma = firstOrder ? this.sigmas[idx] : this.sigmas[idx - 1];
    const sigmaNext = firstOrder ? this.sigmas[idx + 1] : this.sigmas[idx];
    // 1. compute predicted original sample (x_0), at sigma_hat (= sigma) or at sigma_next for the correction
    const predOriginal = predictOriginal(this.config.predictionType, modelOutput, sample, firstOrder ? sigma : sigmaNext);
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
    this.state.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
