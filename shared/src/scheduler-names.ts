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
  'dpmpp_2m_sde',
  'dpmpp_2m_sde_karras',
  'dpm2',
  'dpm2_karras',
  'dpm2_a',
  'dpm2_a_karras',
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
  KDPM2DiscreteScheduler: 'dpm2',
  KDPM2AncestralDiscreteScheduler: 'dpm2_a',
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
  // Stability AI's API sampler names (k-diffusion's functions)
  K_DPM_2: 'dpm2',
  K_DPM_2_ANCESTRAL: 'dpm2_a',
  // AUTOMATIC1111 sampler names
  'Euler a': 'euler_a',
  'Euler Ancestral': 'euler_a',
  'DPM++ 2M': 'dpmpp_2m',
  'DPM++ 2M Karras': 'dpmpp_2m_karras',
  'DPM++ 2M SDE': 'dpmpp_2m_sde',
  'DPM++ 2M SDE Karras': 'dpmpp_2m_sde_karras',
  DPM2: 'dpm2',
  'DPM2 Karras': 'dpm2_karras',
  'DPM2 a': 'dpm2_a',
  'DPM2 a Karras': 'dpm2_a_karras',
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
