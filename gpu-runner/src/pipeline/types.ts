// Request and result types of the pipeline core (plain TypeScript: the HTTP layer validates with zod and maps here).
import type { NoiseSource } from '../schedulers/scheduler.ts';

/** Latents' shape: [batch, channels, height / 8, width / 8]. */
export type LatentShape = readonly [number, number, number, number];

/** A float32 tensor, row-major. */
export interface Float32Tensor {
  data: Float32Array;
  shape: number[];
}

/** An input image: raw pixels (any size, resized as needed) or encoded PNG/JPEG/WebP bytes. */
export type ImageInput =
  | { kind: 'pixels'; data: Uint8Array; width: number; height: number; channels: 1 | 3 | 4 }
  | { kind: 'encoded'; bytes: Uint8Array };

/** Token windows already produced by a CLIP tokenizer (the edge tokenizes; the runner can skip that step). */
export interface PromptTokens {
  /** Windows of the model's sequence length (77), BOS ... EOS pad. */
  ids: number[][];
  /** Per-token weights, same shape as ids; absent = all 1. */
  weights?: number[][];
}

export type PromptMode = 'truncate' | 'chunk';

export interface GenerateRequest {
  prompt: string;
  negativePrompt?: string;
  /** Pre-tokenized prompts; when present they are used instead of tokenizing prompt/negativePrompt. */
  promptTokens?: PromptTokens;
  negativePromptTokens?: PromptTokens;
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  /**
   * Fraction of the denoising steps, from the first, that run with classifier-free guidance; the rest run the
   * conditional prediction alone (half the U-Net batch). Default: the model's pipeline_defaults.json, else 1.
   */
  guidanceEnd?: number;
  /** Canonical name or alias; default: the model's own (scheduler_config.json). */
  scheduler?: string;
  /** Image i uses seed + i. */
  seed: number;
  numOutputs?: number;
  /** img2img / inpainting source image. */
  image?: ImageInput;
  /** Inpainting mask: white = repaint, black = keep. */
  mask?: ImageInput;
  /** img2img / inpainting strength in [0, 1]; default 0.8 (img2img) / 1 (inpainting). */
  strength?: number;
  promptMode?: PromptMode;
  /** Parse (word:1.2) weights. Default true. */
  promptWeighting?: boolean;
  /** Text-encoder layer to condition on, counted as AUTOMATIC1111 does: 1 = last (default), 2 = penultimate. */
  clipSkip?: number;
  /** Precomputed text embeddings (the edge's cache); the text encoder is skipped when both are given. */
  embeddings?: { cond: Float32Tensor; uncond?: Float32Tensor };
  /** Return the embeddings that were computed (cache miss). */
  returnEmbeddings?: boolean;
  /**
   * Like diffusers' `latents`: noise of shape [numOutputs, C, H/8, W/8] used instead of the seeded draw.
   * txt2img multiplies it by init_noise_sigma; img2img/inpainting use it as the noise added to the image latents.
   */
  initLatents?: Float32Array;
  /** Replaces the seeded per-step scheduler noise (tests use it to inject reference noise). */
  schedulerNoise?: NoiseSource;
  /** scheduler_config.json keys laid over the model's own (e.g. timestep_spacing 'trailing' for SD-Turbo). */
  schedulerConfig?: Readonly<Record<string, unknown>>;
}

export interface StepProgress {
  /** 1-based. */
  step: number;
  total: number;
  elapsedMs: number;
}

export interface GenerateOptions {
  onProgress?: (p: StepProgress) => void;
  signal?: AbortSignal;
}

export interface GeneratedImage {
  seed: number;
  /** Decoder output, float32 [3, H, W], unclipped (inpainting: before the input is put back outside the mask). */
  decoded: Float32Array;
  /** 8-bit RGB, [H, W, 3]: the final image (inpainting: the input's own pixels outside the softened mask). */
  rgb: Uint8Array;
}

export interface Timings {
  textEncoderMs: number;
  unetMs: number;
  vaeMs: number;
  totalMs: number;
  /** Per denoising step: wall time of the step vs time inside onnxruntime's run. */
  stepWallMs: number[];
  stepRunMs: number[];
  /**
   * Process CPU time (all threads) of the whole generation, the denoising loop and the VAE calls: time stolen by
   * other processes does not inflate it. unetRunCpuMs is the loop's CPU inside onnxruntime's run, counted only
   * when the pipeline was loaded with measureCpuTime (else 0).
   */
  totalCpuMs: number;
  unetCpuMs: number;
  unetRunCpuMs: number;
  vaeCpuMs: number;
}

export interface GenerateResult {
  width: number;
  height: number;
  images: GeneratedImage[];
  /** Final latents [n, C, h, w]. */
  latents: Float32Tensor;
  /** Present when returnEmbeddings was set and embeddings were computed (or given). */
  embeddings?: { cond: Float32Tensor; uncond?: Float32Tensor };
  textEncoderSkipped: boolean;
  scheduler: string;
  timings: Timings;
  /** U-Net batch size of each call (2n with guidance, n without). */
  unetBatchSizes: number[];
}

/** Thrown when the AbortSignal fires; checked between denoising steps. */
export class CanceledError extends Error {
  override readonly name = 'CanceledError';
  constructor(readonly step: number) {
    super(`generation canceled before step ${step}`);
  }
}

/** A request the pipeline cannot run (bad size, unknown scheduler, ...): the caller maps it to 422. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
}
