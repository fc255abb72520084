// One Durable Object per prediction: the single owner of its state. It loads the record, applies one pure transition
// of prediction-transitions.ts, commits the change and runs the side effects hanging off it: SSE push, waiters
// (Prefer: wait), client webhooks (outbox + alarm), embedding cache write, leaving the model's line, stopping a push
// target, in-flight release. The line and the leases are the ModelQueue's; this object only believes reports from
// the lease it holds as current.

import { DurableObject } from 'cloudflare:workers';
import { isTerminal, type WebhookEvent } from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { admission } from '../admission.ts';
import { type EdgeConfig, getConfig, resolveModel } from '../config.ts';
import type { LeaseGrant, LeaseHolder } from '../dispatch/lease-holder.ts';
import { backendFor } from '../dispatch/model-backend.ts';
import { poolOf, queueStub } from '../dispatch/queue-stub.ts';
import { EmbeddingCache, embeddingsShapeProblem } from '../embeddings/embedding-cache.ts';
import { errorFields, logger } from '../log.ts';
import { effectiveFilter, enqueueDeliveries, httpDeliverer, type OutboxItem, runOutbox } from '../webhooks/client-webhooks.ts';
import { getLarge, putLarge } from './chunked-storage.ts';
import { placeInLine } from './place-in-line.ts';
import { type DispatchState, isWaiting, type PredictionRecord, toPublicPrediction } from './prediction-record.ts';
import {
  acceptPush,
  applyRunnerUpdate,
  type Change,
  type Claim,
  cancelPrediction,
  claimLease,
  type Effect,
  failPrediction,
  loseLease,
  type ReportSource,
  refuseReport,
  releaseLease,
} from './prediction-transitions.ts';
import { changeEvents, encodeSse, queueEvent, type SseEvent, snapshotEvents } from './sse-events.ts';

/** How often a watched stream of a waiting prediction re-reads its place in line. */
const QUEUE_WATCH_MS = 1000;

const RECORD = 'record';
const OUTBOX = 'outbox';
const INPUT = 'input';

export class PredictionObject extends DurableObject<Env> implements LeaseHolder {
  private record: PredictionRecord | null | undefined;
  private outbox: OutboxItem[] | undefined;
  private readonly subscribers = new Set<WritableStreamDefaultWriter<Uint8Array>>();
  private readonly waiters = new Set<() => void>();
  private alarmAt: number | null = null;
  private watchingQueue = false;
  /** Outbound HTTP for client webhooks; a test may replace it. */
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

  /** claim: the line handed this prediction to a runner (or a push target); it becomes the current lease, unless it ended. */
  async claimLease(grant: LeaseGrant): Promise<Claim> {
    const record = await this.load();
    if (!record) return { kind: 'drop', reason: 'no such prediction' };
    const claim = claimLease(record, grant, Date.now());
    if (claim.kind === 'run') {
      await this.commit(record, { record: claim.record, events: [], effects: [] });
      this.log(record).info('leased', { runner: grant.runnerId, attempt: grant.attempt });
    }
    return claim;
  }

  /** accept: a push target took the prediction. */
  async pushAccepted(leaseId: string, remoteId: string | null, embeddingCache: 'hit' | 'miss' | null): Promise<void> {
    const record = await this.load();
    if (record) await this.commit(record, acceptPush(record, leaseId, remoteId, embeddingCache, Date.now()));
  }

  /** release: the lease holder gave the prediction back without running it. */
  async leaseReleased(leaseId: string): Promise<void> {
    const record = await this.load();
    if (record) await this.commit(record, releaseLease(record, leaseId));
  }

  /** requeue: the line found this lease silent past its TTL: requeue it (it stays ours to run) or drop it (it ended). */
  async leaseLost(leaseId: string): Promise<'requeue' | 'drop'> {
    const record = await this.load();
    if (!record) return 'drop';
    const loss = loseLease(record, leaseId, this.config.dispatch.maxRequeues, Date.now());
    if (loss.verdict === 'drop') return 'drop';
    this.log(record).warn('lease lost', { runner: record.dispatch.runner, verdict: loss.verdict });
    await this.commit(record, loss.change);
    return loss.verdict === 'requeue' ? 'requeue' : 'drop';
  }

  /** finish with an error (no GPU within the queue time, the host refused the input, ...). */
  async fail(error: string): Promise<PredictionRecord | null> {
    const record = await this.load();
    if (!record) return null;
    await this.commit(record, failPrediction(record, error, Date.now()));
    return this.record ?? null;
  }

  async cancel(): Promise<PredictionRecord | null> {
    const record = await this.load();
    if (!record) return null;
    await this.commit(record, cancelPrediction(record, Date.now()));
    return this.record ?? null;
  }

  /**
   * runner update: a verified runner report (a pull runner's, naming its lease; a push target's webhook, naming its
   * attempt). Only the current lease is believed; `stop` tells the runner to give up (its lease is gone, or it ended).
   */
  async runnerReport(
    source: ReportSource,
    update: RunnerPrediction,
  ): Promise<{ applied: boolean; reason?: string; stop: boolean }> {
    const record = await this.load();
    if (!record) return { applied: false, reason: 'no such prediction', stop: true };
    const refusal = refuseReport(record, source, update.id, this.heldByPushTarget(record));
    if (refusal) return { applied: false, ...refusal };
    const change = applyRunnerUpdate(record, update, source, Date.now());
    if (!change) return { applied: false, reason: `prediction is ${record.status}`, stop: isTerminal(record.status) };
    await this.commit(record, change);
    return { applied: true, stop: isTerminal(change.record.status) };
  }

  /** Whether the current lease holder is one of the model's push targets (not a pull runner). */
  private heldByPushTarget(record: PredictionRecord): boolean {
    const holder = record.dispatch.runner;
    const model = resolveModel(this.config, `${record.model}:${record.version}`);
    return holder !== null && model !== null && backendFor(this.config, model).isPushTarget(holder);
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
    const place = await placeInLine(this.env, record);
    if (place) initial.push(queueEvent(place));
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

  /** Stores a change, tells the stream's subscribers and the client's webhook, then runs the change's effects. */
  private async commit(prev: PredictionRecord, change: Change | null): Promise<void> {
    if (!change) return;
    const next = change.record;
    await this.save(next);
    this.push(changeEvents(prev, next), isTerminal(next.status));
    await this.queueWebhooks(next, change.events);
    if (isTerminal(next.status) && !isTerminal(prev.status)) {
      this.log(next).info('prediction finished', { status: next.status, error: next.error, metrics: next.metrics });
      for (const wake of [...this.waiters]) wake();
    }
    for (const effect of change.effects) await this.run(effect, next);
    await this.scheduleAlarm();
  }

  private async run(effect: Effect, record: PredictionRecord): Promise<void> {
    switch (effect.kind) {
      case 'leave-line':
        await queueStub(this.env, this.pool(record))
          .remove(record.id)
          .catch((err) => this.log(record).error('leaving the line failed', errorFields(err)));
        return;
      case 'release-slot':
        await admission()
          .releaseInFlight(this.env, record.ownerKeyId, record.id)
          .catch((err) => this.log(record).error('releasing the in-flight slot failed', errorFields(err)));
        return;
      case 'stop-holder':
        await this.stopHolder(record, effect.holder);
        return;
      case 'cache-embeddings':
        await this.storeEmbeddings(record, effect.embeddings);
        return;
      case 'heartbeat':
        await queueStub(this.env, this.pool(record))
          .heartbeat(effect.leaseId, effect.runner)
          .catch((err) => this.log(record).warn('heartbeat to the line failed', errorFields(err)));
        return;
    }
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
          const place = await placeInLine(this.env, this.record);
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
  private async stopHolder(record: PredictionRecord, d: DispatchState): Promise<void> {
    const model = resolveModel(this.config, `${record.model}:${record.version}`);
    if (!model || d.leaseId === null) return;
    await backendFor(this.config, model).stop({
      predictionId: record.id,
      attempt: d.attempt,
      runner: d.runner,
      remoteId: d.remoteId,
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
