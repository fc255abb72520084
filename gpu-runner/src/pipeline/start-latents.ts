// The start of the denoising loop for each task: the timesteps to visit, the latents to begin from and, for
// inpainting, how the mask enters the loop. txt2img starts from scaled noise; img2img and inpainting from the
// image's latents noised to where the strength cut begins (diffusers' prepare_latents and get_timesteps).
import { decodeToSize } from '../image/image-codec.ts';
import type { SdModel } from '../model/sd-model.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import type { InpaintConditioning } from './denoise.ts';
import { cutTimesteps } from './img2img.ts';
import { maskImage, maskToLatent } from './inpaint.ts';
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
  /** [n, C, h, w], already scaled by init_noise_sigma or noised to the first timestep. */
  latents: Float32Array;
  inpaint?: InpaintConditioning;
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
  return { timesteps: Array.from(ctx.scheduler.timesteps), latents: scaleBy(ctx.drawNoise(), ctx.scheduler.initNoiseSigma) };
}

async function startFromImage(image: ImageInput, strength: number, ctx: StartContext): Promise<Start> {
  const pixels = await unitPixels(image, ctx);
  const timesteps = strengthTimesteps(ctx, strength);
  const imageLatents = await encodeForBatch(pixels, ctx);
  return { timesteps, latents: ctx.scheduler.addNoise(imageLatents, ctx.drawNoise(), timesteps[0]) };
}

/** 4-channel U-Net: after every step the known region is put back, noised to the next timestep (see denoise.ts). */
async function startInpaintingBlend(task: Extract<Task, { kind: 'inpaint' }>, ctx: StartContext): Promise<Start> {
  const pixels = await unitPixels(task.image, ctx);
  const timesteps = strengthTimesteps(ctx, task.strength);
  const imageLatents = await encodeForBatch(pixels, ctx);
  const noise = ctx.drawNoise();
  const latents =
    task.strength >= 1 ? scaleBy(noise, ctx.scheduler.initNoiseSigma) : ctx.scheduler.addNoise(imageLatents, noise, timesteps[0]);
  const mask = await latentMask(task.mask, ctx);
  return { timesteps, latents, inpaint: { kind: 'blend', mask, imageLatents, noise } };
}

/** 9-channel U-Net: it takes the mask and the masked image's latents as extra input channels on every call. */
async function startInpaintingUnet(task: Extract<Task, { kind: 'inpaint' }>, ctx: StartContext): Promise<Start> {
  const pixels = await unitPixels(task.image, ctx);
  const timesteps = strengthTimesteps(ctx, task.strength);
  // At full strength the image's own latents are not needed: the start is pure noise (diffusers skips the encode too).
  const imageLatents = task.strength >= 1 ? null : await encodeForBatch(pixels, ctx);
  const noise = ctx.drawNoise();
  const latents = imageLatents
    ? ctx.scheduler.addNoise(imageLatents, noise, timesteps[0])
    : scaleBy(noise, ctx.scheduler.initNoiseSigma);
  const mask = await decodeToSize(task.mask, ctx.width, ctx.height, 1);
  const masked = maskImage(pixels, mask.data, ctx.width, ctx.height);
  const maskedImageLatents = await encodeForBatch(masked, ctx);
  const [n] = ctx.shape;
  return {
    timesteps,
    latents,
    inpaint: {
      kind: 'unet-inputs',
      mask: repeatBatch(maskToLatent(mask.data, ctx.width, ctx.height, VAE_FACTOR), n),
      maskedImageLatents,
    },
  };
}

/** The image resized to the output size, as float32 CHW in [-1, 1]. */
async function unitPixels(image: ImageInput, ctx: StartContext): Promise<Float32Array> {
  const rgb = await decodeToSize(image, ctx.width, ctx.height, 3);
  const out = new Float32Array(3 * ctx.width * ctx.height);
  rgbToUnitRange(rgb.data, ctx.width, ctx.height, out);
  return out;
}

/** The binarized latent-size mask (white = repaint), once per image of the batch. */
async function latentMask(mask: ImageInput, ctx: StartContext): Promise<Float32Array> {
  const gray = await decodeToSize(mask, ctx.width, ctx.height, 1);
  return repeatBatch(maskToLatent(gray.data, ctx.width, ctx.height, VAE_FACTOR), ctx.shape[0]);
}

/** One image's latents, once per image of the batch (every output starts from the same image). */
async function encodeForBatch(pixels: Float32Array, ctx: StartContext): Promise<Float32Array> {
  const encoded = await encodeImage(ctx.model, pixels, [1, 3, ctx.height, ctx.width]);
  return repeatBatch(encoded.data, ctx.shape[0]);
}

/** The strength cut of the timesteps; refused when it leaves no step to run. */
function strengthTimesteps(ctx: StartContext, strength: number): number[] {
  const { timesteps } = cutTimesteps(ctx.scheduler, ctx.steps, strength);
  if (timesteps.length === 0) {
    throw new InvalidRequestError(
      `strength ${strength} with ${ctx.steps} steps leaves no denoising step; raise strength or steps`,
    );
  }
  return timesteps;
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
