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
  /** Which lease of this prediction is (or was last) current: 0 for the first, one more per requeue. */
  attempt: number;
  /** The current lease (ModelQueue); null while the prediction waits in line. Reports under another lease are refused. */
  leaseId: string | null;
  /** Who holds the lease: a pull runner's id or a push target (internal: never shown to clients). */
  runner: string | null;
  /** The remote prediction id (push targets: "<id>-a<attempt>" on a Cog host, Replicate's own id). */
  remoteId: string | null;
  leasedAt: number | null;
  /** Last time the lease holder spoke (a report or a webhook). */
  lastHeardAt: number | null;
  /** Leases lost (holder went silent) so far. */
  requeues: number;
  lastError: string | null;
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

/** A new prediction's record, waiting in line. */
export function newRecord(
  fields: Omit<
    PredictionRecord,
    'status' | 'output' | 'error' | 'logs' | 'progress' | 'started_at' | 'completed_at' | 'dispatch'
  >,
): PredictionRecord {
  return {
    ...fields,
    status: 'starting',
    output: null,
    error: null,
    logs: '',
    progress: null,
    started_at: null,
    completed_at: null,
    dispatch: {
      attempt: 0,
      leaseId: null,
      runner: null,
      remoteId: null,
      leasedAt: null,
      lastHeardAt: null,
      requeues: 0,
      lastError: null,
    },
  };
}

export interface LeaseGrant {
  leaseId: string;
  attempt: number;
  runnerId: string;
}

export type LeaseClaim = { kind: 'run'; record: PredictionRecord } | { kind: 'drop'; reason: string };

/**
 * The line handed the prediction to a runner. Refused when it ended meanwhile (canceled in line) or when another lease
 * is still current (the line and the record disagree: the record wins, it never runs twice).
 */
export function claimLease(record: PredictionRecord, grant: LeaseGrant, now: number): LeaseClaim {
  if (isTerminal(record.status)) return { kind: 'drop', reason: `prediction is ${record.status}` };
  const d = record.dispatch;
  if (d.leaseId !== null && d.leaseId !== grant.leaseId) return { kind: 'drop', reason: 'another lease is current' };
  return {
    kind: 'run',
    record: {
      ...record,
      dispatch: {
        ...d,
        attempt: grant.attempt,
        leaseId: grant.leaseId,
        runner: grant.runnerId,
        leasedAt: now,
        lastHeardAt: now,
        remoteId: null,
      },
    },
  };
}

/** A push target took the prediction (its remote id, and whether the job carried cached embeddings). */
export function pushAccepted(
  record: PredictionRecord,
  leaseId: string,
  remoteId: string | null,
  embeddingCache: 'hit' | 'miss' | null,
  now: number,
): PredictionRecord | null {
  if (record.dispatch.leaseId !== leaseId) return null;
  const metrics = embeddingCache ? { ...record.metrics, embedding_cache: embeddingCache } : record.metrics;
  return { ...record, metrics, dispatch: { ...record.dispatch, remoteId, lastHeardAt: now, lastError: null } };
}

/** The lease holder gave the prediction back unrun (a push target was busy): it waits in line again, no requeue counted. */
export function releaseLease(record: PredictionRecord, leaseId: string): PredictionRecord | null {
  if (record.dispatch.leaseId !== leaseId || isTerminal(record.status)) return null;
  return { ...record, dispatch: { ...record.dispatch, leaseId: null, runner: null, remoteId: null, leasedAt: null } };
}

export type LeaseLoss =
  | { verdict: 'requeue'; record: PredictionRecord }
  | { verdict: 'drop'; record: null }
  | { verdict: 'fail'; change: Change };

/**
 * The lease holder went silent past the lease's TTL. Back to the head of the line, unless the prediction already
 * ended or spent its requeues (then it fails, naming no internal address).
 */
export function loseLease(record: PredictionRecord, leaseId: string, maxRequeues: number, now: number): LeaseLoss {
  if (isTerminal(record.status)) return { verdict: 'drop', record: null };
  const d = record.dispatch;
  if (d.leaseId !== null && d.leaseId !== leaseId) return { verdict: 'drop', record: null };
  if (d.requeues >= maxRequeues) {
    const change = failPrediction(
      record,
      `the GPU running this prediction stopped responding ${d.requeues + 1} times; giving up`,
      now,
    );
    if (change) return { verdict: 'fail', change };
    return { verdict: 'drop', record: null };
  }
  return {
    verdict: 'requeue',
    record: {
      ...record,
      dispatch: { ...d, leaseId: null, runner: null, remoteId: null, leasedAt: null, requeues: d.requeues + 1 },
    },
  };
}

/** Who a report claims to come from: a pull runner names its lease; a push target's webhook names its attempt. */
export type ReportSource = { leaseId: string } | { attempt: number };

/** Why a runner's report must not be believed, or null: it must come from the current lease. */
export function reportRefusal(record: PredictionRecord, source: ReportSource): string | null {
  const d = record.dispatch;
  if (d.leaseId === null) return 'the prediction holds no lease now (it was requeued or has not started)';
  if ('leaseId' in source) return source.leaseId === d.leaseId ? null : 'the lease is no longer current';
  return source.attempt === d.attempt ? null : `stale attempt ${source.attempt} (current ${d.attempt})`;
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
/** A waiting prediction's place in its model's line, as GET shows it (not a Replicate field; clients ignore it). */
export interface QueueView {
  position: number;
  waiting: number;
  estimated_start_at: string | null;
}

/** The public view of a place in line (ModelQueue.place), or undefined when the prediction is not waiting there. */
export function queueViewOf(place: {
  state: string;
  position: number;
  waiting: number;
  estimatedStartMs: number | null;
}): QueueView | undefined {
  if (place.state !== 'waiting' && place.state !== 'held') return undefined;
  return {
    position: place.position,
    waiting: place.waiting,
    estimated_start_at: place.estimatedStartMs === null ? null : new Date(place.estimatedStartMs).toISOString(),
  };
}

export function toPublicPrediction(record: PredictionRecord, baseUrl: string, queue?: QueueView): Prediction {
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
    ...(queue ? { queue } : {}),
  };
}
