// The one interface every scheduler implements (the diffusers SchedulerMixin surface, in TypeScript).
// Tensors are flat row-major Float32Arrays of the latents' shape; the scheduler never sees a batch of CFG pairs.

import type { NoiseSource } from '../random/noise-source.ts';

export type { NoiseSource };

export interface StepContext {
  /** Shape of `sample` and `modelOutput`, e.g. [1, 4, 64, 64]. */
  shape: readonly number[];
  /** Needed only by stochastic schedulers (euler_a, ddpm, lcm, ...). */
  noise?: NoiseSource;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The x0 prediction, where the algorithm computes one. */
  predOriginalSample?: Float32Array;
}

export interface Scheduler {
  /** Canonical name (see SCHEDULER_NAMES in @sd/shared/scheduler-names). */
  readonly name: string;
  /** diffusers' `order`: how many timesteps each sampler step consumes (Heun: 2). img2img cuts `t_start * order`. */
  readonly order: number;
  /** Multiplier for the initial noise (1 for DDIM/PNDM; sigma_max-derived for the Euler family). */
  readonly initNoiseSigma: number;
  /** Timesteps of the last setTimesteps call, in the order the loop visits them (float for the Euler family). */
  readonly timesteps: Float64Array;
  /** Full sigma array including the trailing 0, for sigma-based schedulers; null otherwise. */
  readonly sigmas: Float64Array | null;
  setTimesteps(numInferenceSteps: number): void;
  /** img2img: where the loop starts in `timesteps` (diffusers' set_begin_index); no-op for schedulers without it. */
  setBeginIndex(beginIndex: number): void;
  /** Returns the model input for timestep t (may return `sample` itself when no scaling applies). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult;
  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array;
}

/** scheduler/scheduler_config.json as diffusers writes it; keys a scheduler lacks are ignored. */
export type SchedulerConfig = Record<string, unknown>;
