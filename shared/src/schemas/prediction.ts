// The prediction object in Replicate's shape, and its state machine (one owner applies it on each side).
import { z } from 'zod';

export const PREDICTION_STATUSES = ['starting', 'processing', 'succeeded', 'failed', 'canceled'] as const;
export const PredictionStatusSchema = z.enum(PREDICTION_STATUSES);
export type PredictionStatus = z.infer<typeof PredictionStatusSchema>;

export const TERMINAL_STATUSES: ReadonlySet<PredictionStatus> = new Set(['succeeded', 'failed', 'canceled']);

export function isTerminal(status: PredictionStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** Allowed transitions; terminal states are final. */
const NEXT: Record<PredictionStatus, readonly PredictionStatus[]> = {
  starting: ['processing', 'succeeded', 'failed', 'canceled'],
  processing: ['succeeded', 'failed', 'canceled'],
  succeeded: [],
  failed: [],
  canceled: [],
};

export function canTransition(from: PredictionStatus, to: PredictionStatus): boolean {
  return from === to ? !isTerminal(from) : NEXT[from].includes(to);
}

export const WEBHOOK_EVENTS = ['start', 'output', 'logs', 'completed'] as const;
export const WebhookEventSchema = z.enum(WEBHOOK_EVENTS);
export type WebhookEvent = z.infer<typeof WebhookEventSchema>;

export const PredictionMetricsSchema = z
  .object({
    predict_time: z.number().optional(),
    total_time: z.number().optional(),
    text_encoder_time: z.number().optional(),
    unet_time: z.number().optional(),
    vae_time: z.number().optional(),
    /** The seed of the first image; image i used seed + i. */
    seed: z.number().int().optional(),
    embedding_cache: z.enum(['hit', 'miss']).optional(),
  })
  .catchall(z.unknown());
export type PredictionMetrics = z.infer<typeof PredictionMetricsSchema>;

export const ProgressSchema = z.object({
  step: z.number().int(),
  total: z.number().int(),
  /** 0..1 across all steps of the prediction. */
  fraction: z.number(),
});
export type Progress = z.infer<typeof ProgressSchema>;

export const QueueSchema = z.object({
  /** Predictions that start before this one (0: next). */
  position: z.number().int().nonnegative(),
  /** Predictions waiting for this model in all. */
  waiting: z.number().int().nonnegative(),
  /** ISO time this one should start, or null while no runner is connected or no run has been timed. */
  estimated_start_at: z.string().nullable(),
});
export type Queue = z.infer<typeof QueueSchema>;

/** The public prediction object (GET /v1/predictions/{id}). */
export const PredictionSchema = z.object({
  id: z.string(),
  model: z.string(),
  version: z.string(),
  input: z.record(z.string(), z.unknown()),
  output: z.array(z.string()).nullable(),
  error: z.string().nullable(),
  logs: z.string(),
  status: PredictionStatusSchema,
  created_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  metrics: PredictionMetricsSchema,
  urls: z.object({ get: z.string(), cancel: z.string(), stream: z.string().optional(), web: z.string().optional() }),
  progress: ProgressSchema.nullable().optional(),
  source: z.enum(['api', 'web']).optional(),
  /** While waiting for a GPU: its place in the model's line (ours; Replicate's clients ignore unknown fields). */
  queue: QueueSchema.optional(),
});
export type Prediction = z.infer<typeof PredictionSchema>;

/** POST /v1/predictions body: Replicate's shape. `version` may be "owner/name" or "owner/name:version" or a bare version id. */
export const CreatePredictionRequestSchema = z.strictObject(
  {
    version: z.string({ error: 'version must be a string naming a configured model version' }).min(1).max(200).optional(),
    input: z.record(z.string(), z.unknown(), { error: 'input must be a JSON object' }),
    webhook: z
      .url({ protocol: /^https?$/, error: 'webhook must be an http(s) URL' })
      .max(2048)
      .optional(),
    webhook_events_filter: z
      .array(WebhookEventSchema, { error: 'webhook_events_filter must be a list of start, output, logs, completed' })
      .max(4)
      .optional(),
    stream: z.boolean().optional(),
  },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `unknown field(s): ${iss.keys.join(', ')}` : 'body must be a JSON object',
  },
);
export type CreatePredictionRequest = z.infer<typeof CreatePredictionRequestSchema>;
