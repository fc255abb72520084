// What the PredictionObject stores and how it is shown: the record, its public (Replicate-shaped) view and its place
// in line. The changes of the record are the pure functions of prediction-transitions.ts.
import type { Prediction, PredictionMetrics, PredictionStatus, Progress, WebhookEvent } from '@sd/shared/schemas/prediction';
import type { Owner } from '../auth/ownership.ts';
import type { JobPlan } from '../dispatch/lease-holder.ts';

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
  job: JobPlan;
  dispatch: DispatchState;
}

/** Older records (before per-user ownership) have no subject: they belong to the key itself. */
export function ownerOfRecord(record: PredictionRecord): Owner {
  return { keyId: record.ownerKeyId, subject: record.ownerSubject ?? null };
}

export interface PublicUrls {
  baseUrl: string;
}

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

/** Waiting in line: not yet leased, not ended. */
export function isWaiting(record: PredictionRecord): boolean {
  return record.status === 'starting' && record.dispatch.leaseId === null;
}

/** The public, Replicate-shaped view: no owner, tokens, cache keys or dispatch internals. */
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
