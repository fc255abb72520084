// StableDiffusionPipeline: load a diffusers ONNX model once, then generate images from requests.
// Reads top to bottom like diffusers' __call__: check inputs, encode text, prepare latents (per task), denoise,
// decode. The task-specific part is the start of the loop (start-latents.ts); every other stage is shared.

import { errorMessage } from '@sd/shared/error-message';
import type { PipelineTask } from '../model/model-dir.ts';
import type { SessionConfig } from '../model/onnx-session.ts';
import { loadSdModel, type SdModel } from '../model/sd-model.ts';
import { GeneratorNoise } from '../random/torch-generator.ts';
import { createScheduler, schedulerNameFromConfig } from '../schedulers/index.ts';
import type { NoiseSource, Scheduler } from '../schedulers/scheduler.ts';
import { denoise } from './denoise.ts';
import { overlayInput } from './inpaint.ts';
import { checkGivenEmbeddings, checkInitLatents, checkRequest, sideMultipleOf } from './request-checks.ts';
import { prepareStart, type Start, type StartContext, VAE_FACTOR } from './start-latents.ts';
import { type Task, taskOf } from './task.ts';
import { encodeText, type TextEmbeddings } from './text-encoding.ts';
import { startClock, timed } from './timing.ts';
import { loadTokenizer, type PromptTokenizer } from './tokenizer-adapter.ts';
import {
  type GeneratedImage,
  type GenerateOptions,
  type GenerateRequest,
  type GenerateResult,
  InvalidRequestError,
  type LatentShape,
  type PromptTokens,
} from './types.ts';
import { decodeLatents, toUint8Rgb } from './vae.ts';

export interface PipelineOptions extends SessionConfig {
  /** Decode all images in one VAE call instead of one at a time (faster on a GPU, more memory). */
  vaeBatched?: boolean;
}

/** What one generation runs: decided from the request before any model is called. */
interface RunPlan {
  task: Task;
  scheduler: Scheduler;
  shape: LatentShape;
  /** Image i uses seed + i. */
  seeds: number[];
  /** Classifier-free guidance: an uncond pass beside every cond pass. */
  guided: boolean;
  /** One generator per image feeds both the start noise and the scheduler's per-step noise, in diffusers' order. */
  generators: GeneratorNoise;
}

type TextConditioning = TextEmbeddings & { skipped: boolean };

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

  /** The fraction of steps guided when a request does not say: the model's pipeline_defaults.json, else 1 (all). */
  defaultGuidanceEnd(task: PipelineTask = 'txt2img'): number {
    return this.model.files.pipelineDefaults.guidanceEnd?.[task] ?? 1;
  }

  /** What width and height must be multiples of for this model's U-Net (request-checks.ts sideMultipleOf). */
  get sideMultiple(): number {
    return sideMultipleOf(this.model.files.unetConfig);
  }

  async release(): Promise<void> {
    await this.model.release();
  }

  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerateResult> {
    const clock = startClock();
    const { model } = this;
    // 1. Check inputs and decide the task, the scheduler and the shapes.
    const plan = this.plan(request);
    // 2. Text embeddings: given (cache hit) or computed in one batched call.
    const text = await this.textEmbeddings(request, plan.guided);
    // 3. The task's start: timesteps, start latents, inpainting inputs.
    const start = await timed(() => prepareStart(plan.task, this.startContext(request, plan)));
    // 4. The denoising loop.
    const unetRunCpuBefore = model.unet.runCpuMs;
    const loop = await timed(() =>
      denoise({
        model,
        scheduler: plan.scheduler,
        timesteps: start.value.timesteps,
        latents: start.value.latents,
        shape: plan.shape,
        cond: text.cond,
        uncond: plan.guided ? text.uncond : undefined,
        guidanceScale: request.guidanceScale,
        guidanceEnd: request.guidanceEnd ?? this.defaultGuidanceEnd(plan.task.kind),
        noise: request.schedulerNoise ?? plan.generators,
        inpaint: start.value.inpaint,
        progressSteps: start.value.steps,
        onProgress: options.onProgress,
        signal: options.signal,
      }),
    );
    const unetRunCpuMs = model.unet.runCpuMs - unetRunCpuBefore;
    // 5. Decode and quantize.
    const decoded = await timed(() => decodeLatents(model, loop.value.latents, plan.shape, { batched: this.options.vaeBatched }));
    const [, , height, width] = decoded.value.shape;
    // The start's own time is VAE encoding for the tasks that start from an image; txt2img only draws noise.
    const encode = plan.task.kind === 'txt2img' ? { wallMs: 0, cpuMs: 0 } : start;
    const total = clock.elapsed();
    return {
      width,
      height,
      images: splitImages(decoded.value.data, plan.seeds, width, height, start.value.overlay),
      latents: { data: loop.value.latents, shape: [...plan.shape] },
      embeddings: request.returnEmbeddings ? { cond: text.cond, ...(text.uncond ? { uncond: text.uncond } : {}) } : undefined,
      textEncoderSkipped: text.skipped,
      scheduler: plan.scheduler.name,
      timings: {
        textEncoderMs: text.ms,
        unetMs: loop.wallMs,
        vaeMs: encode.wallMs + decoded.wallMs,
        totalMs: total.wallMs,
        stepWallMs: loop.value.stepWallMs,
        stepRunMs: loop.value.stepRunMs,
        totalCpuMs: total.cpuMs,
        unetCpuMs: loop.cpuMs,
        unetRunCpuMs,
        vaeCpuMs: encode.cpuMs + decoded.cpuMs,
      },
      unetBatchSizes: loop.value.unetBatchSizes,
    };
  }

  /** Tokenizes a prompt (or takes the edge's tokens) into the model's windows. */
  tokenize(prompt: string, request: Pick<GenerateRequest, 'promptMode' | 'promptWeighting'>): PromptTokens {
    const tokens = this.tokenizer.tokenizePrompt(prompt, {
      mode: request.promptMode ?? 'truncate',
      weighting: request.promptWeighting ?? true,
    });
    return { ids: tokens.ids, weights: tokens.weights };
  }

  private plan(request: GenerateRequest): RunPlan {
    const numOutputs = request.numOutputs ?? 1;
    checkRequest(request, numOutputs, this.sideMultiple);
    const { model } = this;
    const task = taskOf(request, model.io.isInpainting);
    const shape: LatentShape = [numOutputs, model.io.latentChannels, request.height / VAE_FACTOR, request.width / VAE_FACTOR];
    if (request.initLatents) checkInitLatents(request.initLatents, shape);
    // The requested scheduler, built from the model's scheduler_config.json (diffusers from_config).
    let scheduler: Scheduler;
    try {
      scheduler = createScheduler(request.scheduler ?? this.defaultScheduler, {
        ...model.files.schedulerConfig,
        ...request.schedulerConfig,
      });
    } catch (err) {
      throw new InvalidRequestError(errorMessage(err));
    }
    scheduler.setTimesteps(request.steps);
    const seeds = Array.from({ length: numOutputs }, (_, i) => request.seed + i);
    return { task, scheduler, shape, seeds, guided: request.guidanceScale > 1, generators: GeneratorNoise.fromSeeds(seeds) };
  }

  private startContext(request: GenerateRequest, plan: RunPlan): StartContext {
    const { initLatents } = request;
    const noise: NoiseSource = plan.generators;
    return {
      model: this.model,
      scheduler: plan.scheduler,
      steps: request.steps,
      width: request.width,
      height: request.height,
      shape: plan.shape,
      drawNoise: () => initLatents ?? noise.randn(plan.shape),
    };
  }

  private async textEmbeddings(request: GenerateRequest, guided: boolean): Promise<TextConditioning> {
    const given = request.embeddings;
    if (given) {
      checkGivenEmbeddings(given, guided, this.model.io.text.hiddenSize);
      return { cond: given.cond, uncond: given.uncond, ms: 0, skipped: true };
    }
    const cond = request.promptTokens ?? this.tokenize(request.prompt, request);
    const uncond = guided ? (request.negativePromptTokens ?? this.tokenize(request.negativePrompt ?? '', request)) : null;
    const empty = this.tokenizer.tokenizePrompt('', { mode: 'truncate', weighting: false }).ids[0];
    const encoded = await encodeText(this.model, cond, uncond, empty, request.clipSkip ?? 1);
    return { ...encoded, skipped: false };
  }
}

/**
 * The decoder's [n, 3, H, W] output as one image per seed: its float plane and its 8-bit RGB. Inpainting puts the
 * input back over the RGB outside the (softened) mask, as AUTOMATIC1111 and diffusers' apply_overlay do: the VAE's
 * round trip would otherwise change every pixel of the image, not only the repainted ones.
 */
function splitImages(
  decoded: Float32Array,
  seeds: readonly number[],
  width: number,
  height: number,
  overlay: Start['overlay'],
): GeneratedImage[] {
  const perImage = 3 * width * height;
  return seeds.map((seed, i) => {
    const rgb = toUint8Rgb(decoded, width, height, i * perImage);
    return {
      seed,
      decoded: decoded.subarray(i * perImage, (i + 1) * perImage),
      rgb: overlay ? overlayInput(rgb, overlay.input, overlay.weights) : rgb,
    };
  });
}
