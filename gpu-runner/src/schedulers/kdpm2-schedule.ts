// The interleaved schedule of diffusers' KDPM2 schedulers (DPM2 and DPM2 ancestral): each sigma interval gets a
// midpoint sigma (the geometric mean, via torch's float32 lerp of logs), and timesteps alternate t_i, t(midpoint).
// Every array op follows torch's float32 order, so the timesteps the pipeline hands to the UNet match diffusers'.

import { float32Logs } from './schedule.ts';
import type { TimestepSpacing } from './scheduler-config.ts';
import { buildSigmaSchedule } from './sigma-schedule.ts';

const f32 = Math.fround;

/** torch.lerp(start, end, 0.5) on float32 (weight >= 0.5 takes the `end - (end - start) * (1 - w)` branch). */
function lerpHalf(start: number, end: number): number {
  return f32(end - f32(f32(end - start) * 0.5));
}

/** exp(lerp(log a, log b, 0.5)) in float32: the geometric mean; NaN when a log is -inf from both sides. */
function logMidpoint(a: number, b: number): number {
  return f32(Math.exp(lerpHalf(f32(Math.log(a)), f32(Math.log(b)))));
}

/**
 * diffusers' _sigma_to_t as KDPM2 calls it on torch tensors for the midpoints. np.maximum on a float32 tensor returns
 * a float64 one, so log_sigma is float64; every later op meets a float32 tensor and rounds to float32.
 */
function sigmaToTFloat32(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // low_idx: the last index with float32(log_sigma - log_sigmas[i]) >= 0 (cumsum(dists >= 0).argmax), clipped to n - 2.
  let low = 0;
  for (let i = 0; i < n; i++) if (f32(logSigma - logSigmas[i]) >= 0) low = i;
  low = Math.min(low, n - 2);
  const lowV = logSigmas[low];
  const highV = logSigmas[low + 1];
  let w = f32(f32(lowV - logSigma) / f32(lowV - highV));
  w = Math.min(1, Math.max(0, w));
  return f32(f32(f32(1 - w) * low) + f32(w * (low + 1)));
}

/** [a0, a1, a1, a2, a2, ..., aN, aN]: torch.cat([a[:1], a[1:].repeat_interleave(2), a[-1:]]) */
function repeatInterleaved(a: number[]): Float64Array {
  const out = [a[0]];
  for (let i = 1; i < a.length; i++) out.push(a[i], a[i]);
  out.push(a[a.length - 1]);
  return Float64Array.from(out);
}

export interface Kdpm2Schedule {
  /** 2N-1 entries: t0, then (midpoint, t_i) pairs. float32 values (float64 integers with Karras, as diffusers). */
  timesteps: Float64Array;
  /** 2N+2 entries: sigmas with the trailing 0, repeat-interleaved as diffusers stores them. */
  sigmas: Float64Array;
  /** The midpoint sigmas, interleaved the same way (entry 0 is NaN for DPM2, as upstream; it is never read). */
  sigmasInterpol: Float64Array;
  /** Ancestral only: the noise size and the deterministic target of each interval, interleaved. */
  sigmasUp: Float64Array | null;
  sigmasDown: Float64Array | null;
}

export interface Kdpm2ScheduleOptions {
  spacing: TimestepSpacing;
  stepsOffset: number;
  useKarrasSigmas: boolean;
  ancestral: boolean;
}

export function buildKdpm2Schedule(trainSigmas: Float64Array, n: number, opts: Kdpm2ScheduleOptions): Kdpm2Schedule {
  const base = buildSigmaSchedule(trainSigmas, n, {
    spacing: opts.spacing,
    stepsOffset: opts.stepsOffset,
    float32Linspace: true,
    useKarrasSigmas: opts.useKarrasSigmas,
    finalSigmaType: 'zero',
    // KDPM2 rounds the Karras timesteps to integers (Euler keeps them fractional).
    roundKarrasTimesteps: true,
  });
  const sigmas = Array.from(base.sigmas); // n + 1, float32 values, last 0
  const logSigmas = float32Logs(trainSigmas);
  let interpol: number[];
  let up: number[] | null = null;
  let down: number[] | null = null;
  if (opts.ancestral) {
    // sigmas_next = roll(-1) with a 0 last; up/down split of each interval as in Euler ancestral, in float32.
    const next = sigmas.map((_, i) => (i + 1 < sigmas.length ? sigmas[i + 1] : 0));
    const u = sigmas.map((s, i) => {
      const sn2 = f32(next[i] * next[i]);
      const s2 = f32(s * s);
      return f32(Math.sqrt(f32(f32(sn2 * f32(s2 - sn2)) / s2)));
    });
    const d = sigmas.map((_, i) =>
      i === sigmas.length - 1 ? 0 : f32(Math.sqrt(f32(f32(next[i] * next[i]) - f32(u[i] * u[i])))),
    );
    up = u;
    down = d;
    interpol = sigmas.map((s, i) => (i >= sigmas.length - 2 ? 0 : logMidpoint(s, d[i])));
  } else {
    // midpoint of (sigma_{i-1}, sigma_i): lerp(log sigmas, log sigmas.roll(1), 0.5)
    interpol = sigmas.map((s, i) => {
      const prev = sigmas[(i - 1 + sigmas.length) % sigmas.length];
      return f32(Math.exp(lerpHalf(f32(Math.log(s)), f32(Math.log(prev)))));
    });
  }
  const tInterpol = interpol.map((s) => sigmaToTFloat32(s, logSigmas));
  const ts = Array.from(base.timesteps);
  // DPM2 pairs midpoint i (between sigma_{i-1} and sigma_i) with t_i; DPM2 a pairs midpoint i-1 (its interval's).
  const mids = opts.ancestral ? tInterpol.slice(0, -2) : tInterpol.slice(1, -1);
  const timesteps = [ts[0]];
  for (let i = 1; i < ts.length; i++) timesteps.push(mids[i - 1], ts[i]);
  return {
    timesteps: Float64Array.from(timesteps),
    sigmas: repeatInterleaved(sigmas),
    sigmasInterpol: repeatInterleaved(interpol),
    sigmasUp: up ? repeatInterleaved(up) : null,
    sigmasDown: down ? repeatInterleaved(down) : null,
  };
}

/** KDPM2's scale_model_input: sample / sqrt(sigma^2 + 1), each op in float32 as torch does it. */
export function scaleBySigmaFloat32(sample: Float32Array, sigma: number): Float32Array {
  const denom = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
  const out = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) out[i] = sample[i] / denom;
  return out;
}
