// Replays a scheduler golden (the shared/reference/schedulers format, also used by gpu-runner's own goldens in
// src/schedulers/goldens): the README's fake model, stored noise, and the scale-relative tolerance.
import { expect } from 'vitest';
import type { NoiseSource, Scheduler, SchedulerConfig } from '../../gpu-runner/src/schedulers/scheduler.ts';
import { maxAbs, maxAbsDiff, type RefTensor } from './reference.ts';

export interface GoldenStep {
  i: number;
  t: number;
  model_input: RefTensor;
  model_output: RefTensor;
  prev_sample: RefTensor;
  noise: RefTensor | null;
  pred_original_sample: RefTensor | null;
}
export interface Img2ImgEntry {
  strength: number;
  skipped?: boolean;
  t_start: number;
  begin_index: number | null;
  timesteps: { data: number[] };
  latent_timestep: number;
  image_latent: RefTensor;
  noise: RefTensor;
  noisy_latent: RefTensor;
  steps: GoldenStep[];
  final_latent: RefTensor;
}
export interface Golden {
  name: string;
  scheduler_class: string;
  config: SchedulerConfig;
  num_inference_steps: number;
  order: number;
  init_noise_sigma: number;
  timesteps: { dtype: string; data: number[] };
  sigmas: RefTensor | null;
  initial_latent: RefTensor;
  noise_seed: number;
  steps: GoldenStep[];
  final_latent: RefTensor;
  img2img: Img2ImgEntry[];
}

const f32 = Math.fround;
const F01 = f32(0.1);
export const GOLDEN_SHAPE = [1, 4, 8, 8];

/** The README's fake model: 0.1 * x + 0.01 * sin(t / 100), the scalar in float64 then float32, the rest in float32. */
export function fakeModel(input: Float32Array, t: number): Float32Array {
  const c = f32(0.01 * Math.sin(t / 100));
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = f32(f32(F01 * input[i]) + c);
  return out;
}

/** Replays the noise tensors diffusers actually drew, in order. */
export class StoredNoise implements NoiseSource {
  private queue: Float32Array[] = [];
  push(t: RefTensor | null): void {
    if (t) this.queue.push(Float32Array.from(t.data));
  }
  randn(): Float32Array {
    const next = this.queue.shift();
    if (!next) throw new Error('scheduler drew more noise than diffusers did');
    return next;
  }
}

/** k * max(1, max|ref|): the goldens' latents grow to |x| of 30-50, so tolerances scale with the reference. */
export const tol = (ref: ArrayLike<number>, k: number) => k * Math.max(1, maxAbs(ref));

export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-12));
  return m;
}

/**
 * Runs a loop driven by the fake model, checking each step's input and output against the stored ones. Noise comes
 * from `noise` when given (e.g. a seeded generator), else from the tensors the golden stored.
 */
export function runTrajectory(
  s: Scheduler,
  start: Float32Array,
  steps: GoldenStep[],
  finalRef: RefTensor,
  noise?: NoiseSource,
  k = 1e-4,
): void {
  const stored = new StoredNoise();
  let sample = start;
  for (const st of steps) {
    const input = s.scaleModelInput(sample, st.t);
    expect(maxAbsDiff(input, st.model_input.data)).toBeLessThanOrEqual(tol(st.model_input.data, k));
    stored.push(st.noise);
    sample = s.step(fakeModel(input, st.t), st.t, sample, { shape: GOLDEN_SHAPE, noise: noise ?? stored }).prevSample;
    expect(maxAbsDiff(sample, st.prev_sample.data)).toBeLessThanOrEqual(tol(st.prev_sample.data, k));
  }
  expect(maxAbsDiff(sample, finalRef.data)).toBeLessThanOrEqual(tol(finalRef.data, k));
}
