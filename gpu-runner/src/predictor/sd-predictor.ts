// The Predictor on the Stable Diffusion pipeline: loads the model once, maps a validated RunnerInput onto a
// GenerateRequest (random seed when absent, input images, precomputed embeddings), and encodes the outputs.
import { randomInt } from 'node:crypto';
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
import { loadInputImage, privateUrlProblem } from '../input-images/input-image.ts';
import type { ExecutionProvider } from '../model/onnx-session.ts';
import { StableDiffusionPipeline } from '../pipeline/pipeline.ts';
import { clipSkipProblem } from '../pipeline/text-encoding.ts';
import { CanceledError, type Float32Tensor, type GenerateRequest } from '../pipeline/types.ts';
import { type PredictContext, PredictionCanceledError, type Predictor, type PredictResult } from './predictor.ts';

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
    const clipSkip = input.clip_skip === undefined ? null : clipSkipProblem(pipeline.model, input.clip_skip);
    if (clipSkip) issues.push({ field: 'input.clip_skip', message: clipSkip });
    if (!this.options.allowPrivateImageUrls) {
      for (const field of ['image', 'mask'] as const) {
        const ref = input[field];
        const problem = ref === undefined ? null : privateUrlProblem(field, ref);
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

    const limits = {
      maxBytes: DEFAULT_LIMITS.maxImageBytes,
      timeoutMs: this.options.inputFetchTimeoutMs,
      allowPrivateAddresses: this.options.allowPrivateImageUrls,
    };
    const image = input.image ? await loadInputImage('image', input.image, limits, ctx.signal) : undefined;
    const mask = input.mask ? await loadInputImage('mask', input.mask, limits, ctx.signal) : undefined;
    // Headers only: a non-image or a decompression bomb is refused, naming the field, before anything is decoded.
    if (image) await checkInputImage('image', image);
    if (mask) await checkInputImage('mask', mask);

    const request: GenerateRequest = {
      prompt: input.prompt,
      negativePrompt: input.negative_prompt,
      promptTokens: input.prompt_tokens,
      negativePromptTokens: input.negative_prompt_tokens,
      // Absent: the model's native size (what it was trained at; larger is not better for a small model).
      width: input.width ?? pipeline.nativeSize,
      height: input.height ?? pipeline.nativeSize,
      steps: input.num_inference_steps,
      guidanceScale: input.guidance_scale,
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

    let result: Awaited<ReturnType<StableDiffusionPipeline['generate']>>;
    try {
      result = await pipeline.generate(request, {
        signal: ctx.signal,
        onProgress: (p) => ctx.onProgress({ step: p.step, total: p.total }),
      });
    } catch (err) {
      if (err instanceof CanceledError || ctx.signal.aborted)
        throw new PredictionCanceledError(`canceled before step ${(err as CanceledError).step ?? '?'}`);
      throw err;
    }
    ctx.log(`Scheduler: ${result.scheduler}; text encoder ${result.textEncoderSkipped ? 'skipped (embeddings given)' : 'ran'}`);

    const format = input.output_format;
    const images = [];
    for (const img of result.images) {
      const bytes = await encodeImage(img.rgb, result.width, result.height, format, input.output_quality);
      images.push({ bytes, contentType: MIME_TYPES[format], extension: EXTENSIONS[format] });
    }
    const seconds = (ms: number) => Math.round(ms) / 1000;
    ctx.log(
      `Generated ${images.length} image(s) of ${result.width}x${result.height} in ${seconds(performance.now() - started)} s`,
    );
    return {
      images,
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
