// Linear multistep (k-diffusion's sample_lms) as diffusers' LMSDiscreteScheduler: up to 4 past derivatives combined
// with coefficients that integrate the Lagrange basis over each sigma interval.

import { assertSameLength } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { buildSigmaSchedule, predictOriginal } from './sigma-schedule.ts';
import { readSigmaConfig, SigmaSteps } from './sigma-steps.ts';

/** diffusers' step() default order. */
const LMS_ORDER = 4;

// 5-point Gauss-Legendre: exact for polynomials up to degree 9; the Lagrange basis here has degree <= 3, so this
// equals scipy's adaptive integrate.quad (exact on polynomials too) to rounding.
const GL_NODES = [0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664];
const GL_WEIGHTS = [0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908, 0.23692688505618908];

/** Integral from a to b of f (a polynomial of degree <= 9). */
export function integratePolynomial(f: (x: number) => number, a: number, b: number): number {
  const mid = (a + b) / 2;
  const half = (b - a) / 2;
  let sum = 0;
  for (let i = 0; i < GL_NODES.length; i++) sum += GL_WEIGHTS[i] * f(mid + half * GL_NODES[i]);
  return sum * half;
}

export class LmsScheduler implements Scheduler {
  readonly name = 'lms';
  readonly order = 1;
  private readonly config;
  private readonly state: SigmaSteps;
  private derivatives: Float64Array[] = [];

  constructor(config: SchedulerConfig) {
    this.config = readSigmaConfig(config, 'lms', { hasRescaleZeroSnr: false, rejectUnsupported: true });
    this.state = new SigmaSteps(this.name, this.config.trainSigmas, this.config.spacing);
  }

  get timesteps(): Float64Array {
    return this.state.timesteps;
  }
  get sigmas(): Float64Array {
    return this.state.sigmas;
  }
  get initNoiseSigma(): number {
    return this.state.initNoiseSigma;
  }

  setTimesteps(numInferenceSteps: number): void {
    this.state.set(numInferenceSteps, (n) =>
      buildSigmaSchedule(this.config.trainSigmas, n, {
        spacing: this.config.spacing,
        stepsOffset: this.config.stepsOffset,
        // diffusers (v0.22 through v0.35, so v0.31 too) builds LMS linspace timesteps with dtype=np.float32, like Euler.
        float32Linspace: true,
        useKarrasSigmas: this.config.useKarrasSigmas,
        finalSigmaType: 'zero',
      }),
    );
    this.derivatives = [];
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return this.state.scaleModelInput(sample, timestep);
  }

  /** The LMS coefficient for the derivative `current` steps back: the Lagrange basis integrated over [s_t, s_t+1]. */
  private coefficient(order: number, t: number, current: number): number {
    const s = this.sigmas;
    const basis = (tau: number) => {
      let prod = 1;
      for (let k = 0; k < order; k++) {
        if (k === current) continue;
        prod *= (tau - s[t - k]) / (s[t - current] - s[t - k]);
      }
      return prod;
    };
    return integratePolynomial(basis, s[t], s[t + 1]);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'lms step');
    const idx = this.state.index(timestep);
    if (idx + 1 >= this.sigmas.length)
      throw new Error(`lms: step ${idx} is past the last timestep (${this.timesteps.length} steps)`);
    const sigma = this.sigmas[idx];
    // 1. compute predicted original sample (x_0) from sigma-scaled predicted noise
    const predOriginal = predictOriginal(this.config.predictionType, modelOutput, sample, sigma);
    // 2. convert to an ODE derivative
    const n = sample.length;
    const derivative = new Float64Array(n);
    for (let i = 0; i < n; i++) derivative[i] = (sample[i] - predOriginal[i]) / sigma;
    this.derivatives.push(derivative);
    if (this.derivatives.length > LMS_ORDER) this.derivatives.shift();
    // 3. compute linear multistep coefficients
    const order = Math.min(idx + 1, LMS_ORDER);
    const coeffs = Array.from({ length: order }, (_, c) => this.coefficient(order, idx, c));
    // 4. compute previous sample based on the derivatives path (coefficient c pairs with the c-th newest)
    const prevSample = new Float32Array(n);
    const d = this.derivatives;
    // diffusers zips the coefficients with the stored derivatives, so after an img2img start (begin index > 0)
    // only the derivatives that exist contribute, weighted by the higher-order coefficients.
    const terms = Math.min(order, d.length);
    for (let i = 0; i < n; i++) {
      let acc = sample[i];
      for (let c = 0; c < terms; c++) acc += coeffs[c] * d[d.length - 1 - c][i];
      prevSample[i] = acc;
    }
    this.state.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
