// Every change of a prediction's state, as pure functions: each takes the record (and what happened) and returns the
// change (the next record, the events it fires, the side effects to run) or null when nothing may change. The
// PredictionObject loads, applies one of these, commits it and runs its effects; it writes nothing else.
// Status steps follow the shared canTransition table: terminal states are final.
import {
  canTransition,
  isTerminal,
  type PredictionMetrics,
  type PredictionStatus,
  type WebhookEvent,
} from '@sd/shared/schemas/prediction';
import type { PrecomputedEmbeddings, RunnerPrediction } from '@sd/shared/schemas/runner';
import type { LeaseGrant } from '../dispatch/lease-holder.ts';
import { runnerPredictionId } from '../dispatch/runner-job.ts';
import type { DispatchState, PredictionRecord } from './prediction-record.ts';

/** What a committed change asks the object to do besides storing the record and telling its watchers. */
export type Effect =
  /** Out of the model's line (waiting) or off its lease (running): the slot goes to the next prediction at once. */
  | { kind: 'leave-line' }
  /** The prediction ended: its key's in-flight slot is free. */
  | { kind: 'release-slot' }
  /** Tell the lease holder to stop the run it holds (push targets; a pull runner learns it from its lease). */
  | { kind: 'stop-holder'; holder: DispatchState }
  /** Keep the embeddings the runner computed, for the next prediction with the same prompt. */
  | { kind: 'cache-embeddings'; embeddings: PrecomputedEmbeddings }
  /** A push target's webhook is its heartbeat: the line extends its lease. */
  | { kind: 'heartbeat'; leaseId: string; runner: string };

export interface Change {
  record: PredictionRecord;
  /** Webhook and SSE events this change fires, in order. */
  events: WebhookEvent[];
  effects: Effect[];
}

const iso = (now: number) => new Date(now).toISOString();

const NO_LEASE: Pick<DispatchState, 'leaseId' | 'runner' | 'remoteId' | 'leasedAt'> = {
  leaseId: null,
  runner: null,
  remoteId: null,
  leasedAt: null,
};

/** What create-prediction knows of an accepted prediction: the record is built from this and nothing else. */
export interface NewPrediction
  extends Pick<
    PredictionRecord,
    | 'id'
    | 'ownerKeyId'
    | 'ownerSubject'
    | 'model'
    | 'version'
    | 'source'
    | 'webhook'
    | 'webhookEventsFilter'
    | 'streamToken'
    | 'job'
  > {
  /** The validated input; a seed the caller left out is filled in from `randomSeed`. */
  input: Record<string, unknown>;
  /** Drawn by the caller (the edge chooses the seed, so a requeued prediction renders the same image). */
  randomSeed: number;
  /** Whether the edge's embedding cache had the prompt (null: the runner tokenizes). */
  embeddingCache: 'hit' | 'miss' | null;
}

/** create: a new prediction's record, waiting in line (not leased, no events: the 201 is its announcement). */
export function createRecord(fields: NewPrediction, now: number): PredictionRecord {
  const { randomSeed, embeddingCache, input: given, ...rest } = fields;
  const seed = typeof given.seed === 'number' ? given.seed : randomSeed;
  return {
    ...rest,
    input: { ...given, seed },
    status: 'starting',
    output: null,
    error: null,
    logs: '',
    metrics: { seed, ...(embeddingCache ? { embedding_cache: embeddingCache } : {}) },
    progress: null,
    created_at: iso(now),
    started_at: null,
    completed_at: null,
    dispatch: { attempt: 0, ...NO_LEASE, lastHeardAt: null, requeues: 0, lastError: null },
  };
}

/** The line's LeaseClaim, with the whole record (what the object itself keeps). */
export type Claim = { kind: 'run'; record: PredictionRecord } | { kind: 'drop'; reason: string };

/**
 * claim: the line handed the prediction to a runner. Refused when it ended meanwhile (canceled in line) or when another
 * lease is still current (the line and the record disagree: the record wins, it never runs twice).
 */
export function claimLease(record: PredictionRecord, grant: LeaseGrant, now: number): Claim {
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

/**
 * accept: a push target took the prediction (its remote id, and whether the job carried cached embeddings). Canceled
 * while the push was in flight: the host has it now, so it is told to stop.
 */
export function acceptPush(
  record: PredictionRecord,
  leaseId: string,
  remoteId: string | null,
  embeddingCache: 'hit' | 'miss' | null,
  now: number,
): Change | null {
  if (record.dispatch.leaseId !== leaseId) return null;
  const metrics = embeddingCache ? { ...record.metrics, embedding_cache: embeddingCache } : record.metrics;
  const next = { ...record, metrics, dispatch: { ...record.dispatch, remoteId, lastHeardAt: now, lastError: null } };
  return { record: next, events: [], effects: isTerminal(next.status) ? [{ kind: 'stop-holder', holder: next.dispatch }] : [] };
}

/** release: the lease holder gave the prediction back unrun (a push target was busy); it waits again, no requeue counted. */
export function releaseLease(record: PredictionRecord, leaseId: string): Change | null {
  if (record.dispatch.leaseId !== leaseId || isTerminal(record.status)) return null;
  return { record: { ...record, dispatch: { ...record.dispatch, ...NO_LEASE } }, events: [], effects: [] };
}

export type LeaseLoss = { verdict: 'requeue' | 'fail'; change: Change } | { verdict: 'drop' };

/**
 * requeue: the lease holder went silent past the lease's TTL. Back to the head of the line, unless the prediction
 * already ended or spent its requeues (then it fails, naming no internal address). Either way the silent holder is
 * told to stop; the line itself drops or requeues the job (so the change does not leave the line on its own).
 */
export function loseLease(record: PredictionRecord, leaseId: string, maxRequeues: number, now: number): LeaseLoss {
  if (isTerminal(record.status)) return { verdict: 'drop' };
  const d = record.dispatch;
  if (d.leaseId !== null && d.leaseId !== leaseId) return { verdict: 'drop' };
  const stop: Effect[] = d.runner && d.leaseId !== null ? [{ kind: 'stop-holder', holder: d }] : [];
  if (d.requeues >= maxRequeues) {
    const failed = failPrediction(
      record,
      `the GPU running this prediction stopped responding ${d.requeues + 1} times; giving up`,
      now,
    );
    if (!failed) return { verdict: 'drop' };
    return { verdict: 'fail', change: { ...failed, effects: [...stop, { kind: 'release-slot' }] } };
  }
  const requeued = { ...record, dispatch: { ...d, ...NO_LEASE, requeues: d.requeues + 1 } };
  return { verdict: 'requeue', change: { record: requeued, events: [], effects: stop } };
}

/** Who a report claims to come from: a pull runner names its lease; a push target's webhook names its attempt. */
export type ReportSource = { leaseId: string } | { attempt: number };

export type ReportRefusal = { reason: string; stop: boolean };

/**
 * refuse: why a runner's report must not be believed, or null. It must come from the current lease; a push target's
 * envelope must also carry the id the edge gave this attempt, and only a prediction a push target holds
 * (`heldByPushTarget`) takes one: every push target signs with the same secret, and a pull runner's prediction is
 * reported under its lease alone. `stop` tells the sender to give up its run.
 */
export function refuseReport(
  record: PredictionRecord,
  source: ReportSource,
  envelopeId: string,
  heldByPushTarget: boolean,
): ReportRefusal | null {
  const d = record.dispatch;
  if (d.leaseId === null) return { reason: 'the prediction holds no lease now (it was requeued or has not started)', stop: true };
  if ('leaseId' in source) return source.leaseId === d.leaseId ? null : { reason: 'the lease is no longer current', stop: true };
  if (!heldByPushTarget) return { reason: 'a pull runner holds the prediction: it reports under its lease', stop: true };
  if (source.attempt !== d.attempt) return { reason: `stale attempt ${source.attempt} (current ${d.attempt})`, stop: true };
  const expected = d.remoteId ?? runnerPredictionId(record.id, d.attempt);
  return envelopeId === expected ? null : { reason: `envelope id ${envelopeId} is not ${expected}`, stop: false };
}

/**
 * runner update: applies a believed runner envelope. Returns null when nothing may change (terminal, or an illegal
 * step). A push target's report also extends its lease; a success with computed embeddings caches them.
 */
export function applyRunnerUpdate(
  record: PredictionRecord,
  update: RunnerPrediction,
  source: ReportSource,
  now: number,
): Change | null {
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
    const done = finish({ ...next, output: update.output ?? [], error: null }, 'succeeded', now);
    next = done.progress ? { ...done, progress: { ...done.progress, step: done.progress.total, fraction: 1 } } : done;
    if (update.output && update.output.length > 0) events.push('output');
    events.push('completed');
  } else if (to === 'failed' || to === 'canceled') {
    const error = to === 'failed' ? (update.error ?? 'the runner reported a failure without a message') : null;
    next = finish({ ...next, error }, to, now);
    events.push('completed');
  }
  return { record: next, events, effects: updateEffects(record, next, update, source) };
}

function updateEffects(prev: PredictionRecord, next: PredictionRecord, update: RunnerPrediction, source: ReportSource): Effect[] {
  const effects: Effect[] = [];
  if (isTerminal(next.status)) effects.push({ kind: 'leave-line' }, { kind: 'release-slot' });
  if (next.status === 'succeeded' && update.embeddings && prev.job.cacheKeys) {
    effects.push({ kind: 'cache-embeddings', embeddings: update.embeddings });
  }
  const { leaseId, runner } = prev.dispatch;
  if ('attempt' in source && leaseId && runner && !isTerminal(next.status)) effects.push({ kind: 'heartbeat', leaseId, runner });
  return effects;
}

function pickRunnerTimings(metrics: PredictionMetrics): PredictionMetrics {
  const out: PredictionMetrics = {};
  for (const key of ['predict_time', 'text_encoder_time', 'unet_time', 'vae_time'] as const) {
    if (metrics[key] !== undefined) out[key] = metrics[key];
  }
  return out;
}

/** finish with an error: the dispatch budget spent, the runner silent, the host refusing the input, bad config. */
export function failPrediction(record: PredictionRecord, error: string, now: number): Change | null {
  if (!canTransition(record.status, 'failed')) return null;
  const effects: Effect[] = [{ kind: 'leave-line' }, { kind: 'release-slot' }];
  return { record: finish({ ...record, error }, 'failed', now), events: ['completed'], effects };
}

/** cancel: ends the prediction; a push target holding it is told to stop (a pull runner learns it at its heartbeat). */
export function cancelPrediction(record: PredictionRecord, now: number): Change | null {
  if (!canTransition(record.status, 'canceled')) return null;
  const d = record.dispatch;
  const effects: Effect[] = [{ kind: 'leave-line' }, { kind: 'release-slot' }];
  if (d.runner && d.leaseId !== null) effects.push({ kind: 'stop-holder', holder: d });
  return { record: finish(record, 'canceled', now), events: ['completed'], effects };
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
