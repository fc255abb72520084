// What the edge sends a runner (Cog's request envelope around our input), and what the runner answers and webhooks.
import { z } from 'zod';
import { EncodedTensorSchema, tensorDataProblem } from '../tensor-format.ts';
import { DEFAULT_LIMITS, type InputLimits } from './limits.ts';
import { PredictionMetricsSchema, PredictionStatusSchema, ProgressSchema, WebhookEventSchema } from './prediction.ts';
import { checkCrossFieldLimits, foldStrengthAlias, predictionInputFields } from './prediction-input.ts';

/** Most windows of 77 tokens one side of a prompt may take (the U-Net's cross-attention grows with them). */
export const MAX_PROMPT_WINDOWS = 32;

/** Largest |weight| of a token: far past any useful emphasis, and small enough that weighted embeddings stay finite. */
export const MAX_TOKEN_WEIGHT = 100;

/** Token ids and per-token weights, windows of the model's max length (from the shared tokenizer). */
export const TokenizedPromptSchema = z
  .strictObject({
    ids: z
      .array(z.array(z.number().int().min(0)).min(1).max(1024))
      .min(1)
      .max(MAX_PROMPT_WINDOWS),
    weights: z
      .array(
        z.array(
          z
            .number()
            .min(-MAX_TOKEN_WEIGHT, {
              error: (iss) =>
                `token weights must be between -${MAX_TOKEN_WEIGHT} and ${MAX_TOKEN_WEIGHT}, got ${String(iss.input)}`,
            })
            .max(MAX_TOKEN_WEIGHT, {
              error: (iss) =>
                `token weights must be between -${MAX_TOKEN_WEIGHT} and ${MAX_TOKEN_WEIGHT}, got ${String(iss.input)}`,
            }),
        ),
      )
      .min(1)
      .max(MAX_PROMPT_WINDOWS),
  })
  .superRefine((t, ctx) => {
    // One weight per id: the runner scales each token's embedding by its weight.
    if (t.weights.length !== t.ids.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['weights'],
        message: `weights must have one window per ids window (${t.ids.length}), got ${t.weights.length}`,
      });
      return;
    }
    const w = t.ids.findIndex((ids, i) => ids.length !== t.weights[i].length);
    if (w >= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['weights', w],
        message: `weights[${w}] must have one weight per token id (${t.ids[w].length}), got ${t.weights[w].length}`,
      });
    }
  });
export type TokenizedPrompt = z.infer<typeof TokenizedPromptSchema>;

/** Precomputed text conditioning from the edge's cache; the runner skips the text encoder. */
export const PrecomputedEmbeddingsSchema = z.strictObject({
  prompt: EncodedTensorSchema,
  negative: EncodedTensorSchema,
});
export type PrecomputedEmbeddings = z.infer<typeof PrecomputedEmbeddingsSchema>;

/**
 * The same, checked at the runner's entrance: [1, tokens, hidden] each, equal shapes, data matching the shape.
 * (Envelopes use the plain schema, so a runner's odd result cannot get its completed webhook refused.)
 */
export const PrecomputedEmbeddingsInputSchema = PrecomputedEmbeddingsSchema.superRefine((e, ctx) => {
  for (const side of ['prompt', 'negative'] as const) {
    const t = e[side];
    if (t.shape.length !== 3 || t.shape[0] !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [side, 'shape'],
        message: `embeddings.${side}.shape must be [1, tokens, hidden], got [${t.shape.join(', ')}]`,
      });
      continue;
    }
    const problem = tensorDataProblem(t);
    if (problem) ctx.addIssue({ code: 'custom', path: [side, 'data'], message: `embeddings.${side}.${problem}` });
  }
  if (e.prompt.shape.join() !== e.negative.shape.join()) {
    ctx.addIssue({
      code: 'custom',
      path: ['negative', 'shape'],
      message: `embeddings.negative.shape must equal embeddings.prompt.shape [${e.prompt.shape.join(', ')}], got [${e.negative.shape.join(', ')}]`,
    });
  }
});

const maxPixelsError = (iss: { input?: unknown }) => `max_pixels must be a positive integer, got ${String(iss.input)}`;

/** The runner input: the public parameters plus the edge's extras. Plain Cog clients send just the public ones. */
export function createRunnerInputSchema(limits: InputLimits = DEFAULT_LIMITS) {
  return z
    .strictObject({
      ...predictionInputFields(limits),
      prompt_tokens: TokenizedPromptSchema.optional(),
      negative_prompt_tokens: TokenizedPromptSchema.optional(),
      embeddings: PrecomputedEmbeddingsInputSchema.optional(),
      return_embeddings: z.boolean().default(false),
      /**
       * The caller's pixel budget (the edge passes its key's): an output sized from the input image (img2img without
       * width or height) fits into the smaller of this and the runner's own limit, whatever form the image came in.
       */
      max_pixels: z
        .number({ error: maxPixelsError })
        .int({ error: maxPixelsError })
        .positive({ error: maxPixelsError })
        .optional(),
    })
    .superRefine((input, ctx) => checkCrossFieldLimits(input, ctx, limits))
    .transform(foldStrengthAlias);
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
