// What the sigma-space schedulers (Euler, Euler ancestral, Heun, LMS, DPM2, DPM2 ancestral) share around their step
// math: the config they read, the timesteps and sigmas of the current schedule, where the loop is in them, and the
// k-diffusion scale_model_input and add_noise. diffusers copies this block into each of those classes; here it is
// written once and each scheduler keeps only its own step.
import { assertSameLength, checkSteps, trainingSigmas } from './schedule.ts';
import type { SchedulerConfig } from './scheduler.ts';
import {
  type BetaDefaults,
  PREDICTION_TYPES,
  type PredictionType,
  readAlphasCumprod,
  readBoolean,
  readChoice,
  readSpacing,
  type TimestepSpacing,
} from './scheduler-config.ts';
import {
  addNoiseSigma,
  initNoiseSigmaFor,
  rejectUnsupportedSigmaOptions,
  type SigmaSchedule,
  scaleBySigma,
  trainingSigmaSchedule,
} from './sigma-schedule.ts';
import { StepIndexTracker } from './step-index.ts';

export interface SigmaConfigOptions<P extends PredictionType> {
  /** The class's default training betas, when they differ from SD's scaled_linear ones (Heun, KDPM2). */
  betas?: BetaDefaults;
  /** The class has rescale_betas_zero_snr (Euler, Euler ancestral); with it the last alpha is clamped above 0. */
  hasRescaleZeroSnr: boolean;
  /** The prediction types the class implements (diffusers raises on the others). */
  predictionTypes?: readonly P[];
  /** use_exponential_sigmas / use_beta_sigmas / other interpolations are refused (the classes that have them). */
  rejectUnsupported: boolean;
}

export interface SigmaConfig<P extends PredictionType> {
  trainSigmas: Float64Array;
  predictionType: P;
  spacing: TimestepSpacing;
  stepsOffset: number;
  useKarrasSigmas: boolean;
}

/** The scheduler_config.json keys every sigma-space scheduler reads, with the class's defaults. */
export function readSigmaConfig<P extends PredictionType = PredictionType>(
  config: SchedulerConfig,
  name: string,
  opts: SigmaConfigOptions<P>,
): SigmaConfig<P> {
  if (opts.rejectUnsupported) rejectUnsupportedSigmaOptions(config, name);
  const { alphasCumprod } = readAlphasCumprod(config, {
    betas: opts.betas,
    hasRescaleZeroSnr: opts.hasRescaleZeroSnr,
    clampZeroSnr: opts.hasRescaleZeroSnr,
  });
  const types = (opts.predictionTypes ?? PREDICTION_TYPES) as readonly P[];
  const predictionType = readChoice(config, 'prediction_type', types, types[0]);
  const { spacing, stepsOffset } = readSpacing(config, 'linspace');
  const useKarrasSigmas = readBoolean(config, 'use_karras_sigmas', false);
  return { trainSigmas: trainingSigmas(alphasCumprod), predictionType, spacing, stepsOffset, useKarrasSigmas };
}

/** The current schedule of a sigma-space scheduler and the loop's position in it (diffusers' _step_index). */
export class SigmaSteps {
  timesteps: Float64Array = new Float64Array(0);
  /** Before setTimesteps: the full training schedule, as diffusers' constructor leaves it. */
  sigmas: Float64Array;
  initNoiseSigma: number;
  private readonly position = new StepIndexTracker({ float32Timestep: true, fallbackToLast: false });

  constructor(
    /** The scheduler's name, for messages. */
    private readonly name: string,
    readonly trainSigmas: Float64Array,
    private readonly spacing: TimestepSpacing,
  ) {
    this.sigmas = trainingSigmaSchedule(trainSigmas);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, spacing);
  }

  /** set_timesteps: refuses a step count the training schedule cannot give, then installs `build(n)`. */
  set(numInferenceSteps: number, build: (n: number) => SigmaSchedule): void {
    checkSteps(numInferenceSteps, this.trainSigmas.length);
    const schedule = build(numInferenceSteps);
    this.timesteps = schedule.timesteps;
    this.sigmas = schedule.sigmas;
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
    this.position.reset();
  }

  setBeginIndex(beginIndex: number): void {
    this.position.setBeginIndex(beginIndex);
  }

  /** The index of the current step (found from `timestep` on the first call). */
  index(timestep: number): number {
    return this.position.index(this.timesteps, timestep);
  }

  /** Past the current step; call once at the end of step(). */
  advance(): void {
    this.position.advance();
  }

  /** k-diffusion's input scaling at the current step: sample / sqrt(sigma^2 + 1). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.index(timestep)]);
  }

  /** add_noise: x0 + sigma(t) * noise, at the sigma add_noise's index rule picks (img2img's begin index once set). */
  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, `${this.name} addNoise`);
    return addNoiseSigma(originalSamples, noise, this.sigmas[this.position.noiseIndex(this.timesteps, timestep)]);
  }
}
