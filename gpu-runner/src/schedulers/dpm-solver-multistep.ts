// DPM-Solver++ multistep (Lu et al. 2022) as diffusers' DPMSolverMultistepScheduler: "dpmsolver++" (DPM++ 2M at
// solver_order 2) or "sde-dpmsolver++", midpoint/heun second-order form, lower-order final steps, Karras sigmas.

import { convertToX0, lambdaOf, type MultistepConfig, MultistepSteps, readMultistepConfig } from './multistep.ts';
import { alphaSigmaFromSigma, assertSameLength, drawNoise } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { readBoolean, readChoice, readNumber } from './scheduler-config.ts';
import { clipOrThreshold } from './thresholding.ts';

const f32 = Math.fround;

export class DpmSolverMultistepScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  private readonly config: MultistepConfig;
  private readonly state: MultistepSteps;
  private readonly lambdas: Float64Array;
  private readonly algorithm;
  private readonly solverType;
  private readonly eulerAtFinal: boolean;
  private readonly lambdaMinClipped: number;

  constructor(
    config: SchedulerConfig,
    readonly name: string = 'dpmpp_2m',
  ) {
    this.config = readMultistepConfig(config, name, ['use_exponential_sigmas', 'use_beta_sigmas', 'use_lu_lambdas']);
    // lambda_t = log(alpha_t) - log(sigma_t) of the training schedule, in float32 like torch.
    this.lambdas = this.config.alphasCumprod.map((a) =>
      f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a)))))),
    );
    if (this.config.solverOrder > 3)
      throw new Error(`scheduler config solver_order must be 1, 2 or 3, got ${this.config.solverOrder}`);
    this.algorithm = readChoice(config, 'algorithm_type', ['dpmsolver++', 'sde-dpmsolver++'] as const, 'dpmsolver++');
    if (this.algorithm === 'sde-dpmsolver++' && this.config.solverOrder === 3) {
      throw new Error('scheduler config solver_order 3 is not supported with algorithm_type sde-dpmsolver++');
    }
    this.solverType = readChoice(config, 'solver_type', ['midpoint', 'heun'] as const, 'midpoint');
    this.eulerAtFinal = readBoolean(config, 'euler_at_final', false);
    this.lambdaMinClipped = readNumber(config, 'lambda_min_clipped', Number.NEGATIVE_INFINITY);
    this.state = new MultistepSteps(name, this.config);
  }

  get timesteps(): Float64Array {
    return this.state.timesteps;
  }
  get sigmas(): Float64Array {
    return this.state.sigmas;
  }

  setTimesteps(numInferenceSteps: number): void {
    // Clip the lowest lambdas (cosine schedules): searchsorted over the reversed lambdas.
    let clipped = 0;
    for (let i = this.lambdas.length - 1; i >= 0 && this.lambdas[i] < this.lambdaMinClipped; i--) clipped++;
    this.state.set(numInferenceSteps, this.config.numTrainTimesteps - clipped);
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, `${this.name} step`);
    const idx = this.state.index(timestep);
    const count = this.timesteps.length;
    // Improve numerical stability for small numbers of steps: finish with lower orders.
    const lowerOrderFinal =
      idx === count - 1 &&
      (this.eulerAtFinal || (this.config.lowerOrderFinal && count < 15) || this.config.finalSigmaType === 'zero');
    const lowerOrderSecond = idx === count - 2 && this.config.lowerOrderFinal && count < 15;

    // 1. convert the model output to the x0 prediction dpmsolver++ works with
    const x0 = convertToX0(this.config.predictionType, modelOutput, sample, this.sigmas[idx]);
    clipOrThreshold(x0, this.config.threshold, ctx.shape[0] ?? 1);
    this.state.remember(x0);

    // 2. the SDE variant draws its noise here, once per step
    const noise = this.algorithm === 'sde-dpmsolver++' ? drawNoise(this.name, ctx, sample.length) : null;

    // 3. multistep update of the chosen order
    let prevSample: Float32Array;
    if (this.config.solverOrder === 1 || this.state.lowerOrderNums < 1 || lowerOrderFinal) {
      prevSample = this.firstOrderUpdate(x0, sample, idx, noise);
    } else if (this.config.solverOrder === 2 || this.state.lowerOrderNums < 2 || lowerOrderSecond) {
      prevSample = this.secondOrderUpdate(sample, idx, noise);
    } else {
      prevSample = this.thirdOrderUpdate(sample, idx);
    }
    this.state.advance();
    return { prevSample };
  }

  private firstOrderUpdate(x0: Float32Array, sample: Float32Array, idx: number, noise: Float32Array | null): Float32Array {
    const t = alphaSigmaFromSigma(this.sigmas[idx + 1]);
    const s = alphaSigmaFromSigma(this.sigmas[idx]);
    const h = lambdaOf(t) - lambdaOf(s);
    const out = new Float32Array(sample.length);
    if (noise) {
      const a = (t.sigmaT / s.sigmaT) * Math.exp(-h);
      const b = t.alpha * (1 - Math.exp(-2 * h));
      const c = t.sigmaT * Math.sqrt(1 - Math.exp(-2 * h));
      for (let i = 0; i < out.length; i++) out[i] = a * sample[i] + b * x0[i] + c * noise[i];
      return out;
    }
    const a = t.sigmaT / s.sigmaT;
    const b = t.alpha * (Math.exp(-h) - 1);
    for (let i = 0; i < out.length; i++) out[i] = a * sample[i] - b * x0[i];
    return out;
  }

  private secondOrderUpdate(sample: Float32Array, idx: number, noise: Float32Array | null): Float32Array {
    const m0 = this.state.modelOutputs[this.config.solverOrder - 1] as Float32Array;
    const m1 = this.state.modelOutputs[this.config.solverOrder - 2] as Float32Array;
    const t = alphaSigmaFromSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigmaFromSigma(this.sigmas[idx]);
    const s1 = alphaSigmaFromSigma(this.sigmas[idx - 1]);
    const h = lambdaOf(t) - lambdaOf(s0);
    const h0 = lambdaOf(s0) - lambdaOf(s1);
    const r0 = h0 / h;
    const out = new Float32Array(sample.length);
    if (noise) {
      const a = (t.sigmaT / s0.sigmaT) * Math.exp(-h);
      const b = t.alpha * (1 - Math.exp(-2 * h));
      const c = t.sigmaT * Math.sqrt(1 - Math.exp(-2 * h));
      const d1k = this.solverType === 'midpoint' ? 0.5 * b : t.alpha * ((1 - Math.exp(-2 * h)) / (-2 * h) + 1);
      for (let i = 0; i < out.length; i++) {
        const d1 = (m0[i] - m1[i]) / r0;
        out[i] = a * sample[i] + b * m0[i] + d1k * d1 + c * noise[i];
      }
      return out;
    }
    const a = t.sigmaT / s0.sigmaT;
    const b = t.alpha * (Math.exp(-h) - 1);
    for (let i = 0; i < out.length; i++) {
      const d1 = (m0[i] - m1[i]) / r0;
      out[i] =
        this.solverType === 'midpoint'
          ? a * sample[i] - b * m0[i] - 0.5 * b * d1
          : a * sample[i] - b * m0[i] + t.alpha * ((Math.exp(-h) - 1) / h + 1) * d1;
    }
    return out;
  }

  private thirdOrderUpdate(sample: Float32Array, idx: number): Float32Array {
    const [m2, m1, m0] = this.state.modelOutputs as Float32Array[];
    const t = alphaSigmaFromSigma(this.sigmas[idx + 1]);
    const s0 = alphaSigmaFromSigma(this.sigmas[idx]);
    const s1 = alphaSigmaFromSigma(this.sigmas[idx - 1]);
    const s2 = alphaSigmaFromSigma(this.sigmas[idx - 2]);
    const h = lambdaOf(t) - lambdaOf(s0);
    const r0 = (lambdaOf(s0) - lambdaOf(s1)) / h;
    const r1 = (lambdaOf(s1) - lambdaOf(s2)) / h;
    const a = t.sigmaT / s0.sigmaT;
    const e = Math.exp(-h) - 1;
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      const d10 = (m0[i] - m1[i]) / r0;
      const d11 = (m1[i] - m2[i]) / r1;
      const d1 = d10 + (r0 / (r0 + r1)) * (d10 - d11);
      const d2 = (d10 - d11) / (r0 + r1);
      out[i] = a * sample[i] - t.alpha * e * m0[i] + t.alpha * (e / h + 1) * d1 - t.alpha * ((e + h) / (h * h) - 0.5) * d2;
    }
    return out;
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
