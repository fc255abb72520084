// UniPC (Zhao et al. 2023) as diffusers' UniPCMultistepScheduler defaults: predict_x0, B(h) = bh2, solver_order 2,
// lower_order_final; each step first corrects the previous step's result (UniC), then predicts the next (UniP).

import { convertToX0, lambdaOf, type MultistepConfig, MultistepSteps, readMultistepConfig } from './multistep.ts';
import { alphaSigmaFromSigma, assertSameLength } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readBoolean, readChoice } from './scheduler-config.ts';
import { clipOrThreshold } from './thresholding.ts';

/** Solves the small dense system A x = b (Gaussian elimination with partial pivoting). */
export function solveLinear(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = c + 1; r < n; r++) {
      const k = m[r][c] / m[c][c];
      for (let j = c; j <= n; j++) m[r][j] -= k * m[c][j];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let j = r + 1; j < n; j++) s -= m[r][j] * x[j];
    x[r] = s / m[r][r];
  }
  return x;
}

/** The R matrix rows (rks^(i-1)) and b vector of UniPC's order conditions, with h_phi_1 and B(h). */
function orderConditions(
  rks: number[],
  hh: number,
  order: number,
  bh1: boolean,
): { R: number[][]; b: number[]; hPhi1: number; bH: number } {
  const hPhi1 = Math.expm1(hh); // h * phi_1(h) = e^h - 1
  let hPhiK = hPhi1 / hh - 1;
  let factorial = 1;
  const bH = bh1 ? hh : Math.expm1(hh);
  const R: number[][] = [];
  const b: number[] = [];
  for (let i = 1; i <= order; i++) {
    R.push(rks.map((r) => r ** (i - 1)));
    b.push((hPhiK * factorial) / bH);
    factorial *= i + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  return { R, b, hPhi1, bH };
}

export class UniPcScheduler implements Scheduler {
  readonly name = 'unipc';
  readonly order = 1;
  readonly initNoiseSigma = 1;
  private readonly config: MultistepConfig;
  private readonly state: MultistepSteps;
  private readonly bh1: boolean;
  private readonly disableCorrector: number[];
  private lastSample: Float32Array | null = null;
  private thisOrder = 1;

  constructor(config: SchedulerConfig) {
    this.config = readMultistepConfig(config, 'unipc', ['use_exponential_sigmas', 'use_beta_sigmas']);
    if (!readBoolean(config, 'predict_x0', true)) throw new Error('scheduler unipc: config predict_x0=false is not supported');
    // diffusers maps the DPM-Solver names midpoint/heun/logrho to bh2.
    const solverType = readChoice(config, 'solver_type', ['bh1', 'bh2', 'midpoint', 'heun', 'logrho'] as const, 'bh2');
    this.bh1 = solverType === 'bh1';
    const dc = config.disable_corrector ?? [];
    if (!Array.isArray(dc) || !dc.every((x) => Number.isInteger(x))) {
      throw new Error(`scheduler config disable_corrector must be a list of step indices, got ${JSON.stringify(dc)}`);
    }
    this.disableCorrector = dc as number[];
    if (config.solver_p != null) throw new Error('scheduler unipc: config solver_p is not supported');
    this.state = new MultistepSteps(this.name, this.config);
  }

  get timesteps(): Float64Array {
    return this.state.timesteps;
  }
  get sigmas(): Float64Array {
    return this.state.sigmas;
  }

  setTimesteps(numInferenceSteps: number): void {
    this.state.set(numInferenceSteps, this.config.numTrainTimesteps);
    this.lastSample = null;
    this.thisOrder = 1;
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'unipc step');
    const idx = this.state.index(timestep);
    const useCorrector = idx > 0 && !this.disableCorrector.includes(idx - 1) && this.lastSample !== null;

    // 1. convert the model output to x0
    const x0 = convertToX0(this.config.predictionType, modelOutput, sample, this.sigmas[idx]);
    clipOrThreshold(x0, this.config.threshold, ctx.shape[0] ?? 1);

    // 2. UniC: correct the sample the previous step predicted, using this step's model output
    let current = sample;
    if (useCorrector) current = this.correct(x0, this.lastSample as Float32Array, sample, this.thisOrder, idx);

    // 3. shift the history and choose this step's order (warm-up and lower order at the end)
    this.state.remember(x0);
    let order = this.config.lowerOrderFinal
      ? Math.min(this.config.solverOrder, this.timesteps.length - idx)
      : this.config.solverOrder;
    order = Math.min(order, this.state.lowerOrderNums + 1);
    this.thisOrder = order;
    this.lastSample = current;

    // 4. UniP: predict the next sample
    const prevSample = this.predict(current, order, idx);
    this.state.advance();
    return { prevSample };
  }

  /**
   * Fills rks (the older steps' lambda offsets over h, then 1) and D1s (their x0 differences from the newest over rk);
   * the i-th older stored output pairs with sigmas[base - i].
   */
  private differences(rks: number[], d1s: Float32Array[], base: number, lambdaS0: number, h: number, order: number): void {
    const m = this.state.modelOutputs;
    const m0 = m[m.length - 1] as Float32Array;
    for (let i = 1; i < order; i++) {
      const mi = m[m.length - 1 - i] as Float32Array;
      const rk = (lambdaOf(alphaSigmaFromSigma(this.sigmas[base - i])) - lambdaS0) / h;
      rks.push(rk);
      d1s.push(mi.map((v, j) => (v - m0[j]) / rk));
    }
    rks.push(1);
  }

  /** UniP with B(h): x_t from x_s0 and the stored x0 predictions (multistep_uni_p_bh_update). */
  private predict(x: Float32Array, order: number, idx: number): Float32Array {
    const m = this.state.modelOutputs;
    const m0 = m[m.length - 1] as Float32Array;
    const t = alphaSigmaFromSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigmaFromSigma(this.sigmas[idx]);
    const lambdaS0 = lambdaOf(s0);
    const h = lambdaOf(t) - lambdaS0;
    const rks: number[] = [];
    const d1s: Float32Array[] = [];
    this.differences(rks, d1s, idx, lambdaS0, h, order);
    const { R, b, hPhi1, bH } = orderConditions(rks, -h, order, this.bh1);
    // order 2 uses the fixed rho 0.5, as diffusers does
    const rhosP =
      d1s.length === 0
        ? []
        : order === 2
          ? [0.5]
          : solveLinear(
              R.slice(0, -1).map((r) => r.slice(0, -1)),
              b.slice(0, -1),
            );
    const a = t.sigmaT / s0.sigmaT;
    const c = t.alpha * hPhi1;
    const out = new Float32Array(x.length);
    for (let j = 0; j < x.length; j++) {
      let predRes = 0;
      for (let k = 0; k < d1s.length; k++) predRes += rhosP[k] * d1s[k][j];
      out[j] = a * x[j] - c * m0[j] - t.alpha * bH * predRes;
    }
    return out;
  }

  /** UniC with B(h): refine x_t using the new model output at t (multistep_uni_c_bh_update). */
  private correct(
    modelT: Float32Array,
    lastSample: Float32Array,
    _thisSample: Float32Array,
    order: number,
    idx: number,
  ): Float32Array {
    const m = this.state.modelOutputs;
    const m0 = m[m.length - 1] as Float32Array;
    const t = alphaSigmaFromSigma(this.sigmas[idx]);
    const s0 = alphaSigmaFromSigma(this.sigmas[idx - 1]);
    const lambdaS0 = lambdaOf(s0);
    const h = lambdaOf(t) - lambdaS0;
    const rks: number[] = [];
    const d1s: Float32Array[] = [];
    this.differences(rks, d1s, idx - 1, lambdaS0, h, order);
    const { R, b, hPhi1, bH } = orderConditions(rks, -h, order, this.bh1);
    // order 1 uses the fixed rho 0.5, as diffusers does
    const rhosC = order === 1 ? [0.5] : solveLinear(R, b);
    const a = t.sigmaT / s0.sigmaT;
    const c = t.alpha * hPhi1;
    const last = rhosC[rhosC.length - 1];
    const out = new Float32Array(lastSample.length);
    for (let j = 0; j < out.length; j++) {
      let corrRes = 0;
      for (let k = 0; k < d1s.length; k++) corrRes += rhosC[k] * d1s[k][j];
      const d1t = modelT[j] - m0[j];
      out[j] = a * lastSample[j] - c * m0[j] - t.alpha * bH * (corrRes + last * d1t);
    }
    return out;
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
