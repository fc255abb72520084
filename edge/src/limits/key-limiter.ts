// KeyLimiter: one Durable Object per API key holding its rate-limit buckets and its predictions in flight.
// A single object per key serializes every decision, so limits hold exactly across all edge locations.
import { DurableObject } from 'cloudflare:workers';
import type { Principal } from '../auth/principal.ts';

/** A slot not released within this time is freed anyway, so a lost release never locks a key for good. */
export const DEFAULT_IN_FLIGHT_LIFETIME_MS = 60 * 60 * 1000;
/** What a refused in-flight acquire suggests as Retry-After: predictions take seconds, not minutes. */
const IN_FLIGHT_RETRY_AFTER_SECONDS = 5;

export type RateLimitResult =
  | { ok: true; limit: number; remaining: number }
  | { ok: false; limit: number; remaining: 0; retryAfterSeconds: number };

export type InFlightResult =
  | { ok: true; limit: number; inFlight: number }
  | { ok: false; limit: number; inFlight: number; retryAfterSeconds: number };

/**
 * Token buckets (one per named bucket, e.g. "requests", "create"): capacity = the per-minute rate, refilled
 * continuously at rate/60 per second, so a key may burst a minute's worth and then sustains the rate. In-flight
 * slots: one row per prediction id, with an expiry as the safety net.
 */
export class KeyLimiter extends DurableObject {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)`,
    );
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS in_flight (prediction_id TEXT PRIMARY KEY, acquired_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)`,
    );
  }

  /** Takes `cost` tokens from bucket `name` (capacity `perMinute`) or says how long until they are there. */
  rateLimit(name: string, perMinute: number, cost = 1, now = Date.now()): RateLimitResult {
    if (!(perMinute > 0)) throw new RangeError(`perMinute must be positive, got ${perMinute}`);
    if (!(cost > 0 && cost <= perMinute)) throw new RangeError(`cost must be in (0, ${perMinute}], got ${cost}`);
    const refillPerMs = perMinute / 60_000;
    const row = this.sql
      .exec<{ tokens: number; updated_ms: number }>('SELECT tokens, updated_ms FROM buckets WHERE name = ?', name)
      .toArray()[0];
    // A lowered limit applies at once: the stored level is capped by the current capacity.
    const level = row ? Math.min(perMinute, row.tokens + Math.max(0, now - row.updated_ms) * refillPerMs) : perMinute;
    if (level < cost) {
      this.sql.exec('INSERT OR REPLACE INTO buckets (name, tokens, updated_ms) VALUES (?, ?, ?)', name, level, now);
      const retryAfterSeconds = Math.max(1, Math.ceil((cost - level) / refillPerMs / 1000));
      return { ok: false, limit: perMinute, remaining: 0, retryAfterSeconds };
    }
    this.sql.exec('INSERT OR REPLACE INTO buckets (name, tokens, updated_ms) VALUES (?, ?, ?)', name, level - cost, now);
    return { ok: true, limit: perMinute, remaining: Math.floor(level - cost) };
  }

  /** Holds a slot for `predictionId` unless `limit` are held. Acquiring an id already held succeeds again (retried creates). */
  acquire(predictionId: string, limit: number, lifetimeMs = DEFAULT_IN_FLIGHT_LIFETIME_MS, now = Date.now()): InFlightResult {
    if (!(limit > 0)) throw new RangeError(`limit must be positive, got ${limit}`);
    this.sql.exec('DELETE FROM in_flight WHERE expires_ms <= ?', now);
    const held = this.sql.exec('SELECT 1 FROM in_flight WHERE prediction_id = ?', predictionId).toArray().length > 0;
    const inFlight = this.count();
    if (held) return { ok: true, limit, inFlight };
    if (inFlight >= limit) return { ok: false, limit, inFlight, retryAfterSeconds: IN_FLIGHT_RETRY_AFTER_SECONDS };
    this.sql.exec(
      'INSERT INTO in_flight (prediction_id, acquired_ms, expires_ms) VALUES (?, ?, ?)',
      predictionId,
      now,
      now + lifetimeMs,
    );
    return { ok: true, limit, inFlight: inFlight + 1 };
  }

  /** Frees the slot of `predictionId`; true if it was held. Idempotent. */
  release(predictionId: string): boolean {
    return this.sql.exec('DELETE FROM in_flight WHERE prediction_id = ?', predictionId).rowsWritten > 0;
  }

  /** Prediction ids currently holding a slot (diagnostics). */
  inFlight(now = Date.now()): string[] {
    return this.sql
      .exec<{ prediction_id: string }>('SELECT prediction_id FROM in_flight WHERE expires_ms > ? ORDER BY acquired_ms', now)
      .toArray()
      .map((r) => r.prediction_id);
  }

  private count(): number {
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM in_flight').one().n;
  }
}

/** The binding the limit functions need. */
export interface LimiterBindings {
  KEY_LIMITER: DurableObjectNamespace<KeyLimiter>;
}

function limiterFor(env: LimiterBindings, keyId: string): DurableObjectStub<KeyLimiter> {
  return env.KEY_LIMITER.get(env.KEY_LIMITER.idFromName(keyId));
}

export interface CheckRateLimitOptions {
  /** Separate budgets per bucket name, e.g. "create" for POSTs and "read" for polling. Default "requests". */
  bucket?: string;
  /** Default: the principal's limits.ratePerMinute. */
  ratePerMinute?: number;
  cost?: number;
}

/** Spends one request of the principal's key budget. User tokens spend their issuing key's budget. */
export async function checkRateLimit(
  env: LimiterBindings,
  principal: Principal,
  { bucket = 'requests', ratePerMinute = principal.limits.ratePerMinute, cost = 1 }: CheckRateLimitOptions = {},
): Promise<RateLimitResult> {
  return limiterFor(env, principal.keyId).rateLimit(bucket, ratePerMinute, cost);
}

/** Holds an in-flight slot for `predictionId` against the principal's key (limit: limits.maxInFlight). */
export async function acquireInFlight(env: LimiterBindings, principal: Principal, predictionId: string): Promise<InFlightResult> {
  return limiterFor(env, principal.keyId).acquire(predictionId, principal.limits.maxInFlight);
}

/** Frees the slot; call on every terminal state. Safe to call twice or for an id that never held one. */
export async function releaseInFlight(env: LimiterBindings, keyId: string, predictionId: string): Promise<boolean> {
  return limiterFor(env, keyId).release(predictionId);
}
