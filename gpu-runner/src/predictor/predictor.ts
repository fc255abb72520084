// The seam between the Cog HTTP layer and the model: the server only knows this interface, never tensors.
import type { ErrorIssue } from '@sd/shared/schemas/errors';
import type { PrecomputedEmbeddings, RunnerInput } from '@sd/shared/schemas/runner';

export interface PredictProgress {
  /** 1-based denoising step just finished. */
  step: number;
  total: number;
}

export interface PredictContext {
  /** Fires on cancel or shutdown deadline; the predictor stops between denoising steps. */
  signal: AbortSignal;
  onProgress(p: PredictProgress): void;
  /** One line for the prediction's own `logs`. */
  log(line: string): void;
}

export interface EncodedOutputImage {
  bytes: Uint8Array;
  contentType: string;
  extension: string;
}

export interface PredictMetrics {
  predict_time: number;
  text_encoder_time: number;
  unet_time: number;
  vae_time: number;
  embedding_cache?: 'hit' | 'miss';
}

export interface PredictResult {
  images: EncodedOutputImage[];
  /** Seed of each image (seed + i). */
  seeds: number[];
  /** The text conditioning that was computed, when the input asked for it. */
  embeddings?: PrecomputedEmbeddings;
  metrics: PredictMetrics;
}

export interface Predictor {
  /** Loads the model once; its log lines go to the setup logs. */
  setup(log: (line: string) => void): Promise<void>;
  /**
   * Checks that need the loaded model (vocabulary size, window length) and no network, after the schema and
   * before a slot is taken: a problem is a 422 at the entrance rather than a failed prediction.
   */
  checkInput?(input: RunnerInput): ErrorIssue[];
  predict(input: RunnerInput, ctx: PredictContext): Promise<PredictResult>;
}

/** Thrown by a predictor that stopped because ctx.signal fired. */
export class PredictionCanceledError extends Error {
  override readonly name = 'PredictionCanceledError';
}
