// Reads scheduler_config.json values the way diffusers' from_config does: keys a class lacks are never read,
// a missing (or null) key takes that class's default, and a present key of the wrong kind is an error naming it;
// plus the key groups several classes share (training schedule, spacing), each with the class's own defaults.

import { alphasCumprod, makeBetas } from './schedule.ts';
import type { SchedulerConfig } from './scheduler.ts';

export function readNumber(config: SchedulerConfig, key: string, fallback: number): number {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number' && !Number.isNaN(v)) return v;
  // diffusers writes non-finite floats as strings ("-inf") in some exports.
  if (v === 'inf' || v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-inf' || v === '-Infinity') return Number.NEGATIVE_INFINITY;
  throw new Error(`scheduler config ${key} must be a number, got ${JSON.stringify(v)}`);
}

export function readInteger(config: SchedulerConfig, key: string, fallback: number, min = 0): number {
  const v = readNumber(config, key, fallback);
  if (!Number.isInteger(v) || v < min) throw new Error(`scheduler config ${key} must be an integer >= ${min}, got ${v}`);
  return v;
}

export function readBoolean(config: SchedulerConfig, key: string, fallback: boolean): boolean {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'boolean') return v;
  throw new Error(`scheduler config ${key} must be true or false, got ${JSON.stringify(v)}`);
}

export function readChoice<T extends string>(config: SchedulerConfig, key: string, choices: readonly T[], fallback: T): T {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
  throw new Error(`scheduler config ${key} must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
}

export function readNumberList(config: SchedulerConfig, key: string): number[] | null {
  const v = config[key];
  if (v === undefined || v === null) return null;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
  throw new Error(`scheduler config ${key} must be a list of numbers or null, got ${JSON.stringify(v).slice(0, 80)}`);
}

export const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;
export type PredictionType = (typeof PREDICTION_TYPES)[number];
export const TIMESTEP_SPACINGS = ['leading', 'trailing', 'linspace'] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/** The training noise schedule keys every scheduler here shares; defaults differ per class. */
export interface BetaConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: string;
  trainedBetas: number[] | null;
  rescaleBetasZeroSnr: boolean;
}

export type BetaDefaults = { betaStart: number; betaEnd: number; betaSchedule: string };

export function readBetaConfig(
  config: SchedulerConfig,
  defaults: BetaDefaults,
  opts: { hasRescaleZeroSnr: boolean },
): BetaConfig {
  return {
    numTrainTimesteps: readInteger(config, 'num_train_timesteps', 1000, 1),
    betaStart: readNumber(config, 'beta_start', defaults.betaStart),
    betaEnd: readNumber(config, 'beta_end', defaults.betaEnd),
    betaSchedule: readChoice(
      config,
      'beta_schedule',
      ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'],
      defaults.betaSchedule as 'linear',
    ),
    trainedBetas: readNumberList(config, 'trained_betas'),
    rescaleBetasZeroSnr: opts.hasRescaleZeroSnr ? readBoolean(config, 'rescale_betas_zero_snr', false) : false,
  };
}

/** The class default of most schedulers here (DDPM's original linear schedule). */
export const LINEAR_BETAS: BetaDefaults = { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' };

/** The beta schedules every class here supports; DDPM adds sigmoid. */
export const BETA_SCHEDULES = ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const;

export interface AlphasCumprodOptions {
  /** beta_start / beta_end / beta_schedule class defaults (LINEAR_BETAS when absent). */
  betas?: BetaDefaults;
  hasRescaleZeroSnr: boolean;
  /** Sigma-based classes replace a zero final alpha_cumprod by 2**-24 so the first sigma is finite; DDIM-like ones keep 0. */
  clampZeroSnr?: boolean;
  betaSchedules?: readonly string[];
}

/** num_train_timesteps and alphas_cumprod of the training noise schedule a config describes. */
export function readAlphasCumprod(
  config: SchedulerConfig,
  opts: AlphasCumprodOptions,
): { numTrainTimesteps: number; alphasCumprod: Float64Array } {
  const beta = readBetaConfig(config, opts.betas ?? LINEAR_BETAS, { hasRescaleZeroSnr: opts.hasRescaleZeroSnr });
  const ac = alphasCumprod(makeBetas(beta, opts.betaSchedules ?? BETA_SCHEDULES));
  // Close to 0 without being 0 (the fp16 smallest subnormal, as diffusers).
  if (opts.clampZeroSnr && beta.rescaleBetasZeroSnr) ac[ac.length - 1] = 2 ** -24;
  return { numTrainTimesteps: beta.numTrainTimesteps, alphasCumprod: ac };
}

/** timestep_spacing (with the class default) and steps_offset. */
export function readSpacing(
  config: SchedulerConfig,
  fallback: TimestepSpacing,
): { spacing: TimestepSpacing; stepsOffset: number } {
  const spacing = readChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, fallback);
  return { spacing, stepsOffset: readInteger(config, 'steps_offset', 0) };
}

/** The alphas-based schedulers' (DDIM, DDPM, PNDM, LCM) shared config: training schedule, final alpha, prediction type. */
export interface DiscreteSchedule<P extends PredictionType> {
  numTrainTimesteps: number;
  alphasCumprod: Float64Array;
  /** alphas_cumprod "before" t = 0: 1 with set_alpha_to_one, else alphas_cumprod[0]. */
  finalAlphaCumprod: number;
  predictionType: P;
}

export function readDiscreteSchedule<P extends PredictionType>(
  config: SchedulerConfig,
  opts: AlphasCumprodOptions & {
    /** set_alpha_to_one's class default; null for a class without the key (final alpha 1). */
    setAlphaToOne: boolean | null;
    /** The prediction types the class accepts, its default first. */
    predictionTypes: readonly P[];
  },
): DiscreteSchedule<P> {
  const { numTrainTimesteps, alphasCumprod: ac } = readAlphasCumprod(config, opts);
  const alphaToOne = opts.setAlphaToOne === null || readBoolean(config, 'set_alpha_to_one', opts.setAlphaToOne);
  return {
    numTrainTimesteps,
    alphasCumprod: ac,
    finalAlphaCumprod: alphaToOne ? 1 : ac[0],
    predictionType: readChoice(config, 'prediction_type', opts.predictionTypes, opts.predictionTypes[0]),
  };
}
