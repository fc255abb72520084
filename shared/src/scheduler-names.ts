// Scheduler names: the canonical set, and the aliases users know from diffusers, Replicate and AUTOMATIC1111.

export const SCHEDULER_NAMES = [
  'ddim',
  'pndm',
  'ddpm',
  'euler',
  'euler_a',
  'heun',
  'lms',
  'dpmpp_2m',
  'dpmpp_2m_karras',
  'unipc',
  'lcm',
] as const;

export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** Aliases, matched case-insensitively after removing spaces, '_' and '-'. */
const ALIASES: Record<string, SchedulerName> = {
  // diffusers class names
  DDIMScheduler: 'ddim',
  PNDMScheduler: 'pndm',
  DDPMScheduler: 'ddpm',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler_a',
  HeunDiscreteScheduler: 'heun',
  LMSDiscreteScheduler: 'lms',
  DPMSolverMultistepScheduler: 'dpmpp_2m',
  UniPCMultistepScheduler: 'unipc',
  LCMScheduler: 'lcm',
  // Replicate's stable-diffusion models
  K_EULER: 'euler',
  K_EULER_ANCESTRAL: 'euler_a',
  KLMS: 'lms',
  K_LMS: 'lms',
  DPMSolverMultistep: 'dpmpp_2m',
  KarrasDPM: 'dpmpp_2m_karras',
  HeunDiscrete: 'heun',
  UniPCMultistep: 'unipc',
  // AUTOMATIC1111 sampler names
  'Euler a': 'euler_a',
  'Euler Ancestral': 'euler_a',
  'DPM++ 2M': 'dpmpp_2m',
  'DPM++ 2M Karras': 'dpmpp_2m_karras',
  PLMS: 'pndm',
};

const normalize = (s: string): string => s.toLowerCase().replace(/[\s_-]+/g, '');

const LOOKUP = new Map<string, SchedulerName>();
for (const name of SCHEDULER_NAMES) LOOKUP.set(normalize(name), name);
for (const [alias, name] of Object.entries(ALIASES)) LOOKUP.set(normalize(alias), name);

/** The canonical name for a scheduler name or alias, or null when it is unknown. */
export function resolveSchedulerName(input: string): SchedulerName | null {
  return LOOKUP.get(normalize(input)) ?? null;
}

/** Every accepted spelling, for error messages and the OpenAPI document. */
export const SCHEDULER_ALIASES: readonly string[] = Object.keys(ALIASES);
