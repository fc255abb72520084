// createScheduler: a scheduler by canonical name or alias, built from the model's scheduler_config.json the way
// diffusers' from_config builds another class from it (unknown keys ignored, missing keys take class defaults).
import { resolveSchedulerName, SCHEDULER_ALIASES, SCHEDULER_NAMES, type SchedulerName } from '@sd/shared/scheduler-names';
import { DdimScheduler } from './ddim.ts';
import { DdpmScheduler } from './ddpm.ts';
import { DpmSolverMultistepScheduler } from './dpm-solver-multistep.ts';
import { Dpm2Scheduler } from './dpm2.ts';
import { Dpm2AncestralScheduler } from './dpm2-ancestral.ts';
import { EulerScheduler } from './euler.ts';
import { EulerAncestralScheduler } from './euler-ancestral.ts';
import { HeunScheduler } from './heun.ts';
import { LcmScheduler } from './lcm.ts';
import { LmsScheduler } from './lms.ts';
import { PndmScheduler } from './pndm.ts';
import type { Scheduler, SchedulerConfig } from './scheduler.ts';
import { UniPcScheduler } from './unipc.ts';

export type { NoiseSource, Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';

const FACTORIES: Record<SchedulerName, (config: SchedulerConfig) => Scheduler> = {
  ddim: (c) => new DdimScheduler(c),
  // Stable Diffusion's own PNDM config sets skip_prk_steps; a PNDM built from another class's config (which lacks
  // the key) keeps the class default (false: Runge-Kutta warm-up), exactly as from_config would.
  pndm: (c) => new PndmScheduler(c),
  ddpm: (c) => new DdpmScheduler(c),
  euler: (c) => new EulerScheduler(c),
  euler_a: (c) => new EulerAncestralScheduler(c),
  heun: (c) => new HeunScheduler(c),
  lms: (c) => new LmsScheduler(c),
  // DPM++ 2M: dpmsolver++, order 2 (the class defaults; a model config's sde-dpmsolver++ does not leak into a request
  // for the deterministic sampler); the Karras variant forces Karras sigmas on.
  dpmpp_2m: (c) => new DpmSolverMultistepScheduler({ ...c, algorithm_type: 'dpmsolver++' }, 'dpmpp_2m'),
  dpmpp_2m_karras: (c) =>
    new DpmSolverMultistepScheduler({ ...c, algorithm_type: 'dpmsolver++', use_karras_sigmas: true }, 'dpmpp_2m_karras'),
  // DPM++ 2M SDE (A1111's name; diffusers' sde-dpmsolver++ at order 2): one generator draw per step.
  dpmpp_2m_sde: (c) => new DpmSolverMultistepScheduler({ ...c, algorithm_type: 'sde-dpmsolver++' }, 'dpmpp_2m_sde'),
  dpmpp_2m_sde_karras: (c) =>
    new DpmSolverMultistepScheduler({ ...c, algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true }, 'dpmpp_2m_sde_karras'),
  dpm2: (c) => new Dpm2Scheduler(c, 'dpm2'),
  dpm2_karras: (c) => new Dpm2Scheduler({ ...c, use_karras_sigmas: true }, 'dpm2_karras'),
  dpm2_a: (c) => new Dpm2AncestralScheduler(c, 'dpm2_a'),
  dpm2_a_karras: (c) => new Dpm2AncestralScheduler({ ...c, use_karras_sigmas: true }, 'dpm2_a_karras'),
  unipc: (c) => new UniPcScheduler(c),
  lcm: (c) => new LcmScheduler(c),
};

/** Builds a scheduler by canonical name or alias (see @sd/shared/scheduler-names) from a model's scheduler config. */
export function createScheduler(nameOrAlias: string, modelConfig: SchedulerConfig): Scheduler {
  const name = resolveSchedulerName(nameOrAlias);
  if (!name) {
    throw new Error(
      `unknown scheduler "${nameOrAlias}"; valid names: ${SCHEDULER_NAMES.join(', ')} (aliases: ${SCHEDULER_ALIASES.join(', ')})`,
    );
  }
  return FACTORIES[name](modelConfig);
}

/** The canonical name of the model's own scheduler, from its config's _class_name (e.g. PNDMScheduler -> pndm). */
export function schedulerNameFromConfig(config: SchedulerConfig): SchedulerName {
  const cls = config._class_name;
  if (typeof cls !== 'string') throw new Error(`scheduler config _class_name must be a string, got ${JSON.stringify(cls)}`);
  const name = resolveSchedulerName(cls);
  if (!name) throw new Error(`scheduler config _class_name "${cls}" is not a supported scheduler class`);
  const karras = config.use_karras_sigmas === true;
  if (name === 'dpmpp_2m') {
    const sde = config.algorithm_type === 'sde-dpmsolver++';
    if (sde) return karras ? 'dpmpp_2m_sde_karras' : 'dpmpp_2m_sde';
    return karras ? 'dpmpp_2m_karras' : 'dpmpp_2m';
  }
  if (name === 'dpm2' && karras) return 'dpm2_karras';
  if (name === 'dpm2_a' && karras) return 'dpm2_a_karras';
  return name;
}
