// What the edge sends a runner (Cog's request envelope around our input), and what the runner answers and webhooks.
import { z } from 'zod';
import { EncodedTensorSchema } from '../tensor-format.ts';
import { DEFAULT_LIMITS, type InputLimits } from './limits.ts';
import { checkCrossFieldLimits, predictionInputFields } from './prediction-input.ts';
import { PredictionMetricsSchema, PredictionStatusSchema, ProgressSchema, WebhookEventSchema } from './prediction.ts';

/** Token ids and per-token weights, windows of the model's max length (from the shared tokenizer). */
export const TokenizedPromptSchema = z.strictObject({
  ids: z
    .array(z.array(z.number().int().min(0)).min(1).max(1024))
    .min(1)
    .max(32),
  weights: z.array(z.array(z.number())).min(1).max(32),
});
export type TokenizedPrompt = z.infer<typeof TokenizedPromptSchema>;

/** Precomputed text conditioning from the edge's cache; the runner skips the text encoder. */
export const PrecomputedEmbeddingsSchema = z.strictObject({
  prompt: EncodedTensorSchema,
  negative: EncodedTensorSchema,
});
export type PrecomputedEmbeddings = z.infer<typeof PrecomputedEmbeddingsSchema>;

/** The runner input: the public parameters plus the edge's extras. Plain Cog clients send just the public ones. */
export function createRunnerInputSchema(limits: InputLimits = DEFAULT_LIMITS) {
  return z
    .strictObject({
      ...predictionInputFields(limits),
      prompt_tokens: TokenizedPromptSchema.optional(),
      negative_prompt_tokens: TokenizedPromptSchema.optional(),
      embeddings: PrecomputedEmbeddingsSchema.optional(),
      return_embeddings: z.boolean().default(false),
    })
    .superRefine((input, ctx) => checkCrossFieldLimits(input, ctx, limits));
}

export const RunnerInputSchema = createRunnerInputSchema();
export type RunnerInputRequest = z.input<typeof RunnerInputSchema>;
export type RunnerInput = z.output<typeof RunnerInputSchema>;

/** Cog's prediction request: PUT /predictions/{id} or POST /predictions. */
export const CogPredictionRequestSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_-]+$/, 'id may contain only letters, digits, _ and -')
    .optional(),
  input: z.record(z.string(), z.unknown()),
  webhook: z.url({ protocol: /^https?$/ }).optional(),
  webhook_events_filter: z.array(WebhookEventSchema).optional(),
  output_file_prefix: z.string().optional(),
  created_at: z.string().optional(),
  context: z.record(z.string(), z.string()).optional(),
});
export type CogPredictionRequest = z.infer<typeof CogPredictionRequestSchema>;

/** Cog's response envelope, plus progress and (when asked) the computed embeddings. */
export const RunnerPredictionSchema = z.object({
  id: z.string(),
  status: PredictionStatusSchema,
  input: z.record(z.string(), z.unknown()),
  output: z.array(z.string()).nullable(),
  error: z.string().nullable(),
  logs: z.string(),
  metrics: PredictionMetricsSchema,
  created_at: z.string().nullable(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  progress: ProgressSchema.nullable().optional(),
  /** Seeds per output image (seed + i). */
  seeds: z.array(z.number().int()).optional(),
  embeddings: PrecomputedEmbeddingsSchema.nullable().optional(),
});
export type RunnerPrediction = z.infer<typeof RunnerPredictionSchema>;
