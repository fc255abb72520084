// Euler ancestral (k-diffusion's sample_euler_ancestral) as diffusers' EulerAncestralDiscreteScheduler: an Euler
// step down to sigma_down, then fresh noise of size sigma_up drawn from the generator every step.

import { assertSameLength, drawNoise } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { buildSigmaSchedule, predictOriginal } from './sigma-schedule.ts';
import { readSigmaConfig, SigmaSteps } from './sigma-steps.ts';

export class EulerAncestralScheduler implements Scheduler {
  readonly name = 'euler_a';
  readonly order = 1;
  private readonly config;
  private readonly state: SigmaSteps;

  constructor(config: SchedulerConfig) {
    // diffusers' EulerAncestral has no "sample" prediction, no Karras sigmas and no sigma variants to refuse.
    this.config = readSigmaConfig(config, 'euler_a', {
      hasRescaleZeroSnr: true,
      predictionTypes: ['epsilon', 'v_prediction'] as const,
      rejectUnsupported: false,
    });
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
        float32Linspace: true,
        useKarrasSigmas: false,
        finalSigmaType: 'zero',
      }),
    );
  }

  setBeginIndex(beginIndex: number): void {
    this.state.setBeginIndex(beginIndex);
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return this.state.scaleModelInput(sample, timestep);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'euler_a step');
    const { sigmas, timesteps } = this.state;
    const idx = this.state.index(timestep);
    if (idx + 1 >= sigmas.length) throw new Error(`euler_a: step ${idx} is past the last timestep (${timesteps.length} steps)`);
    const sigma = sigmas[idx];
    // 1. compute predicted original sample (x_0) from sigma-scaled predicted noise
    const predOriginal = predictOriginal(this.config.predictionType, modelOutput, sample, sigma);
    // 2. split the step into a deterministic part (to sigma_down) and fresh noise (sigma_up)
    const sigmaFrom = sigma;
    const sigmaTo = sigmas[idx + 1];
    const sigmaUp = Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2);
    const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
    const dt = sigmaDown - sigma;
    // 3. the ODE derivative and the Euler step, then the noise drawn after it (diffusers' order)
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] = sample[i] + ((sample[i] - predOriginal[i]) / sigma) * dt;
    const noise = drawNoise(this.name, ctx, sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] += noise[i] * sigmaUp;
    this.state.advance();
    return { prevSample, predOriginalSample: predOriginal };
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.state.addNoise(originalSamples, noise, timestep);
  }
}
