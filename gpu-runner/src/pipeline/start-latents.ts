// The start of the denoising loop for each task: the timesteps to visit, the latents to begin from and, for
// inpainting, how the mask enters the loop. txt2img starts from scaled noise; img2img and inpainting from the
// image's latents noised to where the strength cut begins (diffusers' prepare_latents and get_timesteps).
import { decodeToSize } from '../image/image-codec.ts';
import type { SdModel } from '../model/sd-model.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import type { InpaintConditioning } from './denoise.ts';
import { cutTimesteps } from './img2img.ts';
import { maskImage, maskToLatent, overlayWeights } from './inpaint.ts';
import type { Task } from './task.ts';
import { type ImageInput, InvalidRequestError, type LatentShape } from './types.ts';
import { encodeImage, rgbToUnitRange } from './vae.ts';

/** The VAE downsamples by 8 in every SD 1.x / 2.x / Turbo model. */
export const VAE_FACTOR = 8;

export interface StartContext {
  model: SdModel;
  /** Timesteps already set for the requested number of steps. */
  scheduler: Scheduler;
  steps: number;
  width: number;
  height: number;
  /** [n, C, h, w] */
  shape: LatentShape;
  /** The start noise [n, C, h, w]: the seeded draw, or the caller's own (diffusers' `latents`). */
  drawNoise(): Float32Array;
}

export interface Start {
  /** The timesteps the loop visits (img2img and inpainting: after the strength cut). */
  timesteps: number[];
  /**
   * The denoising steps these timesteps stand for, which progress counts in: num_inference_steps for txt2img; for
   * img2img and inpainting the steps the strength leaves, min(int(N * strength), N), as diffusers' progress bar and
   * AUTOMATIC1111 count them. A scheduler may visit more timesteps than that (PNDM's warm-up, Heun's and DPM2's two
   * evaluations per step); denoise.ts maps them back.
   */
  steps: number;
  /** [n, C, h, w], already scaled by init_noise_sigma or noised to the first timestep. */
  latents: Float32Array;
  inpaint?: InpaintConditioning;
  /** Inpainting: the input (uint8 HWC RGB at the output size) and how much of the generated image shows per pixel. */
  overlay?: { input: Uint8Array; weights: Float32Array };
}

export function prepareStart(task: Task, ctx: StartContext): Promise<Start> {
  switch (task.kind) {
    case 'txt2img':
      return Promise.resolve(startFromNoise(ctx));
    case 'img2img':
      return startFromImage(task.image, task.strength, ctx);
    case 'inpaint':
      return task.unet === 'concat' ? startInpaintingUnet(task, ctx) : startInpaintingBlend(task, ctx);
  }
}

function startFromNoise(ctx: StartContext): Start {
  return {
    timesteps: Array.from(ctx.scheduler.timesteps),
    steps: ctx.steps,
    latents: scaleBy(ctx.drawNoise(), ctx.scheduler.initNoiseSigma),
  };
}

async function startFromImage(image: ImageInput, strength: number, ctx: StartContext): Promise<Start> {
  const { unit: pixels } = await loadPixels(image, ctx);
  const { timesteps, steps } = strengthCut(ctx, strength);
  const imageLatents = await encodeForBatch(pixels, ctx);
  return { timesteps, steps, latents: ctx.scheduler.addNoise(imageLatents, ctx.drawNoise(), timesteps[0]) };
}

/** 4-channel U-Net: after every step the known region is put back, noised to the next timestep (see denoise.ts). */
async function startInpaintingBlend(task: Extract<Task, { kind: 'inpaint' }>, ctx: StartContext): Promise<Start> {
  const { rgb, unit: pixels } = await loadPixels(task.image, ctx);
  const { timesteps, steps } = strengthCut(ctx, task.strength);
  const imageLatents = await encodeForBatch(pixels, ctx);
  const noise = ctx.drawNoise();
  const latents =
    task.strength >= 1 ? scaleBy(noise, ctx.scheduler.initNoiseSigma) : ctx.scheduler.addNoise(imageLatents, noise, timesteps[0]);
  const mask = await decodeToSize(task.mask, ctx.width, ctx.height, 1);
  return {
    timesteps,
    steps,
    latents,
    inpaint: { kind: 'blend', mask: latentMask(mask.data, ctx), imageLatents, noise },
    overlay: { input: rgb, weights: overlayWeights(mask.data, ctx.width, ctx.height) },
  };
}

/** 9-channel U-Net: it takes the mask and the masked image's latents as extra input channels on every call. */
async function startInpaintingUnet(task: Extract<Task, { kind: 'inpaint' }>, ctx: StartContext): Promise<Start> {
  const { rgb, unit: pixels } = await loadPixels(task.image, ctx);
  const { timesteps, steps } = strengthCut(ctx, task.strength);
  // At full strength the image's own latents are not needed: the start is pure noise (diffusers skips the encode too).
  const imageLatents = task.strength >= 1 ? null : await encodeForBatch(pixels, ctx);
  const noise = ctx.drawNoise();
  const latents = imageLatents
    ? ctx.scheduler.addNoise(imageLatents, noise, timesteps[0])
    : scaleBy(noise, ctx.scheduler.initNoiseSigma);
  const mask = await decodeToSize(task.mask, ctx.width, ctx.height, 1);
  const masked = maskImage(pixels, mask.data, ctx.width, ctx.height);
  const maskedImageLatents = await encodeForBatch(masked, ctx);
  return {
    timesteps,
    steps,
    latents,
    inpaint: { kind: 'unet-inputs', mask: latentMask(mask.data, ctx), maskedImageLatents },
    overlay: { input: rgb, weights: overlayWeights(mask.data, ctx.width, ctx.height) },
  };
}

/** The image resized to the output size: uint8 HWC RGB, and float32 CHW in [-1, 1] for the VAE. */
async function loadPixels(image: ImageInput, ctx: StartContext): Promise<{ rgb: Uint8Array; unit: Float32Array }> {
  const { data: rgb } = await decodeToSize(image, ctx.width, ctx.height, 3);
  const unit = new Float32Array(3 * ctx.width * ctx.height);
  rgbToUnitRange(rgb, ctx.width, ctx.height, unit);
  return { rgb, unit };
}

/** The binarized latent-size mask (white = repaint) of a grayscale mask at the output size, once per image of the batch. */
function latentMask(gray: Uint8Array, ctx: StartContext): Float32Array {
  return repeatBatch(maskToLatent(gray, ctx.width, ctx.height, VAE_FACTOR), ctx.shape[0]);
}

/** One image's latents, once per image of the batch (every output starts from the same image). */
async function encodeForBatch(pixels: Float32Array, ctx: StartContext): Promise<Float32Array> {
  const encoded = await encodeImage(ctx.model, pixels, [1, 3, ctx.height, ctx.width]);
  return repeatBatch(encoded.data, ctx.shape[0]);
}

/** The strength cut of the timesteps; refused when it leaves no step to run. */
function strengthCut(ctx: StartContext, strength: number): { timesteps: number[]; steps: number } {
  const cut = cutTimesteps(ctx.scheduler, ctx.steps, strength);
  if (cut.timesteps.length === 0 || cut.steps === 0) {
    throw new InvalidRequestError(
      `strength ${strength} with ${ctx.steps} steps leaves no denoising step; raise strength or steps`,
    );
  }
  return { timesteps: cut.timesteps, steps: cut.steps };
}

/** x * float32(s), as numpy multiplies a float32 array by a Python float. */
function scaleBy(x: Float32Array, s: number): Float32Array {
  if (s === 1) return x.slice();
  const factor = Math.fround(s);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * factor;
  return out;
}

/** One item's tensor repeated n times along the batch. */
function repeatBatch(item: Float32Array, n: number): Float32Array {
  if (n === 1) return item;
  const out = new Float32Array(item.length * n);
  for (let i = 0; i < n; i++) out.set(item, i * item.length);
  return out;
}
