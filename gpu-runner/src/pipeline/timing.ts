// Wall and CPU time of one stage of a generation, measured the same way for every stage.
import { processCpuMs } from '../model/onnx-session.ts';

export interface Timed<T> {
  value: T;
  wallMs: number;
  /** Process CPU time (all threads): time stolen by other processes does not inflate it. */
  cpuMs: number;
}

/** Runs `work` and measures it; the clock pair is read once before and once after, never hand-paired by callers. */
export async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const wallStart = performance.now();
  const cpuStart = processCpuMs();
  const value = await work();
  return { value, wallMs: performance.now() - wallStart, cpuMs: processCpuMs() - cpuStart };
}

/** A clock started now: `elapsed()` is the wall and CPU time since. */
export function startClock(): { elapsed(): { wallMs: number; cpuMs: number } } {
  const wallStart = performance.now();
  const cpuStart = processCpuMs();
  return { elapsed: () => ({ wallMs: performance.now() - wallStart, cpuMs: processCpuMs() - cpuStart }) };
}
