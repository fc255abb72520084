// PNDM (Liu et al. 2022) as diffusers' PNDMScheduler. Stable Diffusion sets skip_prk_steps: PLMS only, with the
// second timestep repeated (the first PLMS step is a two-evaluation warm-up); Runge-Kutta warm-up otherwise.

import { addNoiseVp, alphaProdAt, assertSameLength, checkSteps, linspace, roundHalfEven } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepContext, StepResult } from './scheduler.ts';
import { type DiscreteSchedule, readBoolean, readDiscreteSchedule, readSpacing } from './scheduler-config.ts';

export class PndmScheduler implements Scheduler {
  readonly name = 'pndm';
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly sigmas = null;
  timesteps: Float64Array = new Float64Array(0);

  private readonly schedule: DiscreteSchedule<'epsilon' | 'v_prediction'>;
  private readonly spacing;
  private readonly stepsOffset: number;
  private readonly skipPrkSteps: boolean;
  private numInferenceSteps = 0;
  private prkCount = 0;
  // PLMS state: past model outputs (newest last), warm-up sample and the RK accumulator.
  private ets: Float32Array[] = [];
  private counter = 0;
  private curSample: Float32Array | null = null;
  private curModelOutput: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    this.schedule = readDiscreteSchedule(config, {
      hasRescaleZeroSnr: false,
      setAlphaToOne: false,
      predictionTypes: ['epsilon', 'v_prediction'] as const,
    });
    ({ spacing: this.spacing, stepsOffset: this.stepsOffset } = readSpacing(config, 'leading'));
    this.skipPrkSteps = readBoolean(config, 'skip_prk_steps', false);
  }

  setTimesteps(numInferenceSteps: number): void {
    const train = this.schedule.numTrainTimesteps;
    checkSteps(numInferenceSteps, train);
    this.numInferenceSteps = numInferenceSteps;
    const n = numInferenceSteps;
    let base: number[]; // ascending
    if (this.spacing === 'linspace') base = Array.from(linspace(0, train - 1, n), roundHalfEven);
    else if (this.spacing === 'leading') base = Array.from({ length: n }, (_, i) => i * Math.floor(train / n) + this.stepsOffset);
    else {
      const step = train / n;
      const count = Math.ceil(train / step);
      base = Array.from({ length: count }, (_, i) => roundHalfEven(train - i * step) - 1).reverse();
    }
    let prk: number[] = [];
    let plms: number[];
    if (this.skipPrkSteps) {
      // [t0 .. t_{n-2}, t_{n-2}, t_{n-1}] reversed: the second-highest timestep appears twice.
      plms = [...base.slice(0, -1), ...base.slice(-2, -1), ...base.slice(-1)].reverse();
    } else {
      const half = Math.floor(Math.floor(train / n) / 2);
      const last4 = base.slice(-4);
      const rep: number[] = [];
      for (const t of last4) rep.push(t, t + half);
      // prk_timesteps[:-1].repeat(2)[1:-1], reversed
      const head = rep.slice(0, -1);
      const doubled: number[] = [];
      for (const t of head) doubled.push(t, t);
      prk = doubled.slice(1, -1).reverse();
      plms = base.slice(0, -3).reverse();
    }
    this.prkCount = prk.length;
    this.timesteps = Float64Array.from([...prk, ...plms]);
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.curModelOutput = null;
  }

  setBeginIndex(): void {}

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _ctx: StepContext): StepResult {
    assertSameLength(modelOutput, sample, 'pndm step');
    if (this.numInferenceSteps === 0) throw new Error('pndm: call setTimesteps before step');
    const prevSample =
      this.counter < this.prkCount && !this.skipPrkSteps
        ? this.stepPrk(modelOutput, timestep, sample)
        : this.stepPlms(modelOutput, timestep, sample);
    return { prevSample };
  }

  /** Runge-Kutta warm-up: four evaluations per step, combined 1/6, 1/3, 1/3, 1/6. */
  private stepPrk(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const diffToPrev =
      this.counter % 2 ? 0 : Math.floor(Math.floor(this.schedule.numTrainTimesteps / this.numInferenceSteps) / 2);
    const prevTimestep = timestep - diffToPrev;
    const t = this.timesteps[Math.floor(this.counter / 4) * 4];
    const n = sample.length;
    if (!this.curModelOutput) this.curModelOutput = new Float32Array(n);
    const acc = this.curModelOutput;
    let output = modelOutput;
    const phase = this.counter % 4;
    if (phase === 0) {
      for (let i = 0; i < n; i++) acc[i] += modelOutput[i] / 6;
      this.ets.push(modelOutput);
      this.curSample = sample;
    } else if (phase === 1 || phase === 2) {
      for (let i = 0; i < n; i++) acc[i] += modelOutput[i] / 3;
    } else {
      output = new Float32Array(n);
      for (let i = 0; i < n; i++) output[i] = acc[i] + modelOutput[i] / 6;
      this.curModelOutput = null;
    }
    const base = this.curSample ?? sample;
    const prev = this.prevSample(base, t, prevTimestep, output);
    this.counter++;
    return prev;
  }

  /** Linear multistep (Adams-Bashforth) on the stored model outputs. */
  private stepPlms(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    if (!this.skipPrkSteps && this.ets.length < 3) throw new Error('pndm: PLMS needs three Runge-Kutta steps first');
    const jump = Math.floor(this.schedule.numTrainTimesteps / this.numInferenceSteps);
    let t = timestep;
    let prevTimestep = timestep - jump;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      // The repeated timestep: this evaluation corrects the previous step, from the same start sample.
      prevTimestep = timestep;
      t = timestep + jump;
    }
    const e = this.ets;
    const n = sample.length;
    let combined: Float32Array;
    let from = sample;
    if (e.length === 1 && this.counter === 0) {
      combined = modelOutput;
      this.curSample = sample;
    } else if (e.length === 1 && this.counter === 1) {
      combined = new Float32Array(n);
      for (let i = 0; i < n; i++) combined[i] = (modelOutput[i] + e[0][i]) / 2;
      from = this.curSample ?? sample;
      this.curSample = null;
    } else if (e.length === 2) {
      combined = new Float32Array(n);
      for (let i = 0; i < n; i++) combined[i] = (3 * e[1][i] - e[0][i]) / 2;
    } else if (e.length === 3) {
      combined = new Float32Array(n);
      for (let i = 0; i < n; i++) combined[i] = (23 * e[2][i] - 16 * e[1][i] + 5 * e[0][i]) / 12;
    } else {
      combined = new Float32Array(n);
      for (let i = 0; i < n; i++) combined[i] = (55 * e[3][i] - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]) / 24;
    }
    const prev = this.prevSample(from, t, prevTimestep, combined);
    this.counter++;
    return prev;
  }

  /** Eq. (9) of the PNDM paper: x_{t-δ} from x_t and the (combined) noise estimate. */
  private prevSample(sample: Float32Array, timestep: number, prevTimestep: number, modelOutput: Float32Array): Float32Array {
    const alphaProdT = this.schedule.alphasCumprod[timestep];
    const alphaProdPrev = alphaProdAt(this.schedule.alphasCumprod, prevTimestep, this.schedule.finalAlphaCumprod);
    const betaProdT = 1 - alphaProdT;
    const betaProdPrev = 1 - alphaProdPrev;
    const sampleCoeff = Math.sqrt(alphaProdPrev / alphaProdT);
    const denom = alphaProdT * Math.sqrt(betaProdPrev) + Math.sqrt(alphaProdT * betaProdT * alphaProdPrev);
    const k = (alphaProdPrev - alphaProdT) / denom;
    const sa = Math.sqrt(alphaProdT);
    const sb = Math.sqrt(betaProdT);
    const out = new Float32Array(sample.length);
    const vPred = this.schedule.predictionType === 'v_prediction';
    for (let i = 0; i < sample.length; i++) {
      const eps = vPred ? sa * modelOutput[i] + sb * sample[i] : modelOutput[i];
      out[i] = sampleCoeff * sample[i] - k * eps;
    }
    return out;
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    assertSameLength(originalSamples, noise, 'pndm addNoise');
    return addNoiseVp(originalSamples, noise, this.schedule.alphasCumprod[timestep]);
  }
}
