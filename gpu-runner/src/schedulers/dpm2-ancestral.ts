// DPM2 ancestral (k-diffusion's sample_dpm_2_ancestral) as diffusers' KDPM2AncestralDiscreteScheduler: DPM2 aimed at
// sigma_down instead of the next sigma, then fresh noise of size sigma_up from the generator after the second
// evaluation of each interval (one draw per interval, none on the first evaluation).

import { kdpm2PredictOriginal, readKdpm2Config } from './dpm2.ts';
import { buildKdpm2Schedule, scaleBySigmaFloat32 } from './kdpm2-schedule.ts';
import { assertSameLength, drawNoise } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { SigmaSteps } from './sigma-steps.ts';

const f32 = Math.fround;

export class Dpm2AncestralScheduler implements Scheduler {
  readonly order = 2;
  private readonly config;
  private readonly state: SigmaSteps;
  private sigmasInterpol: Float64Array = new Float64Array(0);
  private sigmasUp: Float64Array = new Float64Array(0);
  private sigmasDown: Float64Array = new Float64Array(0);
  /** The sample at the start of the interval, kept between the two evaluations (diffusers' self.sample). */
  private firstSample: Float32Array | null = null;

  constructor(
    config: SchedulerConfig,
    readonly name: string = 'dpm2_a',
  ) {
    this.config = readKdpm2Config(config, name);
    this.state = new SigmaSteps(name, this.config.trainSigmas, this.config.spacing);
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
      const s = buildKdpm2Schedule(this.config.trainSigmas, n, {
        spacing: this.config.spacing,
        stepsOffset: this.config.stepsOffset,
        useKarrasSigmas: this.config.useKarrasSigmas,
        ancestral: true,
      });
      this.sigmasInterpol = s.sigmasInterpol;
      this.sigmasUp = s.sigmasUp ?? new Float64Array(0);
      this.sigmasDown = s.sigmasDown ?? new Float64Array(0);
      return s;
    });
    this.firstSample = null;
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const idx = this.state.index(timestep);
    const sigma = this.firstSample === null ? this.sigmas[idx] : this.sigmasInterpol[idx - 1];
    return scaleBySigmaFloat32(sample, sigma);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, `${this.name} step`);
    if (this.timesteps.length === 0) throw new Error(`${this.name}: call setTimesteps before step`);
    const idx = this.state.index(timestep);
    if (idx >= this.timesteps.length)
      throw new Error(`${this.name}: step ${idx} is past the last timestep (${this.timesteps.length} entries)`);
    const firstOrder = this.firstSample === null;
    // 1. the interval: from sigma through the midpoint sigma_interpol to sigma_down, plus sigma_up of fresh noise
    const sigma = firstOrder ? this.sigmas[idx] : this.sigmas[idx - 1];
    const sigmaInterpol = firstOrder ? this.sigmasInterpol[idx] : this.sigmasInterpol[idx - 1];
    const sigmaUp = firstOrder ? this.sigmasUp[idx] : this.sigmasUp[idx - 1];
    const sigmaDown = this.sigmasDown[idx === 0 ? this.sigmasDown.length - 1 : idx - 1];
    // 2. compute predicted original sample (x_0) at the sigma the model was evaluated at
    const predOriginal = kdpm2PredictOriginal(
      this.config.predictionType,
      modelOutput,
      sample,
      firstOrder ? sigma : sigmaInterpol,
    );
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
    this.state.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
