// The pure math every scheduler builds on: training beta schedules, alphas_cumprod, timestep spacing, sigma
// interpolation and Karras sigmas. Each reproduces the float32/float64 mix diffusers uses, so timesteps match exactly.
import type { BetaConfig, TimestepSpacing } from './scheduler-config.ts';

const f32 = Math.fround;

/**
 * torch.linspace(start, end, n, dtype=float32) on the CPU: float32 step, filled from both ends. torch's AVX2 kernel
 * writes blocks of 16 as two 8-lane aranges, base = fma(step, i0, start) and lane j = fma(j, step, base), then the
 * remainder one by one (also fused); each fused op rounds once. This reproduces the SD betas of the reference bit for
 * bit (a plain start + step * i is 1 ulp off in 272 of those 1000 values).
 */
export function linspaceFloat32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  // step * k is exact in float64 for the k here (24-bit mantissa times < 2^29), so f32(x + step * k) is one fused op.
  const at = (i: number) => (i < half ? f32(s + step * i) : f32(e - step * (n - i - 1)));
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    for (const i0 of [i, i + 8]) {
      const base = at(i0);
      for (let j = 0; j < 8; j++) out[i0 + j] = f32(base + j * step);
    }
  }
  for (; i < n; i++) out[i] = at(i);
  return out;
}

/** numpy.linspace(start, end, n) in float64 (endpoint included). */
export function linspace(start: number, end: number, n: number, endpoint = true): Float64Array {
  const out = new Float64Array(n);
  const div = endpoint ? n - 1 : n;
  const step = div > 0 ? (end - start) / div : 0;
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  if (endpoint && n > 1) out[n - 1] = end;
  return out;
}

/** diffusers' betas_for_alpha_bar with the cosine ("squaredcos_cap_v2") transform, computed in float64. */
function cosineBetas(n: number, maxBeta = 0.999): Float64Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f32(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta));
  return out;
}

/** Zero terminal SNR rescale (Lin et al. 2023, Algorithm 1), on float32 betas. */
function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const sqrtAc = new Float64Array(n);
  let p = 1;
  for (let i = 0; i < n; i++) {
    p *= f32(1 - betas[i]);
    sqrtAc[i] = f32(Math.sqrt(f32(p)));
  }
  const first = sqrtAc[0];
  const last = sqrtAc[n - 1];
  const scale = f32(first / (first - last));
  const acBar = new Float64Array(n);
  for (let i = 0; i < n; i++) acBar[i] = f32(f32(f32(sqrtAc[i] - last) * scale) ** 2);
  const out = new Float64Array(n);
  out[0] = f32(1 - acBar[0]);
  for (let i = 1; i < n; i++) out[i] = f32(1 - f32(acBar[i] / acBar[i - 1]));
  return out;
}

/** The training betas (float32 values) for a config, honouring trained_betas first as diffusers does. */
export function makeBetas(cfg: BetaConfig, allowed: readonly string[]): Float64Array {
  let betas: Float64Array;
  const n = cfg.numTrainTimesteps;
  if (cfg.trainedBetas) {
    betas = Float64Array.from(cfg.trainedBetas, f32);
  } else if (!allowed.includes(cfg.betaSchedule)) {
    throw new Error(`scheduler config beta_schedule must be one of ${allowed.join(', ')}, got "${cfg.betaSchedule}"`);
  } else if (cfg.betaSchedule === 'linear') {
    betas = linspaceFloat32(cfg.betaStart, cfg.betaEnd, n);
  } else if (cfg.betaSchedule === 'scaled_linear') {
    // Specific to latent diffusion: linear in sqrt(beta).
    betas = linspaceFloat32(Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd), n).map((x) => f32(x * x));
  } else if (cfg.betaSchedule === 'squaredcos_cap_v2') {
    betas = cosineBetas(n);
  } else {
    // "sigmoid" (DDPM only): sigmoid(linspace(-6, 6)) scaled into [beta_start, beta_end].
    betas = linspaceFloat32(-6, 6, n).map((x) =>
      f32(f32(1 / (1 + Math.exp(-x))) * f32(cfg.betaEnd - cfg.betaStart) + cfg.betaStart),
    );
  }
  if (betas.length !== n) {
    throw new Error(`scheduler config trained_betas must have num_train_timesteps (${n}) entries, got ${betas.length}`);
  }
  return cfg.rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** torch.cumprod(1 - betas) in float32 (torch accumulates the product in double and rounds each output). */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let p = 1;
  for (let i = 0; i < betas.length; i++) {
    p *= f32(1 - betas[i]);
    out[i] = f32(p);
  }
  return out;
}

/** The training-schedule sigmas sqrt((1 - a) / a), each op in float32 as torch computes them. */
export function trainingSigmas(alphasCumprod: Float64Array): Float64Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** numpy.interp(x, [0..n-1], ys) for x in range (clamped at the ends, as numpy does). */
export function interpAtIndex(x: number, ys: Float64Array): number {
  if (x <= 0) return ys[0];
  const last = ys.length - 1;
  if (x >= last) return ys[last];
  const i = Math.floor(x);
  const w = x - i;
  return ys[i] + (ys[i + 1] - ys[i]) * w;
}

/** Python's round() on floats (numpy .round()): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.arange(start, stop, step) with a negative float step (trailing spacing). */
function arangeDown(start: number, stop: number, step: number): number[] {
  const count = Math.max(0, Math.ceil((stop - start) / step));
  return Array.from({ length: count }, (_, i) => start + i * step);
}

/**
 * Integer timesteps of the DDIM family (DDIM, DDPM): linspace | leading (+steps_offset) | trailing, descending.
 * Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed" (Lin et al. 2023).
 */
export function discreteTimesteps(spacing: TimestepSpacing, train: number, n: number, stepsOffset: number): number[] {
  if (spacing === 'linspace') return Array.from(linspace(0, train - 1, n), roundHalfEven).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(train / n);
    return Array.from({ length: n }, (_, i) => i * ratio + stepsOffset).reverse();
  }
  return arangeDown(train, 0, -train / n).map((t) => roundHalfEven(t) - 1);
}

/**
 * Timesteps of the sigma-based schedulers (Euler, Euler ancestral, Heun, LMS), descending floats. linspace keeps
 * fractional values (rounded to float32 when `float32Linspace`, as those classes build them with dtype float32).
 */
export function sigmaTimesteps(
  spacing: TimestepSpacing,
  train: number,
  n: number,
  stepsOffset: number,
  float32Linspace: boolean,
): number[] {
  if (spacing === 'linspace') {
    const ts = Array.from(linspace(0, train - 1, n)).reverse();
    return float32Linspace ? ts.map(f32) : ts;
  }
  if (spacing === 'leading') {
    const ratio = Math.floor(train / n);
    return Array.from({ length: n }, (_, i) => i * ratio + stepsOffset).reverse();
  }
  return arangeDown(train, 0, -train / n).map((t) => roundHalfEven(t) - 1);
}

/**
 * Integer timesteps of the multistep solvers (DPM-Solver, UniPC): linspace over n+1 points dropping the last,
 * leading with ratio last // (n+1), trailing as above. `last` is num_train_timesteps minus any lambda clipping.
 */
export function multistepTimesteps(
  spacing: TimestepSpacing,
  train: number,
  last: number,
  n: number,
  stepsOffset: number,
): number[] {
  if (spacing === 'linspace')
    return Array.from(linspace(0, last - 1, n + 1), roundHalfEven)
      .reverse()
      .slice(0, n);
  if (spacing === 'leading') {
    const ratio = Math.floor(last / (n + 1));
    return Array.from({ length: n + 1 }, (_, i) => i * ratio)
      .reverse()
      .slice(0, n)
      .map((t) => t + stepsOffset);
  }
  return arangeDown(last, 0, -train / n).map((t) => roundHalfEven(t) - 1);
}

/** Karras et al. (2022) eq. 5 with rho = 7, from sigma_max down to sigma_min, in float64. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): Float64Array {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const ramp = linspace(0, 1, n);
  return ramp.map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/**
 * diffusers' _sigma_to_t: the fractional training timestep whose sigma is `sigma`, by linear interpolation in log
 * sigma. `logSigmas` are float32 logs of the training sigmas (numpy takes log of a float32 array in float32).
 */
export function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // low_idx: the last index whose log sigma is <= log_sigma (cumsum(dists >= 0).argmax), clipped to n - 2.
  let count = 0;
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i] >= 0) count++;
  let low = 0;
  if (count > 0) {
    // argmax of the cumulative count is the first index reaching its maximum, i.e. the last index with dist >= 0.
    let seen = 0;
    for (let i = 0; i < n; i++) {
      if (logSigma - logSigmas[i] >= 0) seen++;
      if (seen === count) {
        low = i;
        break;
      }
    }
  }
  low = Math.min(low, n - 2);
  const high = low + 1;
  let w = (logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[high]);
  w = Math.min(1, Math.max(0, w));
  return (1 - w) * low + w * high;
}

export function float32Logs(values: Float64Array): Float64Array {
  return values.map((v) => f32(Math.log(v)));
}

/** num_inference_steps as set_timesteps accepts it: an integer in [1, num_train_timesteps]. */
export function checkSteps(n: number, train: number): void {
  if (!Number.isInteger(n) || n < 1 || n > train) {
    throw new Error(`num_inference_steps must be an integer between 1 and num_train_timesteps (${train}), got ${n}`);
  }
}

/** Index of `timestep` in `schedule`; the second match when it repeats (diffusers' index_for_timestep). */
export function indexForTimestep(schedule: Float64Array, timestep: number, fallbackToLast = false): number {
  const hits: number[] = [];
  for (let i = 0; i < schedule.length && hits.length < 2; i++) if (schedule[i] === timestep) hits.push(i);
  if (hits.length === 0) {
    if (fallbackToLast) return schedule.length - 1;
    throw new Error(
      `timestep ${timestep} is not in the scheduler's timesteps [${Array.from(schedule.slice(0, 8)).join(', ')}${schedule.length > 8 ? ', ...' : ''}]`,
    );
  }
  return hits.length > 1 ? hits[1] : hits[0];
}

/** alpha_t and sigma_t of the VP process for a given sigma (k-diffusion form). */
export function alphaSigmaFromSigma(sigma: number): { alpha: number; sigmaT: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, sigmaT: sigma * alpha };
}

/** alphas_cumprod[t] for an integer timestep, with the final value for t < 0 (DDIM/PNDM/LCM "previous" step). */
export function alphaProdAt(alphasCumprod: Float64Array, t: number, finalAlphaCumprod: number): number {
  return t >= 0 ? alphasCumprod[t] : finalAlphaCumprod;
}

/** DDPM-style forward noising: sqrt(a_t) * x0 + sqrt(1 - a_t) * noise. */
export function addNoiseVp(x0: Float32Array, noise: Float32Array, alphaProd: number): Float32Array {
  const a = Math.sqrt(alphaProd);
  const b = Math.sqrt(1 - alphaProd);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = a * x0[i] + b * noise[i];
  return out;
}

export function assertSameLength(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: tensor sizes differ (${a.length} vs ${b.length})`);
}

/** A stochastic step's noise, drawn from the context's source; the error names the scheduler that needs it. */
export function drawNoise(
  name: string,
  ctx: { shape: readonly number[]; noise?: { randn(shape: readonly number[]): Float32Array } },
  size: number,
): Float32Array {
  if (!ctx.noise) throw new Error(`scheduler ${name} is stochastic: step() needs ctx.noise`);
  const n = ctx.noise.randn(ctx.shape);
  if (n.length !== size) throw new Error(`scheduler ${name}: noise has ${n.length} elements, sample has ${size}`);
  return n;
}
