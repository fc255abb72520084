// One Durable Object per model pool: the line of predictions waiting for a GPU and the leases of those running.
// Runners pull (long-poll lease, heartbeat, report); push targets (third-party Cog hosts, Replicate) are fed from the
// same line when they have capacity. A lease that misses its heartbeats goes back to the head of the line; a job that
// waits past the maximum queue time fails. SQLite storage, so every change is atomic and survives a restart.
import { DurableObject } from 'cloudflare:workers';
import { type EdgeConfig, getConfig, type ModelConfig, resolveModel } from '../config.ts';
import { errorFields, logger } from '../log.ts';
import type { Backend, PushTarget } from './backend.ts';
import { leaseHolder } from './lease-holder.ts';
import { estimateStart, fairTag, leaseTimings, type QueueStats, type StartEstimate, updateMeanRunMs } from './line.ts';
import { backendFor } from './model-backend.ts';
import { pushToTarget } from './push-dispatch.ts';

export type { QueueStats };

export interface EnqueueRequest {
  pool: string;
  predictionId: string;
  ownerKey: string;
  createdMs: number;
}

export type EnqueueResult = { ok: true } | { ok: false; waiting: number; limit: number; retryAfterSeconds: number };

export interface Lease {
  leaseId: string;
  predictionId: string;
  /** 0 on the first lease of a prediction, one more on every requeue. */
  attempt: number;
  runnerId: string;
  ttlMs: number;
  heartbeatMs: number;
  fenceMs: number;
}

export interface QueuePlace extends StartEstimate {
  state: 'waiting' | 'leased' | 'held' | 'absent';
  waiting: number;
}

interface JobRow {
  prediction_id: string;
  owner_key: string;
  seq: number;
  tag: number;
  head: number;
  state: 'held' | 'waiting' | 'leased';
  attempt: number;
  lease_id: string | null;
  runner: string | null;
  lease_expires_ms: number | null;
  leased_ms: number | null;
  created_ms: number;
  graced: number;
  [key: string]: SqlStorageValue;
}

interface Poller {
  runnerId: string;
  resolve: (lease: Lease | null) => void;
}

/** A held job (reserved by create, not yet recorded) that was never activated: its create failed. */
const HELD_TIMEOUT_MS = 60_000;
const RUNNER_SEEN_WINDOW_MS = 60_000;

export class ModelQueue extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly pollers: Poller[] = [];
  /** Push targets: leases in flight per target, and when a refusing target may be asked again. */
  private readonly pushInFlight = new Map<string, number>();
  private readonly pushBackoff = new Map<string, { until: number; failures: number }>();
  private alarmAt: number | null = null;
  private pumping = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        prediction_id TEXT PRIMARY KEY, owner_key TEXT NOT NULL, seq INTEGER NOT NULL, tag REAL NOT NULL,
        head INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
        lease_id TEXT, runner TEXT, lease_expires_ms INTEGER, leased_ms INTEGER, created_ms INTEGER NOT NULL,
        graced INTEGER NOT NULL DEFAULT 0);
      CREATE INDEX IF NOT EXISTS jobs_next ON jobs (state, head DESC, tag, seq);
      CREATE UNIQUE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_id);
      CREATE TABLE IF NOT EXISTS key_tags (owner_key TEXT PRIMARY KEY, last_tag REAL NOT NULL);
      CREATE TABLE IF NOT EXISTS runners (runner_id TEXT PRIMARY KEY, slots INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v);
    `);
  }

  private get config(): EdgeConfig {
    return getConfig(this.env);
  }

  private meta(k: string): number | null {
    const row = this.sql.exec<{ v: number | null }>('SELECT v FROM meta WHERE k = ?', k).toArray()[0];
    return row?.v ?? null;
  }

  private setMeta(k: string, v: number | string): void {
    this.sql.exec('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v', k, v);
  }

  private poolName(): string {
    const row = this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'pool'").toArray()[0];
    return row?.v ?? '';
  }

  private model(): ModelConfig | null {
    return resolveModel(this.config, this.poolName());
  }

  private backend(): Backend | null {
    const model = this.model();
    return model ? backendFor(this.config, model) : null;
  }

  private maxQueueSeconds(): number {
    return this.model()?.maxQueueSeconds ?? this.config.dispatch.maxQueueSeconds;
  }

  /** Jobs per state, in one grouped query: held and waiting are both "in line", leased ones are running. */
  private counts(): { waiting: number; inLine: number; leased: number } {
    const rows = this.sql.exec<{ state: string; n: number }>('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').toArray();
    const of = (state: string) => rows.find((r) => r.state === state)?.n ?? 0;
    return { waiting: of('waiting'), inLine: of('waiting') + of('held'), leased: of('leased') };
  }

  // --- the line ----------------------------------------------------------------------------------------------------

  /**
   * Reserves a place at the back of the line (fair across keys), held until activate(): the prediction's record does
   * not exist yet, so no runner may take it. Refused when the line is full, before the caller stores anything.
   */
  async enqueue(request: EnqueueRequest, maxBacklog: number): Promise<EnqueueResult> {
    this.setMeta('pool', request.pool);
    const existing = this.sql.exec('SELECT 1 FROM jobs WHERE prediction_id = ?', request.predictionId).toArray();
    if (existing.length > 0) return { ok: true };
    const waiting = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE state != 'leased'").one().n;
    if (waiting >= maxBacklog) {
      const mean = this.meta('mean_run_ms') ?? 10_000;
      const slots = Math.max(1, this.liveSlots(Date.now()));
      return { ok: false, waiting, limit: maxBacklog, retryAfterSeconds: Math.max(1, Math.ceil(mean / slots / 1000)) };
    }
    const seq = (this.meta('next_seq') ?? 0) + 1;
    this.setMeta('next_seq', seq);
    const keyTag = this.sql
      .exec<{ last_tag: number }>('SELECT last_tag FROM key_tags WHERE owner_key = ?', request.ownerKey)
      .toArray()[0];
    const tag = fairTag(this.meta('clock') ?? 0, keyTag?.last_tag ?? null);
    this.sql.exec(
      'INSERT INTO key_tags (owner_key, last_tag) VALUES (?, ?) ON CONFLICT (owner_key) DO UPDATE SET last_tag = excluded.last_tag',
      request.ownerKey,
      tag,
    );
    this.sql.exec(
      "INSERT INTO jobs (prediction_id, owner_key, seq, tag, state, created_ms) VALUES (?, ?, ?, ?, 'held', ?)",
      request.predictionId,
      request.ownerKey,
      seq,
      tag,
      request.createdMs,
    );
    await this.scheduleAlarm();
    return { ok: true };
  }

  /** The prediction is recorded: it may now be leased. */
  async activate(predictionId: string): Promise<void> {
    this.sql.exec("UPDATE jobs SET state = 'waiting' WHERE prediction_id = ? AND state = 'held'", predictionId);
    this.handOut();
    await this.scheduleAlarm();
  }

  /** Leaves the line (canceled while waiting, or finished): the job and any lease on it are gone. */
  async remove(predictionId: string): Promise<void> {
    const job = this.job(predictionId);
    if (!job) return;
    this.sql.exec('DELETE FROM jobs WHERE prediction_id = ?', predictionId);
    if (job.state === 'leased' && job.leased_ms !== null) {
      this.setMeta('mean_run_ms', updateMeanRunMs(this.meta('mean_run_ms'), Date.now() - job.leased_ms));
    }
    this.freePushSlot(job.runner);
    this.handOut();
    await this.scheduleAlarm();
  }

  private job(predictionId: string): JobRow | null {
    return this.sql.exec<JobRow>('SELECT * FROM jobs WHERE prediction_id = ?', predictionId).toArray()[0] ?? null;
  }

  /** Where a prediction stands: its place in the line and when it should start. */
  async place(predictionId: string): Promise<QueuePlace> {
    const now = Date.now();
    const job = this.job(predictionId);
    const counts = this.counts();
    const waiting = counts.inLine;
    if (!job) return { state: 'absent', waiting, position: 0, estimatedStartMs: null };
    if (job.state === 'leased') return { state: 'leased', waiting, position: 0, estimatedStartMs: job.leased_ms };
    const ahead = this.sql
      .exec<{ n: number }>(
        `SELECT COUNT(*) AS n FROM jobs WHERE state IN ('waiting', 'held') AND prediction_id != ?
         AND (head > ? OR (head = ? AND (tag < ? OR (tag = ? AND seq < ?))))`,
        predictionId,
        job.head,
        job.head,
        job.tag,
        job.tag,
        job.seq,
      )
      .one().n;
    const slots = this.liveSlots(now);
    // Free slots start the next jobs at once; the rest wait for runs to finish.
    const free = Math.max(0, slots - counts.leased);
    const estimatedStartMs =
      slots > 0 && ahead < free ? now : estimateStart(ahead - free, slots, this.meta('mean_run_ms'), now).estimatedStartMs;
    return { state: job.state, waiting, position: ahead, estimatedStartMs };
  }

  async stats(pool: string): Promise<QueueStats> {
    const now = Date.now();
    const oldest = this.sql
      .exec<{ t: number | null }>("SELECT MIN(created_ms) AS t FROM jobs WHERE state IN ('waiting', 'held')")
      .one().t;
    const runners = this.sql
      .exec<{ n: number; s: number | null }>(
        'SELECT COUNT(*) AS n, SUM(slots) AS s FROM runners WHERE last_seen_ms > ?',
        now - RUNNER_SEEN_WINDOW_MS,
      )
      .one();
    const mean = this.meta('mean_run_ms');
    const counts = this.counts();
    return {
      pool: this.poolName() || pool,
      waiting: counts.inLine,
      running: counts.leased,
      runners: runners.n,
      slots: this.liveSlots(now),
      oldestWaitSeconds: oldest === null ? 0 : Math.max(0, (now - oldest) / 1000),
      meanRunSeconds: mean === null ? null : mean / 1000,
    };
  }

  /** Slots of the pull runners seen lately plus the push targets' capacity. */
  private liveSlots(now: number): number {
    const pulled =
      this.sql
        .exec<{ s: number | null }>('SELECT SUM(slots) AS s FROM runners WHERE last_seen_ms > ?', now - RUNNER_SEEN_WINDOW_MS)
        .one().s ?? 0;
    return pulled + this.pushTargets().reduce((sum, t) => sum + t.slots, 0);
  }

  // --- leases ------------------------------------------------------------------------------------------------------

  /** Takes the next job for `runnerId`, or null when the line is empty. Synchronous: nothing interleaves. */
  private takeNext(runnerId: string, ttlMs: number): Lease | null {
    const job = this.sql
      .exec<JobRow>("SELECT * FROM jobs WHERE state = 'waiting' ORDER BY head DESC, tag, seq LIMIT 1")
      .toArray()[0];
    if (!job) return null;
    const now = Date.now();
    const leaseId = `lease_${crypto.randomUUID().replaceAll('-', '')}`;
    this.sql.exec(
      "UPDATE jobs SET state = 'leased', lease_id = ?, runner = ?, lease_expires_ms = ?, leased_ms = ? WHERE prediction_id = ?",
      leaseId,
      runnerId,
      now + ttlMs,
      now,
      job.prediction_id,
    );
    if (!job.head) this.setMeta('clock', Math.max(this.meta('clock') ?? 0, job.tag));
    const timings = leaseTimings(ttlMs / 1000);
    return { leaseId, predictionId: job.prediction_id, attempt: job.attempt, runnerId, ...timings, ttlMs };
  }

  private seen(runnerId: string, slots: number, now: number): void {
    this.sql.exec(
      'INSERT INTO runners (runner_id, slots, last_seen_ms) VALUES (?, ?, ?) ON CONFLICT (runner_id) DO UPDATE SET slots = excluded.slots, last_seen_ms = excluded.last_seen_ms',
      runnerId,
      slots,
      now,
    );
  }

  /**
   * A pull runner asks for work: the next job at once, or the first one that arrives within `waitMs` (long poll).
   * The lease must be heartbeated within its TTL, or it goes back to the head of the line.
   */
  async lease(pool: string, runnerId: string, slots: number, waitMs: number): Promise<Lease | null> {
    this.setMeta('pool', pool);
    this.seen(runnerId, slots, Date.now());
    const ttlMs = this.config.dispatch.leaseTtlSeconds * 1000;
    const now = this.takeNext(runnerId, ttlMs);
    if (now) {
      await this.scheduleAlarm();
      return now;
    }
    if (waitMs <= 0) return null;
    const lease = await new Promise<Lease | null>((resolve) => {
      const poller: Poller = {
        runnerId,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        const i = this.pollers.indexOf(poller);
        if (i >= 0) this.pollers.splice(i, 1);
        resolve(null);
      }, waitMs);
      this.pollers.push(poller);
    });
    if (lease) await this.scheduleAlarm();
    return lease;
  }

  /** New work or a freed lease: wake waiting runners (oldest poll first), then feed push targets. */
  private handOut(): void {
    const ttlMs = this.config.dispatch.leaseTtlSeconds * 1000;
    while (this.pollers.length > 0) {
      const poller = this.pollers[0];
      const lease = this.takeNext(poller.runnerId, ttlMs);
      if (!lease) break;
      this.pollers.shift();
      poller.resolve(lease);
    }
    void this.pump();
  }

  /** Extends a lease. False: the lease is gone (expired and requeued, canceled, finished): the runner must stop. */
  async heartbeat(leaseId: string, runnerId: string | null, slots = 1): Promise<{ ok: boolean; predictionId: string | null }> {
    const now = Date.now();
    const job = this.sql.exec<JobRow>('SELECT * FROM jobs WHERE lease_id = ?', leaseId).toArray()[0];
    // runnerId null: a report under the lease, which is itself the capability.
    if (job?.state !== 'leased' || (runnerId !== null && job.runner !== runnerId)) {
      return { ok: false, predictionId: job?.prediction_id ?? null };
    }
    const holder = job.runner as string;
    const ttlMs = this.ttlFor(holder);
    this.sql.exec('UPDATE jobs SET lease_expires_ms = ? WHERE lease_id = ?', now + ttlMs, leaseId);
    if (runnerId !== null && !this.isPushTarget(holder)) this.seen(holder, slots, now);
    await this.scheduleAlarm();
    return { ok: true, predictionId: job.prediction_id };
  }

  /**
   * The lease holder gives the job back without having run it (a push target refused it, a runner shutting down):
   * back to the head of the line, not counted as a requeue.
   */
  async release(leaseId: string): Promise<void> {
    const job = this.sql.exec<JobRow>('SELECT * FROM jobs WHERE lease_id = ?', leaseId).toArray()[0];
    if (job?.state !== 'leased') return;
    // The record first: until it lets go of this lease, no other lease of the prediction could be claimed.
    await leaseHolder(this.env, job.prediction_id).leaseReleased(leaseId);
    this.sql.exec(
      "UPDATE jobs SET state = 'waiting', head = 1, lease_id = NULL, runner = NULL, lease_expires_ms = NULL, leased_ms = NULL WHERE lease_id = ?",
      leaseId,
    );
    this.handOut();
    await this.scheduleAlarm();
  }

  /**
   * The lease holder refused the input for good (a pull runner's own 422, e.g. a limit of the model it loaded that the
   * edge cannot know): waiting for another runner of the same model cannot help, so the prediction fails with the
   * runner's message and leaves the line. Only the current lease may refuse.
   */
  async refuse(leaseId: string, message: string): Promise<void> {
    const job = this.sql.exec<JobRow>('SELECT * FROM jobs WHERE lease_id = ?', leaseId).toArray()[0];
    if (job?.state !== 'leased') return;
    await leaseHolder(this.env, job.prediction_id).fail(`the model host rejected the input: ${message}`);
    await this.remove(job.prediction_id);
  }

  private ttlFor(runnerId: string): number {
    // Push targets are only heard from through their webhooks, which come per event, not per heartbeat.
    return this.isPushTarget(runnerId)
      ? this.config.dispatch.runnerSilenceSeconds * 1000
      : this.config.dispatch.leaseTtlSeconds * 1000;
  }

  // --- push targets ------------------------------------------------------------------------------------------------

  private pushTargets(): readonly PushTarget[] {
    return this.backend()?.pushTargets ?? [];
  }

  /** A push target's lease ended (or was never taken): its slot is free again. Pull runners have no count here. */
  private freePushSlot(runnerId: string | null): void {
    const n = runnerId === null ? undefined : this.pushInFlight.get(runnerId);
    if (runnerId !== null && n !== undefined) this.pushInFlight.set(runnerId, Math.max(0, n - 1));
  }

  private isPushTarget(runnerId: string): boolean {
    return this.backend()?.isPushTarget(runnerId) ?? false;
  }

  /** Feeds every push target with free capacity from the line; a target that refuses backs off. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const model = this.model();
      if (!model) return;
      for (;;) {
        const now = Date.now();
        const target = this.pushTargets().find(
          (t) => (this.pushInFlight.get(t.id) ?? 0) < t.slots && (this.pushBackoff.get(t.id)?.until ?? 0) <= now,
        );
        if (!target) break;
        const lease = this.takeNext(target.id, this.ttlFor(target.id));
        if (!lease) break;
        this.pushInFlight.set(target.id, (this.pushInFlight.get(target.id) ?? 0) + 1);
        void this.push(model, target.id, lease);
      }
    } finally {
      this.pumping = false;
    }
    await this.scheduleAlarm();
  }

  private async push(model: ModelConfig, targetId: string, lease: Lease): Promise<void> {
    const log = logger({ component: 'dispatch', predictionId: lease.predictionId, target: targetId });
    let outcome: Awaited<ReturnType<typeof pushToTarget>>;
    try {
      outcome = await pushToTarget(this.env, this.config, model, targetId, lease);
    } catch (err) {
      log.error('push crashed', errorFields(err));
      outcome = { kind: 'busy', reason: 'push crashed' };
    }
    if (outcome.kind === 'accepted') {
      this.pushBackoff.delete(targetId);
      return;
    }
    this.freePushSlot(targetId);
    if (outcome.kind === 'dropped') {
      await this.remove(lease.predictionId);
      return;
    }
    // Busy or unreachable: the job goes back to the head; this target rests a little (2, 4, ... 30 s).
    const failures = (this.pushBackoff.get(targetId)?.failures ?? 0) + 1;
    this.pushBackoff.set(targetId, { failures, until: Date.now() + Math.min(30_000, 1000 * 2 ** failures) });
    log.warn('push target refused; back to the head of the line', { reason: outcome.reason, failures });
    await this.release(lease.leaseId);
  }

  // --- time: expired leases, jobs past their queue time, abandoned reservations --------------------------------------

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.alarmAt = null;
    const expired = this.sql.exec<JobRow>("SELECT * FROM jobs WHERE state = 'leased' AND lease_expires_ms <= ?", now).toArray();
    for (const job of expired) {
      // An alarm this late means the edge itself was down or stalled: the holder's heartbeats could not arrive. Once per
      // lease, it gets another TTL to be heard before the prediction goes to someone else.
      const ttl = this.ttlFor(job.runner ?? '');
      if (!job.graced && now - (job.lease_expires_ms ?? now) > ttl / 2) {
        this.sql.exec('UPDATE jobs SET lease_expires_ms = ?, graced = 1 WHERE prediction_id = ?', now + ttl, job.prediction_id);
        continue;
      }
      await this.takeBack(job);
    }
    const maxQueueSeconds = this.maxQueueSeconds();
    const maxQueueMs = maxQueueSeconds * 1000;
    const late = this.sql
      .exec<JobRow>("SELECT * FROM jobs WHERE state = 'waiting' AND created_ms <= ?", now - maxQueueMs)
      .toArray();
    for (const job of late) {
      this.sql.exec('DELETE FROM jobs WHERE prediction_id = ?', job.prediction_id);
      const waited = Math.round((now - job.created_ms) / 1000);
      await leaseHolder(this.env, job.prediction_id)
        .fail(`no GPU became free for this model within the maximum queue time of ${maxQueueSeconds} s (waited ${waited} s)`)
        .catch((err) => logger({ component: 'dispatch' }).error('failing a late job failed', errorFields(err)));
    }
    this.sql.exec("DELETE FROM jobs WHERE state = 'held' AND created_ms <= ?", now - HELD_TIMEOUT_MS);
    // Push targets resting past their backoff get another chance.
    this.handOut();
    await this.scheduleAlarm();
  }

  /** A lease that missed its heartbeats: the prediction decides (requeue, or it ended meanwhile, or requeues spent). */
  private async takeBack(job: JobRow): Promise<void> {
    const log = logger({ component: 'dispatch', predictionId: job.prediction_id, runner: job.runner });
    let verdict: 'requeue' | 'drop';
    try {
      verdict = await leaseHolder(this.env, job.prediction_id).leaseLost(job.lease_id as string);
    } catch (err) {
      // Ask again at the next alarm; the lease stays expired meanwhile, so nobody else can take the job.
      log.error('asking the prediction about its lost lease failed', errorFields(err));
      return;
    }
    this.freePushSlot(job.runner);
    if (verdict === 'drop') {
      this.sql.exec('DELETE FROM jobs WHERE prediction_id = ?', job.prediction_id);
      return;
    }
    log.warn('lease expired; back to the head of the line', { attempt: job.attempt + 1 });
    this.sql.exec(
      "UPDATE jobs SET state = 'waiting', head = 1, attempt = attempt + 1, lease_id = NULL, runner = NULL, lease_expires_ms = NULL, leased_ms = NULL, graced = 0 WHERE prediction_id = ?",
      job.prediction_id,
    );
  }

  /** One alarm at the earliest deadline; setAlarm only when that time changes (each call is a storage write). */
  private async scheduleAlarm(): Promise<void> {
    const times: number[] = [];
    const lease = this.sql
      .exec<{ t: number | null }>("SELECT MIN(lease_expires_ms) AS t FROM jobs WHERE state = 'leased'")
      .one().t;
    if (lease !== null) times.push(lease);
    const oldest = this.sql.exec<{ t: number | null }>("SELECT MIN(created_ms) AS t FROM jobs WHERE state = 'waiting'").one().t;
    if (oldest !== null) times.push(oldest + this.maxQueueSeconds() * 1000);
    const held = this.sql.exec<{ t: number | null }>("SELECT MIN(created_ms) AS t FROM jobs WHERE state = 'held'").one().t;
    if (held !== null) times.push(held + HELD_TIMEOUT_MS);
    if (this.pushBackoff.size > 0 && this.counts().waiting > 0) for (const b of this.pushBackoff.values()) times.push(b.until);
    if (times.length === 0) {
      if (this.alarmAt !== null) await this.ctx.storage.deleteAlarm();
      this.alarmAt = null;
      return;
    }
    const at = Math.max(Math.min(...times), Date.now());
    if (this.alarmAt === at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}
