// Euler ancestral (k-diffusion's sample_euler_ancestral) as diffusers' EulerAncestralDiscreteScheduler: an Euler
// step down to sigma_down, then fresh noise of size sigma_up drawn from the generator every step.
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { TIMESTEP_SPACINGS, readBetaConfig, readChoice, readInteger } from './scheduler-config.ts';
import { alphasCumprod, assertSameLength, drawNoise, indexForTimestep, makeBetas, trainingSigmas } from './schedule.ts';
import { checkSteps } from './ddim.ts';
import { addNoiseSigma, sigmaIndexForNoise } from './euler.ts';
import { buildSigmaSchedule, initNoiseSigmaFor, predictOriginal, scaleBySigma } from './sigma-schedule.ts';

export class EulerAncestralScheduler implements Scheduler {
  readonly name = 'euler_a';
  readonly order = 1;
  timesteps: Float64Array = new Float64Array(0);
  sigmas: Float64Array;
  initNoiseSigma: number;

  private readonly trainSigmas: Float64Array;
  private readonly predictionType;
  private readonly spacing;
  private readonly stepsOffset: number;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    const beta = readBetaConfig(config, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, { hasRescaleZeroSnr: true });
    const ac = alphasCumprod(makeBetas(beta, ['linear', 'scaled_linear', 'squaredcos_cap_v2']));
    if (beta.rescaleBetasZeroSnr) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = trainingSigmas(ac);
    // diffusers' EulerAncestral has no "sample" prediction.
    this.predictionType = readChoice(config, 'prediction_type', ['epsilon', 'v_prediction'] as const, 'epsilon');
    this.spacing = readChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'linspace');
    this.stepsOffset = readInteger(config, 'steps_offset', 0);
    this.sigmas = Float64Array.from([...Array.from(this.trainSigmas).reverse(), 0]);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.trainSigmas.length);
    const s = buildSigmaSchedule(this.trainSigmas, numInferenceSteps, {
      spacing: this.spacing,
      stepsOffset: this.stepsOffset,
      float32Linspace: true,
      useKarrasSigmas: false,
      finalSigmaType: 'zero',
    });
    this.timesteps = s.timesteps;
    this.sigmas = s.sigmas;
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, this.spacing);
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(beginIndex: number): void {
    this.beginIndex = beginIndex;
  }

  private currentIndex(timestep: number): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, Math.fround(timestep));
    return this.stepIndex;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[this.currentIndex(timestep)]);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'euler_a step');
    const idx = this.currentIndex(timestep);
    if (idx + 1 >= this.sigmas.length) throw new Error(`euler_a: step ${idx} is past the last timestep (${this.timesteps.length} steps)`);
    const sigma = this.sigmas[idx];
    // 1. compute predicted original sample (x_0) from sigma-scaled predicted noise
    const predOriginal = predictOriginal(this.predictionType, modelOutput, sample, sigma);
    // 2. split the step into a deterministic part (to sigma_down) and fresh noise (sigma_up)
    const sigmaFrom = sigma;
    const sigmaTo = this.sigmas[idx + 1];
    const sigmaUp = Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2);
    const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
    const dt = sigmaDown - sigma;
    // 3. the ODE derivative and the Euler step, then the noise drawn after it (diffusers' order)
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] = sample[i] + ((sample[i] - predOriginal[i]) / sigma) * dt;
    const noise = drawNoise(this.name, ctx, sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] += noise[i] * sigmaUp;
    this.stepIndex = idx + 1;
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'euler_a addNoise');
    return addNoiseSigma(originalSamples, noise, this.sigmas[sigmaIndexForNoise(this.timesteps, timestep, this.beginIndex, this.stepIndex)]);
  }
}
