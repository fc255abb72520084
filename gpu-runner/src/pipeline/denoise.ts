// The denoising loop: one batched U-Net call per step ([uncond; cond] under classifier-free guidance, [cond] alone
// once guidance has ended), the guidance mix, the scheduler step, optional inpainting inputs, progress, cancellation
// and timing.

import type { Feed } from '../model/onnx-session.ts';
import type { SdModel } from '../model/sd-model.ts';
import type { NoiseSource, Scheduler } from '../schedulers/scheduler.ts';
import { CanceledError, type Float32Tensor, InvalidRequestError, type LatentShape, type StepProgress } from './types.ts';

/** How inpainting enters the loop. */
export type InpaintConditioning =
  /** 9-channel U-Net: concat(latents, mask, maskedImageLatents) along channels. */
  | { kind: 'unet-inputs'; mask: Float32Array; maskedImageLatents: Float32Array }
  /** 4-channel U-Net: after each step, known regions are replaced by the image latents noised to the next timestep. */
  | { kind: 'blend'; mask: Float32Array; imageLatents: Float32Array; noise: Float32Array };

export interface DenoiseInput {
  model: SdModel;
  scheduler: Scheduler;
  /** The timesteps to visit (img2img: already cut). */
  timesteps: readonly number[] | Float64Array;
  /** [n, C, h, w], the starting latents (already scaled by init_noise_sigma or noised). */
  latents: Float32Array;
  shape: LatentShape;
  /** [1, L, hidden] each; uncond present = classifier-free guidance. */
  cond: Float32Tensor;
  uncond?: Float32Tensor;
  guidanceScale: number;
  /**
   * Fraction of the loop, from the first step, that runs guided (default 1: every step, as diffusers). Step i is
   * guided while (i + 1) / steps <= guidanceEnd, diffusers' rule for control_guidance_end. Later steps run the cond
   * half alone: half the U-Net batch. Guidance decides the layout while the latents are mostly noise; on the last
   * steps it mostly overshoots edges (see the embedded model's card).
   */
  guidanceEnd?: number;
  noise: NoiseSource;
  inpaint?: InpaintConditioning;
  /** The denoising steps the timesteps stand for, which progress counts in (default: one per timestep). */
  progressSteps?: number;
  /** Called once per finished denoising step, never past progressSteps. */
  onProgress?: (p: StepProgress) => void;
  signal?: AbortSignal;
}

export interface DenoiseOutput {
  latents: Float32Array;
  stepWallMs: number[];
  stepRunMs: number[];
  unetBatchSizes: number[];
}

/** The U-Net's input and output arrays, allocated once: every step refills them and onnxruntime reads and writes them. */
interface UnetBuffers {
  /** [batch, inChannels, h, w] */
  sample: Float32Array;
  /** One timestep for the batch (rank-0 export) or one per item. */
  timestep: Float32Array | BigInt64Array;
  /** [batch, C, h, w]: the noise prediction, uncond half first under guidance. */
  prediction: Float32Array;
  run(): Promise<unknown>;
}

export async function denoise(input: DenoiseInput): Promise<DenoiseOutput> {
  const { model, scheduler, shape, inpaint, signal } = input;
  const [numImages, channels, latentHeight, latentWidth] = shape;
  const plane = latentHeight * latentWidth;
  const latentSize = numImages * channels * plane;
  const guided = input.uncond !== undefined;
  const guidedSteps = guided ? guidedStepCount(input.timesteps.length, input.guidanceEnd ?? 1) : 0;
  // Bound on first use: a loop guided throughout never allocates the cond-only batch, and one never guided the pair.
  const bindings = new Map<boolean, UnetBuffers>();
  const unetFor = (withGuidance: boolean): UnetBuffers => {
    let bound = bindings.get(withGuidance);
    if (!bound) {
      bound = bindUnet(input, withGuidance);
      bindings.set(withGuidance, bound);
    }
    return bound;
  };
  const ctx = { shape: [...shape], noise: input.noise };
  const total = input.timesteps.length;
  const stepsDone = stepCounter(total, input.progressSteps ?? total, scheduler.order);
  const started = performance.now();
  const out: DenoiseOutput = { latents: input.latents, stepWallMs: [], stepRunMs: [], unetBatchSizes: [] };

  for (let i = 0; i < total; i++) {
    if (signal?.aborted) throw new CanceledError(i + 1);
    const stepStart = performance.now();
    const runBefore = model.unet.runMs;
    const t = input.timesteps[i];
    const guidedNow = i < guidedSteps;
    const unet = unetFor(guidedNow);

    // 1. The U-Net input: scaled latents, twice under guidance (uncond half first).
    writeSample(unet.sample, scheduler.scaleModelInput(out.latents, t), shape, guidedNow, model.io.unet.inChannels);
    // optimum exports take int64 timesteps (numpy astype truncates); the diffusers script export takes float32.
    if (unet.timestep instanceof BigInt64Array) unet.timestep.fill(BigInt(Math.trunc(t)));
    else unet.timestep.fill(t);

    // 2. One U-Net call for the whole batch.
    await unet.run();
    out.unetBatchSizes.push(guidedNow ? 2 * numImages : numImages);

    // 3. Guidance: noise_pred = uncond + g * (cond - uncond), in float32 as numpy does it. The prediction is a
    //    fresh array each step: multistep schedulers (PNDM, DPM-Solver, UniPC) keep past model outputs.
    const noisePred = guide(unet.prediction, latentSize, guidedNow ? input.guidanceScale : null);

    // 4. The scheduler step.
    out.latents = scheduler.step(noisePred, t, out.latents, ctx).prevSample;

    // 5. 4-channel inpainting: keep the known region, noised to where the next step expects it.
    if (inpaint?.kind === 'blend') {
      const next = i < total - 1 ? input.timesteps[i + 1] : null;
      const known = next === null ? inpaint.imageLatents : scheduler.addNoise(inpaint.imageLatents, inpaint.noise, next);
      out.latents = blendKnown(known, out.latents, inpaint.mask, shape);
    }

    out.stepWallMs.push(performance.now() - stepStart);
    out.stepRunMs.push(model.unet.runMs - runBefore);
    const done = stepsDone(i);
    if (done !== null)
      input.onProgress?.({ step: done, total: input.progressSteps ?? total, elapsedMs: performance.now() - started });
  }
  return out;
}

/**
 * Maps loop iterations to denoising steps, as diffusers' progress bar does: after a scheduler's warm-up iterations
 * (PNDM repeats its first timestep) every `order` iterations finish one step (Heun and DPM2 evaluate the model twice
 * per step), and the last iteration finishes the last. Returns, per iteration index, the step it finishes or null.
 */
export function stepCounter(iterations: number, steps: number, order: number): (i: number) => number | null {
  const warmup = iterations - steps * order;
  let done = 0;
  return (i) => {
    const finishes = i === iterations - 1 || (i + 1 > warmup && (i + 1) % order === 0);
    if (!finishes || done >= steps) return null;
    done++;
    return i === iterations - 1 ? steps : done;
  };
}

/** How many steps, from the first, run guided: those with (i + 1) / steps <= guidanceEnd (diffusers' rule). */
export function guidedStepCount(steps: number, guidanceEnd: number): number {
  if (!(guidanceEnd >= 0 && guidanceEnd <= 1))
    throw new InvalidRequestError(`guidanceEnd must be between 0 and 1, got ${guidanceEnd}`);
  // The tolerance keeps 0.57 x 100 steps at 57 (0.57 * 100 is 56.99999999999999 in floating point).
  return Math.min(steps, Math.floor(guidanceEnd * steps + 1e-9));
}

/**
 * Allocates the U-Net's arrays for the guided pair ([uncond; cond]) or the cond half alone, writes what is constant
 * over the loop (text, inpainting inputs) and binds them.
 */
function bindUnet(input: DenoiseInput, guided: boolean): UnetBuffers {
  const { model, cond, inpaint } = input;
  const uncond = guided ? input.uncond : undefined;
  const io = model.io.unet;
  const [numImages, channels, latentHeight, latentWidth] = input.shape;
  const batch = uncond ? 2 * numImages : numImages;
  const plane = latentHeight * latentWidth;
  if (cond.shape[0] !== 1 || (uncond && (uncond.shape[1] !== cond.shape[1] || uncond.shape[2] !== cond.shape[2]))) {
    throw new InvalidRequestError(
      `embeddings must be [1, L, H] with equal shapes, got cond [${cond.shape}] uncond [${uncond?.shape}]`,
    );
  }
  const [, seqLen, hidden] = cond.shape;

  const hiddenStates = new Float32Array(batch * seqLen * hidden);
  if (uncond) repeatEmbedding(uncond, numImages, hiddenStates, 0);
  repeatEmbedding(cond, numImages, hiddenStates, uncond ? numImages * cond.data.length : 0);
  const sample = new Float32Array(batch * io.inChannels * plane);
  // A rank-0 timestep (newer optimum) is one value for the whole batch; otherwise one per batch item.
  const timestepCount = io.timestepShape === 'scalar' ? 1 : batch;
  const timestep = io.timestepDtype === 'int64' ? new BigInt64Array(timestepCount) : new Float32Array(timestepCount);
  const prediction = new Float32Array(batch * channels * plane);

  if (inpaint?.kind === 'unet-inputs') {
    // Mask and masked-image latents are constant over the loop: write them into channels C.. once.
    for (let b = 0; b < batch; b++) {
      const item = b % numImages;
      const base = b * io.inChannels * plane;
      sample.set(inpaint.mask.subarray(item * plane, (item + 1) * plane), base + channels * plane);
      sample.set(
        inpaint.maskedImageLatents.subarray(item * channels * plane, (item + 1) * channels * plane),
        base + (channels + 1) * plane,
      );
    }
  } else if (io.inChannels !== channels) {
    throw new InvalidRequestError(`the U-Net takes ${io.inChannels} channels (an inpainting model): give it an image and a mask`);
  }

  const feeds: Record<string, Feed> = {
    [io.sample]: { data: sample, dims: [batch, io.inChannels, latentHeight, latentWidth] },
    [io.timestep]: { data: timestep, dims: io.timestepShape === 'scalar' ? [] : [batch] },
    [io.encoderHiddenStates]: { data: hiddenStates, dims: [batch, seqLen, hidden] },
  };
  // Tensors built once: each step refills sample and timestep, and onnxruntime writes the prediction into its array.
  const bound = model.unet.bind(feeds, { [io.output]: { data: prediction, dims: [batch, channels, latentHeight, latentWidth] } });
  return { sample, timestep, prediction, run: bound.run };
}

/** Repeats [1, L, H] embeddings n times along the batch: [n, L, H]. */
function repeatEmbedding(tensor: Float32Tensor, n: number, out: Float32Array, offset: number): void {
  for (let i = 0; i < n; i++) out.set(tensor.data, offset + i * tensor.data.length);
}

/** The scaled latents into the U-Net's sample: per item (its first C channels) when the U-Net takes more channels. */
function writeSample(sample: Float32Array, scaled: Float32Array, shape: LatentShape, guided: boolean, inChannels: number): void {
  const [numImages, channels, latentHeight, latentWidth] = shape;
  const itemSize = channels * latentHeight * latentWidth;
  if (inChannels === channels) {
    sample.set(scaled, 0);
    if (guided) sample.set(scaled, numImages * itemSize);
    return;
  }
  const batch = guided ? 2 * numImages : numImages;
  const sampleItemSize = inChannels * latentHeight * latentWidth;
  for (let b = 0; b < batch; b++) {
    const item = b % numImages;
    sample.set(scaled.subarray(item * itemSize, (item + 1) * itemSize), b * sampleItemSize);
  }
}

/** The guided noise prediction (uncond + g * (cond - uncond)), or the plain one without guidance (scale null). */
function guide(prediction: Float32Array, latentSize: number, scale: number | null): Float32Array {
  const noisePred = new Float32Array(latentSize);
  if (scale === null) {
    noisePred.set(prediction.subarray(0, latentSize));
    return noisePred;
  }
  const g = Math.fround(scale);
  for (let k = 0; k < latentSize; k++) {
    const unconditional = prediction[k];
    noisePred[k] = unconditional + Math.fround(g * Math.fround(prediction[latentSize + k] - unconditional));
  }
  return noisePred;
}

/** (1 - mask) * known + mask * latents, per image and channel (the mask is one plane per image). */
function blendKnown(known: Float32Array, latents: Float32Array, mask: Float32Array, shape: LatentShape): Float32Array {
  const [numImages, channels, latentHeight, latentWidth] = shape;
  const plane = latentHeight * latentWidth;
  const mixed = new Float32Array(latents.length);
  for (let b = 0; b < numImages; b++) {
    for (let ch = 0; ch < channels; ch++) {
      const offset = (b * channels + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const repaint = mask[b * plane + p];
        mixed[offset + p] = (1 - repaint) * known[offset + p] + repaint * latents[offset + p];
      }
    }
  }
  return mixed;
}
