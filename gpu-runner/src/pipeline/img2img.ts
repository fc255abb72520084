// img2img: the strength cut of the timesteps exactly as diffusers' get_timesteps, and the noised start latents.
import type { Scheduler } from '../schedulers/scheduler.ts';

export interface StrengthCut {
  timesteps: number[];
  /** Index into the scheduler's timesteps where the loop starts (t_start * order). */
  beginIndex: number;
  /** The denoising steps that run: init_timestep = min(int(N * strength), N). */
  steps: number;
}

/**
 * diffusers StableDiffusionImg2ImgPipeline.get_timesteps: init_timestep = min(int(N * strength), N),
 * t_start = max(N - init_timestep, 0), timesteps[t_start * order:], and set_begin_index(t_start * order).
 * Call after scheduler.setTimesteps(N).
 */
export function cutTimesteps(scheduler: Scheduler, numInferenceSteps: number, strength: number): StrengthCut {
  const initTimestep = Math.min(Math.trunc(numInferenceSteps * strength), numInferenceSteps);
  const tStart = Math.max(numInferenceSteps - initTimestep, 0);
  const beginIndex = tStart * scheduler.order;
  const timesteps = Array.from(scheduler.timesteps.subarray(beginIndex));
  scheduler.setBeginIndex(beginIndex);
  return { timesteps, beginIndex, steps: initTimestep };
}
