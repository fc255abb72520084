// One Durable Object per prediction: the single owner of its state. Every change is a pure transition of
// prediction-record.ts, applied and stored by commit(), where the side effects hang: SSE push, waiters (Prefer: wait),
// client webhooks (outbox + alarm), embedding cache write, leaving the model's line, in-flight release. The line and the
// leases are the ModelQueue's; this object only believes reports from the lease it holds as current.

import { DurableObject } from 'cloudflare:workers';
import { isTerminal, type WebhookEvent } from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { admission } from '../admission.ts';
import { type EdgeConfig, getConfig, resolveModel } from '../config.ts';
import { cancelOnCog } from '../dispatch/cog-backend.ts';
import { cancelOnReplicate } from '../dispatch/replicate-backend.ts';
import { runnerPredictionId } from '../dispatch/runner-job.ts';
import { EmbeddingCache, embeddingsShapeProblem } from '../embeddings/embedding-cache.ts';
import { errorFields, logger } from '../log.ts';
import { effectiveFilter, enqueueDeliveries, httpDeliverer, type OutboxItem, runOutbox } from '../webhooks/client-webhooks.ts';
import { getLarge, putLarge } from './chunked-storage.ts';
import {
  applyRunnerUpdate,
  type Change,
  cancelPrediction,
  claimLease,
  failPrediction,
  type LeaseClaim,
  type LeaseGrant,
  loseLease,
  type PredictionRecord,
  pushAccepted,
  type QueueView,
  queueViewOf,
  type ReportSource,
  releaseLease,
  reportRefusal,
  toPublicPrediction,
} from './prediction-record.ts';
import { changeEvents, encodeSse, queueEvent, type SseEvent, snapshotEvents } from './sse-events.ts';
import { poolOf, queueStub } from './stubs.ts';

/** How often a watched stream of a waiting prediction re-reads its place in line. */
const QUEUE_WATCH_MS = 1000;

/** Waiting in line: not yet leased, not ended. */
function isWaiting(record: PredictionRecord): boolean {
  return record.status === 'starting' && record.dispatch.leaseId === null;
}

const RECORD = 'record';
const OUTBOX = 'outbox';
const INPUT = 'input';

export class PredictionObject extends DurableObject<Env> {
  private record: PredictionRecord | null | undefined;
  private outbox: OutboxItem[] | undefined;
  private readonly subscribers = new Set<WritableStreamDefaultWriter<Uint8Array>>();
  private readonly waiters = new Set<() => void>();
  private alarmAt: number | null = null;
  private watchingQueue = false;
  /** Outbound HTTP for client webhooks and runner cancels; a test may replace it. */
  outbound: typeof fetch = (input, init) => fetch(input, init);

  private get config(): EdgeConfig {
    return getConfig(this.env);
  }

  private log(record: PredictionRecord | null) {
    return logger({ component: 'prediction', predictionId: record?.id });
  }

  private async load(): Promise<PredictionRecord | null> {
    if (this.record === undefined) {
      const state = await getLarge<Omit<PredictionRecord, 'input'>>(this.ctx.storage, RECORD);
      this.record = state
        ? { ...state, input: (await getLarge<PredictionRecord['input']>(this.ctx.storage, INPUT)) ?? {} }
        : null;
    }
    return this.record;
  }

  private async loadOutbox(): Promise<OutboxItem[]> {
    if (this.outbox === undefined) this.outbox = (await getLarge<OutboxItem[]>(this.ctx.storage, OUTBOX)) ?? [];
    return this.outbox;
  }

  /**
   * Writes the mutable state. The input never changes after create and may hold two 10 MiB data URIs, so it lives
   * under its own key, written once, instead of being rewritten with every progress update.
   */
  private async save(record: PredictionRecord, { withInput = false } = {}): Promise<void> {
    this.record = record;
    const { input, ...state } = record;
    if (withInput) await putLarge(this.ctx.storage, INPUT, input);
    await putLarge(this.ctx.storage, RECORD, state);
  }

  /** Stores a new prediction; a second create with the same id returns the first (idempotent). */
  async create(record: PredictionRecord): Promise<{ record: PredictionRecord; created: boolean }> {
    const existing = await this.load();
    if (existing) return { record: existing, created: false };
    await this.save(record, { withInput: true });
    this.log(record).debug('prediction created', {
      model: record.model,
      owner: record.ownerKeyId,
      cache: record.metrics.embedding_cache,
    });
    return { record, created: true };
  }

  async get(): Promise<PredictionRecord | null> {
    return this.load();
  }

  /** The line handed this prediction to a runner (or a push target): it becomes the current lease, unless it ended. */
  async claimLease(grant: LeaseGrant): Promise<LeaseClaim> {
    const record = await this.load();
    if (!record) return { kind: 'drop', reason: 'no such prediction' };
    const claim = claimLease(record, grant, Date.now());
    if (claim.kind === 'run') {
      await this.save(claim.record);
      this.log(record).info('leased', { runner: grant.runnerId, attempt: grant.attempt });
    }
    return claim;
  }

  async pushAccepted(leaseId: string, remoteId: string | null, embeddingCache: 'hit' | 'miss' | null): Promise<void> {
    const record = await this.load();
    if (!record) return;
    const next = pushAccepted(record, leaseId, remoteId, embeddingCache, Date.now());
    if (!next) return;
    await this.save(next);
    // Canceled while the push was in flight: the host has it now, so tell it.
    if (isTerminal(next.status)) await this.cancelOnPushTarget(next);
  }

  /** The lease holder gave the prediction back without running it. */
  async leaseReleased(leaseId: string): Promise<void> {
    const record = await this.load();
    const next = record ? releaseLease(record, leaseId) : null;
    if (next) await this.save(next);
  }

  /** The line found this lease silent past its TTL: requeue it (it stays ours to run) or drop it (it ended). */
  async leaseLost(leaseId: string): Promise<'requeue' | 'drop'> {
    const record = await this.load();
    if (!record) return 'drop';
    const loss = loseLease(record, leaseId, this.config.dispatch.maxRequeues, Date.now());
    if (loss.verdict === 'drop') return 'drop';
    this.log(record).warn('lease lost', { runner: record.dispatch.runner, verdict: loss.verdict });
    await this.cancelOnPushTarget(record);
    if (loss.verdict === 'fail') {
      await this.commit(record, loss.change, { leaveLine: false });
      return 'drop';
    }
    await this.save(loss.record);
    return 'requeue';
  }

  async fail(error: string): Promise<PredictionRecord | null> {
    const record = await this.load();
    if (!record) return null;
    await this.commit(record, failPrediction(record, error, Date.now()));
    return this.record ?? null;
  }

  async cancel(): Promise<PredictionRecord | null> {
    const record = await this.load();
    if (!record) return null;
    const change = cancelPrediction(record, Date.now());
    await this.commit(record, change);
    // A pull runner learns at its next heartbeat (the lease is gone with the job); a push target is told.
    if (change) await this.cancelOnPushTarget(record);
    return this.record ?? null;
  }

  /**
   * A verified runner report (a pull runner's, naming its lease; a push target's webhook, naming its attempt). Only the
   * current lease is believed; `stop` tells the runner to give up (its lease is gone, or the prediction ended).
   */
  async runnerReport(
    source: ReportSource,
    update: RunnerPrediction,
  ): Promise<{ applied: boolean; reason?: string; stop: boolean }> {
    const record = await this.load();
    if (!record) return { applied: false, reason: 'no such prediction', stop: true };
    const refusal = reportRefusal(record, source);
    if (refusal) return { applied: false, reason: refusal, stop: true };
    const d = record.dispatch;
    const expectedId = d.remoteId ?? runnerPredictionId(record.id, d.attempt);
    if ('attempt' in source && update.id !== expectedId) {
      return { applied: false, reason: `envelope id ${update.id} is not ${expectedId}`, stop: false };
    }
    const change = applyRunnerUpdate(record, update, Date.now());
    if (!change) return { applied: false, reason: `prediction is ${record.status}`, stop: isTerminal(record.status) };
    await this.commit(record, change);
    if (update.embeddings && record.job.cacheKeys && change.record.status === 'succeeded') {
      await this.storeEmbeddings(record, update.embeddings);
    }
    // A push target's webhooks are its heartbeats.
    if ('attempt' in source && d.leaseId && d.runner && !isTerminal(change.record.status)) {
      await queueStub(this.env, this.pool(record))
        .heartbeat(d.leaseId, d.runner)
        .catch((err) => this.log(record).warn('heartbeat to the line failed', errorFields(err)));
    }
    return { applied: true, stop: isTerminal(change.record.status) };
  }

  private pool(record: PredictionRecord): string {
    return poolOf({ id: record.model, version: record.version });
  }

  /** Resolves with the record when it is terminal or after `timeoutMs`, whichever is first. */
  async waitForCompletion(timeoutMs: number): Promise<PredictionRecord | null> {
    const record = await this.load();
    if (!record || isTerminal(record.status)) return record;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
    return this.record ?? null;
  }

  /** GET /stream: Server-Sent Events from now until the prediction ends. */
  override async fetch(request: Request): Promise<Response> {
    const record = await this.load();
    if (!record || new URL(request.url).pathname !== '/stream') return new Response('not found', { status: 404 });
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const initial = snapshotEvents(record);
    if (isWaiting(record)) {
      const place = await this.queuePlace(record);
      if (place) initial.push(queueEvent(place));
    }
    // Not awaited: writes resolve only as the client reads, and the response must be returned first.
    void (async () => {
      try {
        for (const event of initial) await writer.write(encodeSse(event));
        if (isTerminal(record.status)) await writer.close();
        else {
          this.subscribers.add(writer);
          this.watchQueue();
        }
      } catch {
        this.subscribers.delete(writer);
      }
    })();
    return new Response(readable, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' },
    });
  }

  override async alarm(): Promise<void> {
    const record = await this.load();
    if (!record) return;
    await this.runWebhookOutbox(record);
    await this.scheduleAlarm();
  }

  // --- transitions and their side effects -----------------------------------------------------------------------

  private async commit(prev: PredictionRecord, change: Change | null, { leaveLine = true } = {}): Promise<void> {
    if (!change) return;
    const next = change.record;
    await this.save(next);
    this.push(changeEvents(prev, next), isTerminal(next.status));
    await this.queueWebhooks(next, change.events);
    if (isTerminal(next.status)) {
      // Out of the line (waiting) or off its lease (running): the slot goes to the next prediction at once.
      if (leaveLine) {
        await queueStub(this.env, this.pool(next))
          .remove(next.id)
          .catch((err) => this.log(next).error('leaving the line failed', errorFields(err)));
      }
      this.log(next).info('prediction finished', { status: next.status, error: next.error, metrics: next.metrics });
      for (const wake of [...this.waiters]) wake();
      try {
        await admission().releaseInFlight(this.env, next.ownerKeyId, next.id);
      } catch (err) {
        this.log(next).error('releasing the in-flight slot failed', errorFields(err));
      }
    }
    await this.scheduleAlarm();
  }

  private push(events: SseEvent[], close: boolean): void {
    for (const writer of [...this.subscribers]) {
      void (async () => {
        try {
          for (const event of events) await writer.write(encodeSse(event));
          if (close) await writer.close();
        } catch {
          this.subscribers.delete(writer);
        }
      })();
      if (close) this.subscribers.delete(writer);
    }
  }

  private async queueWebhooks(record: PredictionRecord, events: WebhookEvent[]): Promise<void> {
    if (!record.webhook || events.length === 0) return;
    const body = JSON.stringify(toPublicPrediction(record, this.config.publicBaseUrl));
    const outbox = enqueueDeliveries(
      await this.loadOutbox(),
      events,
      effectiveFilter(record.webhookEventsFilter),
      body,
      record.id,
      Date.now(),
    );
    this.outbox = outbox;
    await putLarge(this.ctx.storage, OUTBOX, outbox);
  }

  private async runWebhookOutbox(record: PredictionRecord): Promise<void> {
    const outbox = await this.loadOutbox();
    if (!record.webhook || outbox.length === 0) return;
    const deliver = httpDeliverer(this.config.secrets.webhookSigningSecret, this.outbound, undefined, this.config.webhooks);
    const result = await runOutbox(outbox, record.webhook, deliver, Date.now());
    // Items queued while delivering (another transition) are kept.
    const fresh = (this.outbox ?? []).filter((item) => !outbox.some((o) => o.msgId === item.msgId));
    this.outbox = [...result.outbox, ...fresh];
    await putLarge(this.ctx.storage, OUTBOX, this.outbox);
    for (const item of result.dropped) {
      this.log(record).warn('client webhook given up', { event: item.event, attempts: item.attempts });
    }
  }

  /** While someone watches the stream of a waiting prediction: its place in the line, as `queue` events. */
  private watchQueue(): void {
    if (this.watchingQueue) return;
    this.watchingQueue = true;
    void (async () => {
      let last = '';
      try {
        while (this.subscribers.size > 0 && this.record && isWaiting(this.record)) {
          const place = await this.queuePlace(this.record);
          const event = place ? queueEvent(place) : null;
          if (event && event.data !== last) {
            last = event.data;
            this.push([event], false);
          }
          await new Promise((r) => setTimeout(r, QUEUE_WATCH_MS));
        }
      } finally {
        this.watchingQueue = false;
      }
    })();
  }

  /** The prediction's place in its model's line, or null when it is not waiting there. */
  async queuePlace(record: PredictionRecord): Promise<QueueView | null> {
    try {
      const place = await queueStub(this.env, this.pool(record)).place(record.id);
      return queueViewOf(place) ?? null;
    } catch (err) {
      this.log(record).warn('reading the place in line failed', errorFields(err));
      return null;
    }
  }

  /** One alarm at the next webhook retry; setAlarm only when that time changes (each call is a storage write). */
  private async scheduleAlarm(): Promise<void> {
    const times = (this.outbox ?? []).map((item) => item.nextAt);
    if (times.length === 0) {
      if (this.alarmAt !== null) await this.ctx.storage.deleteAlarm();
      this.alarmAt = null;
      return;
    }
    const at = Math.max(Math.min(...times), Date.now());
    if (at === this.alarmAt) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Tells a push target (a Cog host we do not run, or Replicate) to stop; pull runners learn it from their lease. */
  private async cancelOnPushTarget(record: PredictionRecord): Promise<void> {
    const d = record.dispatch;
    if (!d.runner || d.leaseId === null) return;
    const model = resolveModel(this.config, `${record.model}:${record.version}`);
    if (!model) return;
    if (model.backend === 'replicate' && d.remoteId) {
      const token = this.config.secrets.replicateApiToken;
      const baseUrl = model.replicate?.baseUrl ?? 'https://api.replicate.com/v1';
      if (token) await cancelOnReplicate(baseUrl, d.remoteId, { token, fetch: this.outbound });
      return;
    }
    if (!model.runners.includes(d.runner)) return;
    await cancelOnCog(d.runner, d.remoteId ?? runnerPredictionId(record.id, d.attempt), {
      token: this.config.secrets.runnerToken,
      timeoutMs: this.config.dispatch.requestTimeoutMs,
      fetch: this.outbound,
    });
  }

  private async storeEmbeddings(
    record: PredictionRecord,
    embeddings: NonNullable<RunnerPrediction['embeddings']>,
  ): Promise<void> {
    const keys = record.job.cacheKeys;
    if (!keys) return;
    try {
      // A runner's odd result must not poison the cache for every later request with the same prompt.
      const problem = record.job.tokens ? embeddingsShapeProblem(embeddings, record.job.tokens) : null;
      if (problem) throw new Error(problem);
      const cache = new EmbeddingCache({ kv: this.env.EMBEDDINGS, ttlSeconds: this.config.embeddingTtlSeconds });
      await cache.putPair(keys, embeddings);
      this.log(record).info('embeddings cached', { keys });
    } catch (err) {
      // A bad tensor from a runner must not fail a prediction that succeeded.
      this.log(record).warn('embeddings not cached', errorFields(err));
    }
  }
}
