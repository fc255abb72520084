// The Predictor on the Stable Diffusion pipeline: loads the model once, maps a validated RunnerInput onto a
// GenerateRequest (random seed when absent, input images, precomputed embeddings), and encodes the outputs.
import { randomInt } from 'node:crypto';
import { type Size, sizeFromImage } from '@sd/shared/image-size';
import type { ErrorIssue } from '@sd/shared/schemas/errors';
import { DEFAULT_LIMITS } from '@sd/shared/schemas/limits';
import {
  MAX_PROMPT_WINDOWS,
  type PrecomputedEmbeddings,
  type RunnerInput,
  type TokenizedPrompt,
} from '@sd/shared/schemas/runner';
import { decodeTensor, encodeTensor } from '@sd/shared/tensor-format';
import { ensureDefaultModel } from '../default-model/write-model.ts';
import { checkInputImage, encodeImage, MIME_TYPES } from '../image/image-codec.ts';
import { loadInputImage, type OwnOutputs, privateUrlProblem } from '../input-images/input-image.ts';
import type { ExecutionProvider } from '../model/onnx-session.ts';
import { StableDiffusionPipeline } from '../pipeline/pipeline.ts';
import { sideProblem } from '../pipeline/request-checks.ts';
import { clipSkipProblem } from '../pipeline/text-encoding.ts';
import {
  CanceledError,
  type Float32Tensor,
  type GenerateRequest,
  type GenerateResult,
  InvalidRequestError,
} from '../pipeline/types.ts';
import {
  type EncodedOutputImage,
  type PredictContext,
  PredictionCanceledError,
  type Predictor,
  type PredictResult,
} from './predictor.ts';

export interface SdPredictorOptions {
  /** Unset: the embedded default model. */
  modelDir?: string;
  executionProviders: readonly ExecutionProvider[];
  intraOpThreads?: number;
  interOpThreads?: number;
  allowSpinning?: boolean;
  inputFetchTimeoutMs: number;
  /** Input image URLs may name private addresses (ALLOW_PRIVATE_IMAGE_URLS). */
  allowPrivateImageUrls?: boolean;
  /** The runner's own output storage: its outputs' URLs are read back through it when given as inputs. */
  ownOutputs?: OwnOutputs;
}

const EXTENSIONS = { png: 'png', webp: 'webp', jpeg: 'jpg' } as const;

/** Image i uses seed + i, so a random seed leaves room for every output below 2^32. */
function randomSeed(numOutputs: number): number {
  return randomInt(0, 2 ** 32 - numOutputs);
}

export class SdPredictor implements Predictor {
  private pipeline: StableDiffusionPipeline | null = null;

  constructor(private readonly options: SdPredictorOptions) {}

  async setup(log: (line: string) => void): Promise<void> {
    const started = performance.now();
    const dir = this.options.modelDir ?? (await ensureDefaultModel());
    log(`Loading model from ${dir}${this.options.modelDir ? '' : ' (embedded default model)'}`);
    this.pipeline = await StableDiffusionPipeline.load(dir, {
      executionProviders: this.options.executionProviders,
      intraOpNumThreads: this.options.intraOpThreads,
      interOpNumThreads: this.options.interOpThreads,
      allowSpinning: this.options.allowSpinning ?? false,
      logger: (level, message) => log(`${level}: ${message}`),
    });
    log(
      `Model loaded in ${((performance.now() - started) / 1000).toFixed(2)} s (default scheduler ${this.pipeline.defaultScheduler})`,
    );
  }

  checkInput(input: RunnerInput): ErrorIssue[] {
    const pipeline = this.pipeline;
    if (!pipeline) return [];
    const issues: ErrorIssue[] = [];
    const { vocabSize, modelMaxLength } = pipeline.tokenizer;
    const seq = pipeline.model.io.text.sequenceLength ?? modelMaxLength;
    for (const field of ['prompt_tokens', 'negative_prompt_tokens'] as const) {
      const problem = tokenWindowProblem(`input.${field}`, input[field], vocabSize, seq);
      if (problem) issues.push(problem);
    }
    const tokens = input.embeddings?.prompt.shape[1];
    if (tokens !== undefined && (tokens % seq !== 0 || tokens / seq > MAX_PROMPT_WINDOWS)) {
      issues.push({
        field: 'input.embeddings.prompt.shape',
        message: `input.embeddings.prompt.shape[1] must be ${seq} tokens x 1 to ${MAX_PROMPT_WINDOWS} windows, got ${tokens}`,
      });
    }
    for (const field of ['width', 'height'] as const) {
      const value = input[field];
      const problem = value === undefined ? null : sideProblem(field, value, pipeline.sideMultiple);
      if (problem) issues.push({ field: `input.${field}`, message: problem });
    }
    const clipSkip = input.clip_skip === undefined ? null : clipSkipProblem(pipeline.model, input.clip_skip);
    if (clipSkip) issues.push({ field: 'input.clip_skip', message: clipSkip });
    if (!this.options.allowPrivateImageUrls) {
      for (const field of ['image', 'mask'] as const) {
        const ref = input[field];
        const problem = ref === undefined ? null : privateUrlProblem(field, ref, this.options.ownOutputs);
        if (problem) issues.push({ field: `input.${field}`, message: problem });
      }
    }
    return issues;
  }

  async predict(input: RunnerInput, ctx: PredictContext): Promise<PredictResult> {
    const pipeline = this.pipeline;
    if (!pipeline) throw new Error('predict called before setup finished');
    const started = performance.now();
    const seed = input.seed ?? randomSeed(input.num_outputs);
    ctx.log(`Using seed: ${seed}`);
    if (input.disable_safety_checker !== undefined) {
      // Replicate's SD models take the flag; there is nothing here for it to switch.
      ctx.log('disable_safety_checker: this pipeline has no safety checker; outputs are never filtered');
    }
    const images = await this.loadImages(input, ctx.signal);
    const size = outputSize(input, images.imageSize, pipeline.nativeSize, pipeline.sideMultiple);
    const request = generateRequest(input, seed, images, size);
    let result: GenerateResult;
    try {
      result = await pipeline.generate(request, {
        signal: ctx.signal,
        onProgress: (p) => ctx.onProgress({ step: p.step, total: p.total }),
      });
    } catch (err) {
      if (err instanceof CanceledError) throw new PredictionCanceledError(`canceled before step ${err.step}`);
      if (ctx.signal.aborted) throw new PredictionCanceledError('canceled');
      if (err instanceof InvalidRequestError) throw err;
      // Anything else is ours or onnxruntime's (its messages name source files, graph nodes and shapes): the runner's
      // log gets it as the cause, the caller a message that says what failed without the internals.
      throw new Error('the model failed while generating: an internal error (the runner log has the details)', {
        cause: err,
      });
    }
    ctx.log(`Scheduler: ${result.scheduler}; text encoder ${result.textEncoderSkipped ? 'skipped (embeddings given)' : 'ran'}`);
    const outputs = await encodeOutputs(result, input);
    const seconds = (ms: number) => Math.round(ms) / 1000;
    ctx.log(
      `Generated ${outputs.length} image(s) of ${result.width}x${result.height} in ${seconds(performance.now() - started)} s`,
    );
    return {
      images: outputs,
      seeds: result.images.map((i) => i.seed),
      embeddings: result.embeddings ? encodeEmbeddings(result.embeddings) : undefined,
      metrics: {
        predict_time: seconds(performance.now() - started),
        text_encoder_time: seconds(result.timings.textEncoderMs),
        unet_time: seconds(result.timings.unetMs),
        vae_time: seconds(result.timings.vaeMs),
        embedding_cache: result.textEncoderSkipped ? 'hit' : 'miss',
      },
    };
  }

  /** The image and mask bytes, with the image's size; each header checked (a non-image or a bomb is refused by name). */
  private async loadImages(input: RunnerInput, signal: AbortSignal): Promise<InputImages> {
    const limits = {
      maxBytes: DEFAULT_LIMITS.maxImageBytes,
      timeoutMs: this.options.inputFetchTimeoutMs,
      allowPrivateAddresses: this.options.allowPrivateImageUrls,
      ownOutputs: this.options.ownOutputs,
    };
    const image = input.image ? await loadInputImage('image', input.image, limits, signal) : undefined;
    const mask = input.mask ? await loadInputImage('mask', input.mask, limits, signal) : undefined;
    // Headers only, before anything is decoded.
    const imageSize = image ? await checkInputImage('image', image) : undefined;
    if (mask) await checkInputImage('mask', mask);
    return { image, mask, imageSize };
  }
}

interface InputImages {
  image?: Uint8Array;
  mask?: Uint8Array;
  imageSize?: Size;
}

/**
 * The output's width and height: as given; a side left out comes from the input image (img2img, as diffusers: the
 * image's own size, fitted into the limits, the caller's pixel budget (max_pixels) and the sides the U-Net takes), else
 * the model's native size (what it was trained at; larger is not better for a small model).
 */
function outputSize(input: RunnerInput, imageSize: Size | undefined, nativeSize: number, sideMultiple: number): Size {
  if (imageSize) {
    const maxPixels = Math.min(DEFAULT_LIMITS.maxPixels, input.max_pixels ?? Number.POSITIVE_INFINITY);
    return sizeFromImage(imageSize, { width: input.width, height: input.height }, { ...DEFAULT_LIMITS, maxPixels, sideMultiple });
  }
  return { width: input.width ?? nativeSize, height: input.height ?? nativeSize };
}

/** The pipeline's request for a validated input. */
function generateRequest(input: RunnerInput, seed: number, images: InputImages, size: Size): GenerateRequest {
  const { image, mask } = images;
  return {
    prompt: input.prompt,
    negativePrompt: input.negative_prompt,
    promptTokens: input.prompt_tokens,
    negativePromptTokens: input.negative_prompt_tokens,
    width: size.width,
    height: size.height,
    steps: input.num_inference_steps,
    guidanceScale: input.guidance_scale,
    guidanceEnd: input.guidance_end,
    scheduler: input.scheduler,
    seed,
    numOutputs: input.num_outputs,
    image: image ? { kind: 'encoded', bytes: image } : undefined,
    mask: mask ? { kind: 'encoded', bytes: mask } : undefined,
    strength: image ? input.strength : undefined,
    promptMode: input.prompt_mode,
    promptWeighting: input.prompt_weighting,
    clipSkip: input.clip_skip,
    embeddings: input.embeddings
      ? { cond: decodeTensor(input.embeddings.prompt), uncond: decodeTensor(input.embeddings.negative) }
      : undefined,
    returnEmbeddings: input.return_embeddings,
  };
}

/** Each image in the requested format. */
async function encodeOutputs(result: GenerateResult, input: RunnerInput): Promise<EncodedOutputImage[]> {
  const format = input.output_format;
  const outputs: EncodedOutputImage[] = [];
  for (const image of result.images) {
    const bytes = await encodeImage(image.rgb, result.width, result.height, format, input.output_quality);
    outputs.push({ bytes, contentType: MIME_TYPES[format], extension: EXTENSIONS[format] });
  }
  return outputs;
}

/** Both halves of the guidance pair, as the edge caches them; without guidance there is no negative half to cache. */
function encodeEmbeddings(e: { cond: Float32Tensor; uncond?: Float32Tensor }): PrecomputedEmbeddings | undefined {
  if (!e.uncond) return undefined;
  return { prompt: encodeTensor(e.cond.data, e.cond.shape), negative: encodeTensor(e.uncond.data, e.uncond.shape) };
}

/** The first problem of a caller's token windows against the loaded tokenizer, or null. */
function tokenWindowProblem(
  field: string,
  tokens: TokenizedPrompt | undefined,
  vocabSize: number,
  seq: number,
): ErrorIssue | null {
  if (!tokens) return null;
  for (const [w, ids] of tokens.ids.entries()) {
    if (ids.length !== seq)
      return {
        field: `${field}.ids.${w}`,
        message: `${field}.ids[${w}] must hold ${seq} token ids (one window), got ${ids.length}`,
      };
    const bad = ids.findIndex((id) => id >= vocabSize);
    if (bad >= 0) {
      return {
        field: `${field}.ids.${w}`,
        message: `${field}.ids[${w}][${bad}] must be a token id below the vocabulary size ${vocabSize}, got ${ids[bad]}`,
      };
    }
  }
  return null;
}
