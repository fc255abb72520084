// The denoising loop: one batched U-Net call per step ([uncond; cond] under classifier-free guidance),
// the guidance mix, the scheduler step, optional inpainting inputs, progress, cancellation and timing.

import type { Feed } from '../model/onnx-session.ts';
import type { SdModel } from '../model/sd-model.ts';
import type { NoiseSource, Scheduler } from '../schedulers/scheduler.ts';
import { CanceledError, type Float32Tensor, type StepProgress } from './types.ts';

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
  shape: readonly [number, number, number, number];
  /** [1, L, hidden] each; uncond present = classifier-free guidance. */
  cond: Float32Tensor;
  uncond?: Float32Tensor;
  guidanceScale: number;
  noise: NoiseSource;
  inpaint?: InpaintConditioning;
  onProgress?: (p: StepProgress) => void;
  signal?: AbortSignal;
}

export interface DenoiseOutput {
  latents: Float32Array;
  stepWallMs: number[];
  stepRunMs: number[];
  unetBatchSizes: number[];
}

/** Repeats [1, L, H] embeddings n times along the batch: [n, L, H]. */
function repeatBatch(t: Float32Tensor, n: number, out: Float32Array, offset: number): void {
  for (let i = 0; i < n; i++) out.set(t.data, offset + i * t.data.length);
}

export async function denoise(input: DenoiseInput): Promise<DenoiseOutput> {
  const { model, scheduler, shape, cond, uncond, guidanceScale, noise, inpaint, signal } = input;
  const io = model.io.unet;
  const [n, c, h, w] = shape;
  const guided = uncond !== undefined;
  const batch = guided ? 2 * n : n;
  const plane = h * w;
  const latentSize = n * c * plane;

  if (cond.shape[0] !== 1 || (uncond && (uncond.shape[1] !== cond.shape[1] || uncond.shape[2] !== cond.shape[2]))) {
    throw new Error(`embeddings must be [1, L, H] with equal shapes, got cond [${cond.shape}] uncond [${uncond?.shape}]`);
  }
  const [, seqLen, hidden] = cond.shape;

  // Buffers reused by every step: the U-Net reads and writes the same arrays, only their contents change.
  const ehs = new Float32Array(batch * seqLen * hidden);
  if (guided) repeatBatch(uncond, n, ehs, 0);
  repeatBatch(cond, n, ehs, guided ? n * cond.data.length : 0);
  const inChannels = io.inChannels;
  const sample = new Float32Array(batch * inChannels * plane);
  // A rank-0 timestep (newer optimum) is one value for the whole batch; otherwise one per batch item.
  const timestepCount = io.timestepShape === 'scalar' ? 1 : batch;
  const timestep = io.timestepDtype === 'int64' ? new BigInt64Array(timestepCount) : new Float32Array(timestepCount);
  const out = new Float32Array(batch * c * plane);

  if (inpaint?.kind === 'unet-inputs') {
    // Mask and masked-image latents are constant over the loop: write them into channels c.. once.
    for (let b = 0; b < batch; b++) {
      const item = b % n;
      const base = b * inChannels * plane;
      sample.set(inpaint.mask.subarray(item * plane, (item + 1) * plane), base + c * plane);
      sample.set(inpaint.maskedImageLatents.subarray(item * c * plane, (item + 1) * c * plane), base + (c + 1) * plane);
    }
  } else if (inChannels !== c) {
    throw new Error(`the U-Net takes ${inChannels} channels (an inpainting model): give it an image and a mask`);
  }

  const feeds: Record<string, Feed> = {
    [io.sample]: { data: sample, dims: [batch, inChannels, h, w] },
    [io.timestep]: { data: timestep, dims: io.timestepShape === 'scalar' ? [] : [batch] },
    [io.encoderHiddenStates]: { data: ehs, dims: [batch, seqLen, hidden] },
  };
  // Tensors built once: each step refills sample and timestep, and onnxruntime writes the prediction into `out`.
  const unet = model.unet.bind(feeds, { [io.output]: { data: out, dims: [batch, c, h, w] } });
  const g = Math.fround(guidanceScale);
  const ctx = { shape: [n, c, h, w], noise };
  const total = input.timesteps.length;
  const started = performance.now();
  const stepWallMs: number[] = [];
  const stepRunMs: number[] = [];
  const unetBatchSizes: number[] = [];
  let latents = input.latents;

  for (let i = 0; i < total; i++) {
    if (signal?.aborted) throw new CanceledError(i + 1);
    const stepStart = performance.now();
    const runBefore = model.unet.runMs;
    const t = input.timesteps[i];

    // 1. The U-Net input: scaled latents, twice under guidance (uncond half first).
    const scaled = scheduler.scaleModelInput(latents, t);
    if (inChannels === c) {
      sample.set(scaled, 0);
      if (guided) sample.set(scaled, latentSize);
    } else {
      for (let b = 0; b < batch; b++) {
        const item = b % n;
        sample.set(scaled.subarray(item * c * plane, (item + 1) * c * plane), b * inChannels * plane);
      }
    }
    // optimum exports take int64 timesteps (numpy astype truncates); the diffusers script export takes float32.
    if (timestep instanceof BigInt64Array) timestep.fill(BigInt(Math.trunc(t)));
    else timestep.fill(t);

    // 2. One U-Net call for the whole batch.
    await unet.run();
    unetBatchSizes.push(batch);

    // 3. Guidance: noise_pred = uncond + g * (cond - uncond), in float32 as numpy does it. The prediction is a
    //    fresh array each step: multistep schedulers (PNDM, DPM-Solver, UniPC) keep past model outputs.
    const pred = new Float32Array(latentSize);
    if (guided) {
      for (let k = 0; k < latentSize; k++) {
        const un = out[k];
        pred[k] = un + Math.fround(g * Math.fround(out[latentSize + k] - un));
      }
    } else {
      pred.set(out.subarray(0, latentSize));
    }

    // 4. The scheduler step.
    latents = scheduler.step(pred, t, latents, ctx).prevSample;

    // 5. 4-channel inpainting: keep the known region, noised to where the next step expects it.
    if (inpaint?.kind === 'blend') {
      const known =
        i < total - 1 ? scheduler.addNoise(inpaint.imageLatents, inpaint.noise, input.timesteps[i + 1]) : inpaint.imageLatents;
      const mixed = new Float32Array(latentSize);
      for (let b = 0; b < n; b++) {
        for (let ch = 0; ch < c; ch++) {
          const off = (b * c + ch) * plane;
          for (let p = 0; p < plane; p++) {
            const m = inpaint.mask[b * plane + p];
            mixed[off + p] = (1 - m) * known[off + p] + m * latents[off + p];
          }
        }
      }
      latents = mixed;
    }

    stepWallMs.push(performance.now() - stepStart);
    stepRunMs.push(model.unet.runMs - runBefore);
    input.onProgress?.({ step: i + 1, total, elapsedMs: performance.now() - started });
  }
  return { latents, stepWallMs, stepRunMs, unetBatchSizes };
}
