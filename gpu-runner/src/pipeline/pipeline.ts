// StableDiffusionPipeline: load a diffusers ONNX model once, then generate images from requests.
// Reads top to bottom like diffusers' __call__: check inputs, encode text, prepare latents, denoise, decode.
import { decodeToSize } from '../image/image-codec.ts';
import { processCpuMs, type SessionConfig } from '../model/onnx-session.ts';
import { loadSdModel, type SdModel } from '../model/sd-model.ts';
import { GeneratorNoise } from '../random/torch-generator.ts';
import { createScheduler, schedulerNameFromConfig } from '../schedulers/index.ts';
import type { NoiseSource, Scheduler } from '../schedulers/scheduler.ts';
import { denoise, type InpaintConditioning } from './denoise.ts';
import { cutTimesteps } from './img2img.ts';
import { maskImage, maskToLatent } from './inpaint.ts';
import { encodeText, type TextEmbeddings } from './text-encoding.ts';
import { loadTokenizer, type PromptTokenizer } from './tokenizer-adapter.ts';
import {
  type Float32Tensor,
  type GeneratedImage,
  type GenerateOptions,
  type GenerateRequest,
  type GenerateResult,
  InvalidRequestError,
  type PromptTokens,
} from './types.ts';
import { decodeLatents, encodeImage, rgbToUnitRange, toUint8Rgb } from './vae.ts';

export interface PipelineOptions extends SessionConfig {
  /** Decode all images in one VAE call instead of one at a time (faster on a GPU, more memory). */
  vaeBatched?: boolean;
}

/** The VAE downsamples by 8 in every SD 1.x / 2.x / Turbo model. */
const VAE_FACTOR = 8;

export class StableDiffusionPipeline {
  private constructor(
    readonly model: SdModel,
    readonly tokenizer: PromptTokenizer,
    private readonly options: PipelineOptions,
    /** Canonical name of the model's own scheduler. */
    readonly defaultScheduler: string,
  ) {}

  static async load(modelDir: string, options: PipelineOptions = {}): Promise<StableDiffusionPipeline> {
    const model = await loadSdModel(modelDir, options);
    const tokenizer = loadTokenizer(model.files.tokenizer, model.files.dir);
    const defaultScheduler = schedulerNameFromConfig(model.files.schedulerConfig);
    return new StableDiffusionPipeline(model, tokenizer, options, defaultScheduler);
  }

  /**
   * The width and height the model was trained at: its U-Net's sample_size (latent pixels, diffusers' convention)
   * times the VAE factor; 512 (SD 1.x) when the export has no unet/config.json or no sample_size in it.
   */
  get nativeSize(): number {
    const latent = this.model.files.unetConfig?.sample_size;
    return typeof latent === 'number' && Number.isInteger(latent) && latent > 0 ? latent * VAE_FACTOR : 512;
  }

  async release(): Promise<void> {
    await this.model.release();
  }

  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerateResult> {
    const started = performance.now();
    const startedCpu = processCpuMs();
    const { model } = this;
    const n = request.numOutputs ?? 1;
    const { width, height } = request;
    this.check(request, n);
    const c = model.io.latentChannels;
    const shape: [number, number, number, number] = [n, c, height / VAE_FACTOR, width / VAE_FACTOR];
    const latentSize = shape.reduce((a, b) => a * b, 1);
    const guided = request.guidanceScale > 1;

    // 1. Scheduler: the requested one, built from the model's scheduler_config.json (diffusers from_config).
    let scheduler: Scheduler;
    try {
      scheduler = createScheduler(request.scheduler ?? this.defaultScheduler, {
        ...model.files.schedulerConfig,
        ...request.schedulerConfig,
      });
    } catch (err) {
      throw new InvalidRequestError((err as Error).message);
    }

    // 2. Text embeddings: given (cache hit) or computed in one batched call.
    const text = await this.textEmbeddings(request, guided);

    // 3. Timesteps and start latents. One generator per image (seed + i) feeds both the start noise and the
    //    scheduler's per-step noise, in diffusers' order.
    const seeds = Array.from({ length: n }, (_, i) => request.seed + i);
    const generators = GeneratorNoise.fromSeeds(seeds);
    const schedulerNoise: NoiseSource = request.schedulerNoise ?? generators;
    scheduler.setTimesteps(request.steps);
    let timesteps: number[] = Array.from(scheduler.timesteps);
    const drawNoise = (): Float32Array => {
      if (!request.initLatents) return generators.randn(shape);
      if (request.initLatents.length !== latentSize) {
        throw new InvalidRequestError(
          `initLatents must hold [${shape.join(', ')}] = ${latentSize} values, got ${request.initLatents.length}`,
        );
      }
      return request.initLatents;
    };
    let vaeMs = 0;
    let vaeCpuMs = 0;
    let latents: Float32Array;
    let inpaint: InpaintConditioning | undefined;

    if (!request.image) {
      latents = scaleBy(drawNoise(), scheduler.initNoiseSigma);
    } else {
      const t0 = performance.now();
      const c0 = processCpuMs();
      const pixels = await decodeToSize(request.image, width, height, 3);
      const imagePixels = new Float32Array(3 * width * height);
      rgbToUnitRange(pixels.data, width, height, imagePixels);
      const strength = request.strength ?? (request.mask ? 1 : 0.8);
      const fullStrength = strength >= 1;
      timesteps = cutTimesteps(scheduler, request.steps, strength).timesteps;
      if (timesteps.length === 0) {
        throw new InvalidRequestError(
          `strength ${strength} with ${request.steps} steps leaves no denoising step; raise strength or steps`,
        );
      }
      const needImageLatents = !model.io.isInpainting || !fullStrength || !request.mask;
      const imageLatents = needImageLatents
        ? repeat((await encodeImage(model, imagePixels, [1, 3, height, width])).data, n)
        : null;
      const noise = drawNoise();
      latents =
        fullStrength && request.mask
          ? scaleBy(noise, scheduler.initNoiseSigma)
          : scheduler.addNoise(imageLatents!, noise, timesteps[0]);

      if (request.mask) {
        const mask = await decodeToSize(request.mask, width, height, 1);
        const latentMask = repeat(maskToLatent(mask.data, width, height, VAE_FACTOR), n);
        if (model.io.isInpainting) {
          const masked = maskImage(imagePixels, mask.data, width, height);
          const maskedLatents = (await encodeImage(model, masked, [1, 3, height, width])).data;
          inpaint = { kind: 'unet-inputs', mask: latentMask, maskedImageLatents: repeat(maskedLatents, n) };
        } else {
          inpaint = { kind: 'blend', mask: latentMask, imageLatents: imageLatents!, noise };
        }
      } else if (model.io.isInpainting) {
        throw new InvalidRequestError('this is an inpainting model (9-channel U-Net): give it a mask with the image');
      }
      vaeMs += performance.now() - t0;
      vaeCpuMs += processCpuMs() - c0;
    }
    if (!request.image && model.io.isInpainting) {
      throw new InvalidRequestError('this is an inpainting model (9-channel U-Net): it needs an image and a mask');
    }

    // 4. The denoising loop.
    const loopStart = performance.now();
    const loopCpuStart = processCpuMs();
    const loopRunCpuStart = model.unet.runCpuMs;
    const loop = await denoise({
      model,
      scheduler,
      timesteps,
      latents,
      shape,
      cond: text.cond,
      uncond: guided ? text.uncond : undefined,
      guidanceScale: request.guidanceScale,
      noise: schedulerNoise,
      inpaint,
      onProgress: options.onProgress,
      signal: options.signal,
    });
    const unetMs = performance.now() - loopStart;
    const unetCpuMs = processCpuMs() - loopCpuStart;

    // 5. Decode and quantize.
    const t1 = performance.now();
    const c1 = processCpuMs();
    const decoded = await decodeLatents(model, loop.latents, shape, { batched: this.options.vaeBatched });
    vaeMs += performance.now() - t1;
    vaeCpuMs += processCpuMs() - c1;
    const [, , outH, outW] = decoded.shape;
    const per = 3 * outH * outW;
    const images: GeneratedImage[] = seeds.map((seed, i) => ({
      seed,
      decoded: decoded.data.subarray(i * per, (i + 1) * per),
      rgb: toUint8Rgb(decoded.data, outW, outH, i * per),
    }));

    return {
      width: outW,
      height: outH,
      images,
      latents: { data: loop.latents, shape: [...shape] },
      embeddings: request.returnEmbeddings ? { cond: text.cond, ...(text.uncond ? { uncond: text.uncond } : {}) } : undefined,
      textEncoderSkipped: text.skipped,
      scheduler: scheduler.name,
      timings: {
        textEncoderMs: text.ms,
        unetMs,
        vaeMs,
        totalMs: performance.now() - started,
        stepWallMs: loop.stepWallMs,
        stepRunMs: loop.stepRunMs,
        totalCpuMs: processCpuMs() - startedCpu,
        unetCpuMs,
        unetRunCpuMs: model.unet.runCpuMs - loopRunCpuStart,
        vaeCpuMs,
      },
      unetBatchSizes: loop.unetBatchSizes,
    };
  }

  /** Tokenizes a prompt (or takes the edge's tokens) into the model's windows. */
  tokenize(prompt: string, request: Pick<GenerateRequest, 'promptMode' | 'promptWeighting'>): PromptTokens {
    const t = this.tokenizer.tokenizePrompt(prompt, {
      mode: request.promptMode ?? 'truncate',
      weighting: request.promptWeighting ?? true,
    });
    return { ids: t.ids, weights: t.weights };
  }

  private async textEmbeddings(
    request: GenerateRequest,
    guided: boolean,
  ): Promise<Omit<TextEmbeddings, 'ms'> & { ms: number; skipped: boolean }> {
    const given = request.embeddings;
    if (given) {
      if (guided && !given.uncond) throw new InvalidRequestError('embeddings.uncond is required when guidance_scale > 1');
      checkEmbedding('embeddings.cond', given.cond, this.model.io.text.hiddenSize);
      if (given.uncond) checkEmbedding('embeddings.uncond', given.uncond, this.model.io.text.hiddenSize);
      if (guided && given.uncond && given.uncond.shape[1] !== given.cond.shape[1]) {
        throw new InvalidRequestError(
          `embeddings.uncond has ${given.uncond.shape[1]} tokens, embeddings.cond ${given.cond.shape[1]}; they must match`,
        );
      }
      return { cond: given.cond, uncond: given.uncond, ms: 0, skipped: true };
    }
    const cond = request.promptTokens ?? this.tokenize(request.prompt, request);
    const uncond = guided ? (request.negativePromptTokens ?? this.tokenize(request.negativePrompt ?? '', request)) : null;
    const empty = this.tokenizer.tokenizePrompt('', { mode: 'truncate', weighting: false }).ids[0];
    const enc = await encodeText(this.model, cond, uncond, empty, request.clipSkip ?? 1);
    return { ...enc, skipped: false };
  }

  private check(r: GenerateRequest, n: number): void {
    const bad = (msg: string): never => {
      throw new InvalidRequestError(msg);
    };
    for (const [name, v] of [
      ['width', r.width],
      ['height', r.height],
    ] as const) {
      if (!Number.isInteger(v) || v % VAE_FACTOR !== 0 || v < 64 || v > 2048)
        bad(`${name} must be a multiple of 8 between 64 and 2048, got ${v}`);
    }
    if (!Number.isInteger(r.steps) || r.steps < 1 || r.steps > 500)
      bad(`steps must be an integer between 1 and 500, got ${r.steps}`);
    if (!Number.isFinite(r.guidanceScale) || r.guidanceScale < 0)
      bad(`guidanceScale must be a finite number >= 0, got ${r.guidanceScale}`);
    if (!Number.isSafeInteger(r.seed) || r.seed < 0) bad(`seed must be a non-negative integer, got ${r.seed}`);
    if (!Number.isInteger(n) || n < 1 || n > 16) bad(`numOutputs must be an integer between 1 and 16, got ${n}`);
    if (r.strength !== undefined && !(r.strength >= 0 && r.strength <= 1))
      bad(`strength must be between 0 and 1, got ${r.strength}`);
    if (r.mask && !r.image) bad('mask needs an image to inpaint');
  }
}

function checkEmbedding(name: string, t: Float32Tensor, hidden: number | null): void {
  const [b, l, h] = t.shape;
  if (t.shape.length !== 3 || b !== 1 || !(l > 0) || (hidden !== null && h !== hidden) || t.data.length !== b * l * h) {
    throw new InvalidRequestError(
      `${name} must be float32 [1, tokens, ${hidden ?? 'hidden'}] with matching data, got shape [${t.shape.join(', ')}] and ${t.data.length} values`,
    );
  }
}

/** x * float32(s), as numpy multiplies a float32 array by a Python float. */
function scaleBy(x: Float32Array, s: number): Float32Array {
  if (s === 1) return x.slice();
  const f = Math.fround(s);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * f;
  return out;
}

/** One item's tensor repeated n times along the batch. */
function repeat(item: Float32Array, n: number): Float32Array {
  if (n === 1) return item;
  const out = new Float32Array(item.length * n);
  for (let i = 0; i < n; i++) out.set(item, i * item.length);
  return out;
}
