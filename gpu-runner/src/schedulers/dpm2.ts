// DPM2 (k-diffusion's sample_dpm_2, Karras et al. 2022 Algorithm 2 without churn) as diffusers'
// KDPM2DiscreteScheduler: order 2, an Euler step to the interval's midpoint sigma, then a step from the start over the
// whole interval with the slope evaluated at the midpoint; the last interval (down to 0) is a plain Euler step.

import { buildKdpm2Schedule, scaleBySigmaFloat32 } from './kdpm2-schedule.ts';
import { assertSameLength } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readSigmaConfig, type SigmaConfig, SigmaSteps } from './sigma-steps.ts';

const f32 = Math.fround;

/** diffusers' KDPM2 classes default to the original linear betas over beta_start/end 0.00085 / 0.012. */
export const KDPM2_BETAS = { betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'linear' };

/** The config both KDPM2 classes read: their own default betas, epsilon or v-prediction (diffusers refuses "sample"). */
export function readKdpm2Config(config: SchedulerConfig, name: string): SigmaConfig<'epsilon' | 'v_prediction'> {
  return readSigmaConfig(config, name, {
    betas: KDPM2_BETAS,
    hasRescaleZeroSnr: false,
    predictionTypes: ['epsilon', 'v_prediction'] as const,
    rejectUnsupported: true,
  });
}

/** x0 = sample - sigma * eps (or the v-prediction form), each op in float32 as torch does it. */
export function kdpm2PredictOriginal(
  predictionType: 'epsilon' | 'v_prediction',
  modelOutput: Float32Array,
  sample: Float32Array,
  sigma: number,
): Float32Array {
  const out = new Float32Array(sample.length);
  if (predictionType === 'epsilon') {
    for (let i = 0; i < out.length; i++) out[i] = sample[i] - f32(sigma * modelOutput[i]);
  } else {
    const s2p1 = f32(f32(sigma * sigma) + 1);
    const cOut = f32(-sigma / f32(Math.sqrt(s2p1)));
    for (let i = 0; i < out.length; i++) out[i] = f32(modelOutput[i] * cOut) + f32(sample[i] / s2p1);
  }
  return out;
}

export class Dpm2Scheduler implements Scheduler {
  readonly order = 2;
  private readonly config;
  private readonly state: SigmaSteps;
  private sigmasInterpol: Float64Array = new Float64Array(0);
  /** The sample at the start of the interval, kept between the two evaluations (diffusers' self.sample). */
  private firstSample: Float32Array | null = null;

  constructor(
    config: SchedulerConfig,
    readonly name: string = 'dpm2',
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
        ancestral: false,
      });
      this.sigmasInterpol = s.sigmasInterpol;
      return s;
    });
    this.firstSample = null;
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const idx = this.state.index(timestep);
    const sigma = this.firstSample === null ? this.sigmas[idx] : this.sigmasInterpol[idx];
    return scaleBySigmaFloat32(sample, sigma);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, `${this.name} step`);
    if (this.timesteps.length === 0) throw new Error(`${this.name}: call setTimesteps before step`);
    const idx = this.state.index(timestep);
    if (idx >= this.timesteps.length)
      throw new Error(`${this.name}: step ${idx} is past the last timestep (${this.timesteps.length} entries)`);
    const firstOrder = this.firstSample === null;
    // 1. the interval: from sigma (at its start) to sigma_next, through the midpoint sigma_interpol
    const sigma = firstOrder ? this.sigmas[idx] : this.sigmas[idx - 1];
    const sigmaInterpol = firstOrder ? this.sigmasInterpol[idx + 1] : this.sigmasInterpol[idx];
    const sigmaNext = firstOrder ? this.sigmas[idx + 1] : this.sigmas[idx];
    // 2. compute predicted original sample (x_0) at the sigma the model was evaluated at
    const predOriginal = kdpm2PredictOriginal(
      this.config.predictionType,
      modelOutput,
      sample,
      firstOrder ? sigma : sigmaInterpol,
    );
    // 3. first evaluation: Euler step to the midpoint; second: the midpoint slope over the whole interval
    const slopeSigma = firstOrder ? sigma : sigmaInterpol;
    const dt = f32(firstOrder ? sigmaInterpol - sigma : sigmaNext - sigma);
    const start = firstOrder ? sample : (this.firstSample as Float32Array);
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const derivative = f32(f32(sample[i] - predOriginal[i]) / slopeSigma);
      prevSample[i] = start[i] + f32(derivative * dt);
    }
    // a copy: the caller may reuse its sample buffer before the second evaluation
    this.firstSample = firstOrder ? sample.slice() : null;
    this.state.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
