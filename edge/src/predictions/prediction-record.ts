// What the PredictionObject stores, and the pure state machine over it: runner updates, cancel and failure become
// transitions (shared canTransition: terminal states are final) plus the list of events they fire.
import {
  canTransition,
  isTerminal,
  type Prediction,
  type PredictionMetrics,
  type PredictionStatus,
  type Progress,
  type WebhookEvent,
} from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import type { Owner } from '../auth/ownership.ts';
import type { CacheKeys } from '../embeddings/embedding-cache.ts';
import type { PromptPair } from '../embeddings/prompt-tokens.ts';

export interface DispatchState {
  /** Bumped on every requeue; webhooks and queue messages of an older generation are ignored. */
  generation: number;
  /** The runner (or remote API) that accepted the current generation; null until accepted. */
  runner: string | null;
  /** The remote prediction id (backend "replicate"); Cog runners use ours. */
  remoteId: string | null;
  acceptedAt: number | null;
  /** A consumer holds the dispatch until then, so two deliveries of one message never reach two runners. */
  leaseUntil: number | null;
  lastError: string | null;
  /** Last time the runner spoke (accept or webhook): the silence deadline counts from here. */
  lastHeardAt: number | null;
  requeues: number;
  /** Runners that went silent on this prediction: its requeues go to the others first. Absent on older records. */
  silentRunners?: string[];
}

export interface PredictionRecord {
  id: string;
  ownerKeyId: string;
  /** The end user below the key ("u:<sub>" for user tokens, "v:<visitor>" for visitors); null for the key itself. */
  ownerSubject: string | null;
  model: string;
  version: string;
  input: Record<string, unknown>;
  status: PredictionStatus;
  output: string[] | null;
  error: string | null;
  logs: string;
  metrics: PredictionMetrics;
  progress: Progress | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  source: 'api' | 'web';
  webhook: string | null;
  webhookEventsFilter: WebhookEvent[];
  /** Capability token of urls.stream (EventSource cannot send an Authorization header). */
  streamToken: string;
  job: { tokens: PromptPair | null; cacheKeys: CacheKeys | null };
  dispatch: DispatchState;
}

export interface Change {
  record: PredictionRecord;
  /** Webhook/SSE events this change fires, in order. */
  events: WebhookEvent[];
}

function iso(now: number): string {
  return new Date(now).toISOString();
}

function finish(record: PredictionRecord, to: PredictionStatus, now: number): PredictionRecord {
  const completed = iso(now);
  const created = Date.parse(record.created_at);
  const metrics: PredictionMetrics = { ...record.metrics };
  if (Number.isFinite(created)) metrics.total_time = (now - created) / 1000;
  return {
    ...record,
    status: to,
    completed_at: completed,
    metrics,
    started_at: record.started_at ?? (to === 'succeeded' ? completed : null),
  };
}

/** Applies a runner's webhook envelope. Returns null when nothing may change (terminal, or an illegal step). */
export function applyRunnerUpdate(record: PredictionRecord, update: RunnerPrediction, now: number): Change | null {
  if (isTerminal(record.status)) return null;
  const to: PredictionStatus = update.status === 'starting' ? 'processing' : update.status;
  if (!canTransition(record.status, to)) return null;
  const events: WebhookEvent[] = [];
  let next: PredictionRecord = { ...record, dispatch: { ...record.dispatch, lastHeardAt: now } };

  if (record.status === 'starting') {
    next = { ...next, status: 'processing', started_at: update.started_at ?? iso(now) };
    events.push('start');
  }
  if (update.progress && JSON.stringify(update.progress) !== JSON.stringify(record.progress)) {
    next = { ...next, progress: update.progress };
    events.push('output');
  }
  if (update.logs && update.logs !== record.logs) {
    next = { ...next, logs: update.logs };
    events.push('logs');
  }
  // The edge's own metrics (embedding_cache, total_time) win over the runner's for the same key.
  next = { ...next, metrics: { ...update.metrics, ...next.metrics, ...pickRunnerTimings(update.metrics) } };
  if (update.seeds && update.seeds.length > 0 && next.metrics.seed === undefined) {
    next = { ...next, metrics: { ...next.metrics, seed: update.seeds[0] } };
  }

  if (to === 'succeeded') {
    next = finish({ ...next, output: update.output ?? [], error: null }, 'succeeded', now);
    if (next.progress) next = { ...next, progress: { ...next.progress, step: next.progress.total, fraction: 1 } };
    if (update.output && update.output.length > 0) events.push('output');
    events.push('completed');
  } else if (to === 'failed' || to === 'canceled') {
    next = finish(
      { ...next, error: to === 'failed' ? (update.error ?? 'the runner reported a failure without a message') : null },
      to,
      now,
    );
    events.push('completed');
  }
  return { record: next, events };
}

function pickRunnerTimings(metrics: PredictionMetrics): PredictionMetrics {
  const out: PredictionMetrics = {};
  for (const key of ['predict_time', 'text_encoder_time', 'unet_time', 'vae_time'] as const) {
    if (metrics[key] !== undefined) out[key] = metrics[key];
  }
  return out;
}

/** Ends a prediction with an error (dispatch budget spent, runner silent, bad config). */
export function failPrediction(record: PredictionRecord, error: string, now: number): Change | null {
  if (!canTransition(record.status, 'failed')) return null;
  return { record: finish({ ...record, error }, 'failed', now), events: ['completed'] };
}

export function cancelPrediction(record: PredictionRecord, now: number): Change | null {
  if (!canTransition(record.status, 'canceled')) return null;
  return { record: finish(record, 'canceled', now), events: ['completed'] };
}

/** Older records (before per-user ownership) have no subject: they belong to the key itself. */
export function ownerOfRecord(record: PredictionRecord): Owner {
  return { keyId: record.ownerKeyId, subject: record.ownerSubject ?? null };
}

export interface PublicUrls {
  baseUrl: string;
}

/** The public, Replicate-shaped view: no owner, tokens, cache keys or dispatch internals. */
export function toPublicPrediction(record: PredictionRecord, baseUrl: string): Prediction {
  const get = `${baseUrl}/v1/predictions/${record.id}`;
  return {
    id: record.id,
    model: record.model,
    version: record.version,
    input: record.input,
    output: record.output,
    error: record.error,
    logs: record.logs,
    status: record.status,
    created_at: record.created_at,
    started_at: record.started_at,
    completed_at: record.completed_at,
    metrics: record.metrics,
    urls: {
      get,
      cancel: `${get}/cancel`,
      stream: `${get}/stream?token=${record.streamToken}`,
    },
    progress: record.progress,
    source: record.source,
  };
}
