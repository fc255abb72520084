// Reads scheduler_config.json values the way diffusers' from_config does: keys a class lacks are never read,
// a missing (or null) key takes that class's default, and a present key of the wrong kind is an error naming it.
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

export function readBetaConfig(
  config: SchedulerConfig,
  defaults: { betaStart: number; betaEnd: number; betaSchedule: string },
  opts: { hasRescaleZeroSnr: boolean },
): BetaConfig {
  return {
    numTrainTimesteps: readInteger(config, 'num_train_timesteps', 1000, 1),
    betaStart: readNumber(config, 'beta_start', defaults.betaStart),
    betaEnd: readNumber(config, 'beta_end', defaults.betaEnd),
    betaSchedule: readChoice(config, 'beta_schedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'], defaults.betaSchedule as 'linear'),
    trainedBetas: readNumberList(config, 'trained_betas'),
    rescaleBetasZeroSnr: opts.hasRescaleZeroSnr ? readBoolean(config, 'rescale_betas_zero_snr', false) : false,
  };
}
