// Where a stateful scheduler is in its timesteps: diffusers' _step_index / _begin_index pair, set on first use from
// the begin index (img2img) or by looking the timestep up, and the index add_noise uses before and after that.
import { indexForTimestep } from './schedule.ts';

export interface TimestepLookup {
  /** Round the timestep to float32 before the lookup (the Euler family's float32 timesteps). */
  float32Timestep: boolean;
  /** A timestep not in the schedule maps to the last index instead of throwing (the multistep solvers). */
  fallbackToLast: boolean;
}

export class StepIndexTracker {
  private step: number | null = null;
  private begin: number | null = null;

  constructor(private readonly lookup: TimestepLookup) {}

  /** Forget the position (setTimesteps). */
  reset(): void {
    this.step = null;
    this.begin = null;
  }

  setBeginIndex(beginIndex: number): void {
    this.begin = beginIndex;
  }

  /** The current step index, initialised on first use (diffusers' _init_step_index). */
  index(timesteps: Float64Array, timestep: number): number {
    if (this.step === null) this.step = this.begin ?? this.find(timesteps, timestep);
    return this.step;
  }

  /** Move past the step index() returned; call once at the end of step(). */
  advance(): void {
    this.step = (this.step ?? 0) + 1;
  }

  /** add_noise's index: by timestep until img2img sets a begin index, then the current (or begin) index. */
  noiseIndex(timesteps: Float64Array, timestep: number): number {
    if (this.begin === null) return this.find(timesteps, timestep);
    return this.step ?? this.begin;
  }

  private find(timesteps: Float64Array, timestep: number): number {
    const t = this.lookup.float32Timestep ? Math.fround(timestep) : timestep;
    return indexForTimestep(timesteps, t, this.lookup.fallbackToLast);
  }
}
