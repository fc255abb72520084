// One Durable Object per prediction: the single owner of its state. Every change goes through commit(), where the side
// effects hang: SSE push, waiters (Prefer: wait), client webhooks (outbox + alarm), embedding cache write, in-flight release.
// The alarm also watches the runner: silent past the deadline, the prediction is requeued under a new generation.

import { DurableObject } from 'cloudflare:workers';
import { isTerminal, type WebhookEvent } from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { admission } from '../admission.ts';
import { type EdgeConfig, getConfig } from '../config.ts';
import { cancelOnCog } from '../dispatch/cog-backend.ts';
import { cancelOnReplicate } from '../dispatch/replicate-backend.ts';
import { EmbeddingCache, embeddingsShapeProblem } from '../embeddings/embedding-cache.ts';
import { errorFields, logger } from '../log.ts';
import { effectiveFilter, enqueueDeliveries, httpDeliverer, type OutboxItem, runOutbox } from '../webhooks/client-webhooks.ts';
import { getLarge, putLarge } from './chunked-storage.ts';
import {
  applyRunnerUpdate,
  type Change,
  cancelPrediction,
  failPrediction,
  type PredictionRecord,
  toPublicPrediction,
} from './prediction-record.ts';
import { changeEvents, encodeSse, type SseEvent, snapshotEvents } from './sse-events.ts';

export type ClaimResult =
  | { kind: 'dispatch'; record: PredictionRecord }
  | { kind: 'skip'; reason: string }
  | { kind: 'busy'; retryAfterSeconds: number };

export interface JobMessage {
  predictionId: string;
  generation: number;
}

const RECORD = 'record';
const OUTBOX = 'outbox';
const INPUT = 'input';

export class PredictionObject extends DurableObject<Env> {
  private record: PredictionRecord | null | undefined;
  private outbox: OutboxItem[] | undefined;
  private readonly subscribers = new Set<WritableStreamDefaultWriter<Uint8Array>>();
  private readonly waiters = new Set<() => void>();
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

  /** A queue consumer asks to dispatch `generation`; at most one holds the lease at a time. */
  async claimDispatch(generation: number, leaseMs: number): Promise<ClaimResult> {
    const record = await this.load();
    if (!record) return { kind: 'skip', reason: 'no such prediction' };
    if (isTerminal(record.status)) return { kind: 'skip', reason: `prediction is ${record.status}` };
    if (generation !== record.dispatch.generation) return { kind: 'skip', reason: `stale generation ${generation}` };
    if (record.dispatch.runner) return { kind: 'skip', reason: `already accepted by ${record.dispatch.runner}` };
    const now = Date.now();
    const lease = record.dispatch.leaseUntil;
    if (lease !== null && lease > now) return { kind: 'busy', retryAfterSeconds: Math.ceil((lease - now) / 1000) };
    await this.save({ ...record, dispatch: { ...record.dispatch, leaseUntil: now + leaseMs } });
    return { kind: 'dispatch', record: this.record as PredictionRecord };
  }

  async dispatchAccepted(
    generation: number,
    runner: string,
    remoteId: string | null,
    embeddingCache: 'hit' | 'miss' | null,
  ): Promise<void> {
    const record = await this.load();
    if (!record || record.dispatch.generation !== generation) return;
    const now = Date.now();
    const metrics = embeddingCache ? { ...record.metrics, embedding_cache: embeddingCache } : record.metrics;
    await this.save({
      ...record,
      metrics,
      dispatch: { ...record.dispatch, runner, remoteId, acceptedAt: now, lastHeardAt: now, leaseUntil: null, lastError: null },
    });
    this.log(record).info('dispatched', { runner, generation, embeddingCache });
    await this.scheduleAlarm();
    if (isTerminal(record.status)) await this.cancelOnRunner(this.record as PredictionRecord);
  }

  async dispatchRefused(generation: number, error: string): Promise<void> {
    const record = await this.load();
    if (!record || record.dispatch.generation !== generation) return;
    await this.save({ ...record, dispatch: { ...record.dispatch, leaseUntil: null, lastError: error } });
    this.log(record).warn('dispatch refused', { generation, reason: error });
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
    if (change) await this.cancelOnRunner(record);
    return this.record ?? null;
  }

  /**
   * A verified runner webhook. `generation` comes from the webhook URL; an update from an older generation (a runner
   * that was given up on) or from another remote prediction is ignored.
   */
  async runnerUpdate(update: RunnerPrediction, generation: number | null): Promise<{ applied: boolean; reason?: string }> {
    const record = await this.load();
    if (!record) return { applied: false, reason: 'no such prediction' };
    if (generation !== null && generation !== record.dispatch.generation) {
      return { applied: false, reason: `stale generation ${generation} (current ${record.dispatch.generation})` };
    }
    const expectedId = record.dispatch.remoteId ?? record.id;
    if (update.id !== expectedId) return { applied: false, reason: `envelope id ${update.id} is not ${expectedId}` };
    const change = applyRunnerUpdate(record, update, Date.now());
    if (!change) return { applied: false, reason: `prediction is ${record.status}` };
    await this.commit(record, change);
    if (update.embeddings && record.job.cacheKeys && change.record.status === 'succeeded') {
      await this.storeEmbeddings(record, update.embeddings);
    }
    return { applied: true };
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
    // Not awaited: writes resolve only as the client reads, and the response must be returned first.
    void (async () => {
      try {
        for (const event of initial) await writer.write(encodeSse(event));
        if (isTerminal(record.status)) await writer.close();
        else this.subscribers.add(writer);
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
    await this.checkRunnerSilence(record);
    await this.scheduleAlarm();
  }

  // --- transitions and their side effects -----------------------------------------------------------------------

  private async commit(prev: PredictionRecord, change: Change | null): Promise<void> {
    if (!change) return;
    const next = change.record;
    await this.save(next);
    this.push(changeEvents(prev, next), isTerminal(next.status));
    await this.queueWebhooks(next, change.events);
    if (isTerminal(next.status)) {
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
    const deliver = httpDeliverer(this.config.secrets.webhookSigningSecret, this.outbound);
    const result = await runOutbox(outbox, record.webhook, deliver, Date.now());
    // Items queued while delivering (another transition) are kept.
    const fresh = (this.outbox ?? []).filter((item) => !outbox.some((o) => o.msgId === item.msgId));
    this.outbox = [...result.outbox, ...fresh];
    await putLarge(this.ctx.storage, OUTBOX, this.outbox);
    for (const item of result.dropped) {
      this.log(record).warn('client webhook given up', { event: item.event, attempts: item.attempts });
    }
  }

  private async checkRunnerSilence(record: PredictionRecord): Promise<void> {
    const d = record.dispatch;
    if (isTerminal(record.status) || !d.runner || d.lastHeardAt === null) return;
    const silenceMs = this.config.dispatch.runnerSilenceSeconds * 1000;
    if (Date.now() - d.lastHeardAt < silenceMs) return;
    const log = this.log(record);
    if (d.requeues >= this.config.dispatch.maxRequeues) {
      log.warn('runner silent; giving up', { runner: d.runner, requeues: d.requeues });
      await this.fail(
        `runner ${d.runner} sent nothing for ${this.config.dispatch.runnerSilenceSeconds}s and the prediction was already requeued ${d.requeues} times`,
      );
      await this.cancelOnRunner(record);
      return;
    }
    const generation = d.generation + 1;
    log.warn('runner silent; requeueing', { runner: d.runner, generation });
    await this.cancelOnRunner(record);
    await this.save({
      ...record,
      dispatch: {
        ...d,
        generation,
        runner: null,
        remoteId: null,
        acceptedAt: null,
        lastHeardAt: null,
        leaseUntil: null,
        requeues: d.requeues + 1,
        // Not back to it first: a dead runner costs a retry, and a live one whose webhooks do not arrive would take
        // the PUT again (idempotent on the id) and stay silent until the requeues are spent.
        silentRunners: [...(d.silentRunners ?? []), d.runner],
      },
    });
    const message: JobMessage = { predictionId: record.id, generation };
    await this.env.JOBS.send(message);
  }

  private async scheduleAlarm(): Promise<void> {
    const record = this.record;
    if (!record) return;
    const times: number[] = [];
    for (const item of this.outbox ?? []) times.push(item.nextAt);
    const d = record.dispatch;
    if (!isTerminal(record.status) && d.runner && d.lastHeardAt !== null) {
      times.push(d.lastHeardAt + this.config.dispatch.runnerSilenceSeconds * 1000);
    }
    if (times.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Math.min(...times), Date.now()));
  }

  private async cancelOnRunner(record: PredictionRecord): Promise<void> {
    const d = record.dispatch;
    if (!d.runner) return;
    const model = this.config.models.find((m) => m.id === record.model && m.version === record.version);
    if (model?.backend === 'replicate' && d.remoteId) {
      const token = this.config.secrets.replicateApiToken;
      if (token) await cancelOnReplicate(d.runner, d.remoteId, { token, fetch: this.outbound });
      return;
    }
    await cancelOnCog(d.runner, d.remoteId ?? record.id, {
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
