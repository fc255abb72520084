// AUTOMATIC1111's sampler and schedule-type names, mapped onto our schedulers through the shared alias table
// (shared/src/scheduler-names.ts), so a name the table learns becomes available here without a change.
import { resolveSchedulerName, type SchedulerName } from '@sd/shared/scheduler-names';

/** A1111's samplers (1.9+ names, in its order); only those the alias table resolves are offered. */
const A1111_SAMPLERS = [
  'DPM++ 2M',
  'DPM++ SDE',
  'DPM++ 2M SDE',
  'DPM++ 2M SDE Heun',
  'DPM++ 2S a',
  'DPM++ 3M SDE',
  'Euler a',
  'Euler',
  'LMS',
  'Heun',
  'DPM2',
  'DPM2 a',
  'DPM fast',
  'DPM adaptive',
  'Restart',
  'DDIM',
  'PLMS',
  'UniPC',
  'LCM',
] as const;

/** The schedule type A1111 picks for "Automatic" (its samplers' `scheduler` option); absent = the model's own sigmas. */
const AUTOMATIC_SCHEDULE: Readonly<Record<string, string>> = {
  'DPM++ 2M': 'Karras',
  'DPM++ SDE': 'Karras',
  'DPM++ 2M SDE': 'Exponential',
  'DPM++ 2M SDE Heun': 'Exponential',
  'DPM++ 3M SDE': 'Exponential',
  DPM2: 'Karras',
  'DPM2 a': 'Karras',
};

/** Samplers that step on the model's timesteps and ignore the schedule type in A1111 too. */
const TIMESTEP_SAMPLERS = new Set(['DDIM', 'PLMS', 'UniPC', 'LCM']);

/** A1111's schedule types that we can honour: Automatic, Uniform (the model's own sigmas) and Karras. */
export const A1111_SCHEDULES = [
  { name: 'automatic', label: 'Automatic', default_rho: -1 },
  { name: 'uniform', label: 'Uniform', default_rho: -1 },
  { name: 'karras', label: 'Karras', default_rho: 7 },
] as const;

const KNOWN_SCHEDULES: Readonly<Record<string, string>> = {
  automatic: 'Automatic',
  uniform: 'Uniform',
  karras: 'Karras',
  exponential: 'Exponential',
  polyexponential: 'Polyexponential',
  sgmuniform: 'SGM Uniform',
  kloptimal: 'KL Optimal',
  alignyoursteps: 'Align Your Steps',
  simple: 'Simple',
  normal: 'Normal',
  ddim: 'DDIM',
  beta: 'Beta',
};

const key = (s: string) => s.toLowerCase().replace(/[\s_-]+/g, '');

export interface SamplerChoice {
  scheduler: SchedulerName;
  /** A1111's canonical sampler label (e.g. "DPM++ 2M"), as its infotext writes it. */
  sampler: string;
  /** The schedule type that ran, as A1111 labels it ("Karras"), or null for the model's own. */
  schedule: string | null;
}

/** Why a sampler + schedule pair cannot run, naming the fields; null when it can. */
export type SamplerProblem = { field: 'sampler_name' | 'scheduler'; message: string };

function canonicalSampler(name: string): string {
  const k = key(name);
  return A1111_SAMPLERS.find((s) => key(s) === k) ?? name.trim();
}

/** The pairs that run here, for error messages: "Euler a (Automatic, Uniform)", "DPM++ 2M (Automatic, Uniform, Karras)". */
export function availableSamplers(): string[] {
  return listedSamplers().map((s) => {
    if (TIMESTEP_SAMPLERS.has(s.name)) return s.name;
    const schedules = ['Automatic', 'Uniform', 'Karras'].filter((sched) => resolvePair(s.name, sched) !== null);
    return `${s.name} (${schedules.join(', ')})`;
  });
}

/** GET /sdapi/v1/samplers: A1111's shape, only the samplers that resolve. */
export function listedSamplers(): { name: string; aliases: string[]; options: Record<string, string> }[] {
  const out: { name: string; aliases: string[]; options: Record<string, string> }[] = [];
  for (const name of A1111_SAMPLERS) {
    const auto = AUTOMATIC_SCHEDULE[name];
    const runs = (auto && resolveSchedulerName(`${name} ${auto}`)) || resolveSchedulerName(name);
    if (!runs) continue;
    out.push({ name, aliases: [], options: auto ? { scheduler: auto.toLowerCase() } : {} });
  }
  return out;
}

/** Our scheduler for a canonical A1111 sampler label and a schedule label, or null when the pair does not run here. */
function resolvePair(sampler: string, schedule: string): SamplerChoice | null {
  const pick = (candidate: string, ranSchedule: string | null): SamplerChoice | null => {
    const scheduler = resolveSchedulerName(candidate);
    return scheduler ? { scheduler, sampler, schedule: ranSchedule } : null;
  };
  // A legacy combined name ("DPM++ 2M Karras") carries its schedule in the name.
  const plain = () => pick(sampler, /\bkarras$/i.test(sampler) ? 'Karras' : null);
  if (TIMESTEP_SAMPLERS.has(sampler)) return plain();
  if (schedule === 'Automatic') {
    const auto = AUTOMATIC_SCHEDULE[sampler];
    return (auto ? pick(`${sampler} ${auto}`, auto) : null) ?? plain();
  }
  if (schedule === 'Uniform') return plain();
  return pick(`${sampler} ${schedule}`, schedule);
}

/**
 * Maps A1111's `sampler_name` (or legacy `sampler_index`, default "Euler") and `scheduler` (default "Automatic")
 * onto one of our schedulers. Legacy combined names ("DPM++ 2M Karras") work with the schedule left at Automatic.
 */
export function chooseSampler(
  samplerName: string | null | undefined,
  scheduleName: string | null | undefined,
): { ok: true; choice: SamplerChoice } | { ok: false; problem: SamplerProblem } {
  const sampler = canonicalSampler(samplerName?.trim() || 'Euler');
  const schedule = KNOWN_SCHEDULES[key(scheduleName?.trim() || 'Automatic')];
  if (!schedule) {
    return {
      ok: false,
      problem: {
        field: 'scheduler',
        message: `scheduler must be one of ${A1111_SCHEDULES.map((s) => s.label).join(', ')}, got ${JSON.stringify(scheduleName)}`,
      },
    };
  }
  const choice = resolvePair(sampler, schedule);
  if (choice) return { ok: true, choice };
  if (!resolvePair(sampler, 'Automatic') && !resolvePair(sampler, 'Uniform')) {
    const known = A1111_SAMPLERS.some((s) => s === sampler);
    return {
      ok: false,
      problem: {
        field: 'sampler_name',
        message: `sampler_name must be one of ${availableSamplers().join(', ')}, got ${JSON.stringify(samplerName ?? sampler)}${known ? ' (an AUTOMATIC1111 sampler this service does not implement)' : ''}`,
      },
    };
  }
  return {
    ok: false,
    problem: {
      field: 'scheduler',
      message: `scheduler ${JSON.stringify(scheduleName)} is not available with sampler_name ${JSON.stringify(sampler)}; available: ${availableSamplers().join(', ')}`,
    },
  };
}
