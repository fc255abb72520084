// rateLimit(): spends one request of the caller's per-key budget, or answers 429 with Retry-After.
// inFlightSlot(): the 429 for a key whose in-flight cap is reached, for the create handler to call before queuing.
import type { Context, MiddlewareHandler } from 'hono';
import { httpError } from '../../auth/http-error.ts';
import type { Principal } from '../../auth/principal.ts';
import { acquireInFlight, checkRateLimit, type InFlightResult, type LimiterBindings } from '../key-limiter.ts';

/** How many more reads than writes a key may make per minute by default. */
export const READ_RATE_MULTIPLIER = 10;

type LimitContext = Context<{ Bindings: LimiterBindings }>;

export interface RateLimitOptions {
  /**
   * Bucket name: routes with different budgets use different names. Default: "read" for GET/HEAD, "write" otherwise,
   * so polling a prediction (the `replicate` client polls every 500 ms) never eats the budget for creating them.
   */
  bucket?: string;
  /** Per-minute budget for this bucket. Default: limits.ratePerMinute for writes, READ_RATE_MULTIPLIER times that for reads. */
  ratePerMinute?: (principal: Principal) => number;
  /** Where the KeyLimiter namespace is. Default: the KEY_LIMITER binding. */
  limiter?: (c: LimitContext) => LimiterBindings;
}

/**
 * Rate-limit middleware; runs after authenticate(). Success sets RateLimit-Limit / RateLimit-Remaining; refusal is
 * 429 with Retry-After in seconds (the `replicate` client waits that long and retries).
 */
export function rateLimit(options: RateLimitOptions = {}): MiddlewareHandler<{ Bindings: LimiterBindings }> {
  if (options.bucket !== undefined && !/^[a-z0-9:_-]{1,64}$/i.test(options.bucket)) {
    throw new Error(`rateLimit: bucket must be 1-64 of [a-z0-9:_-], got ${options.bucket}`);
  }
  const limiterOf = options.limiter ?? ((c: LimitContext) => c.env);
  return async function rateLimit(c, next) {
    const principal = c.get('principal');
    if (!principal) throw new Error('rateLimit() ran before authenticate(): no principal on the context');
    // Minting a visitor token starts a page session and costs no GPU work: it must not spend the create budget.
    const read = c.req.method === 'GET' || c.req.method === 'HEAD' || c.req.path === '/v1/visitor-tokens';
    const bucket = options.bucket ?? (read ? 'read' : 'write');
    const perMinute =
      options.ratePerMinute?.(principal) ??
      (read && options.bucket === undefined
        ? principal.limits.ratePerMinute * READ_RATE_MULTIPLIER
        : principal.limits.ratePerMinute);
    const result = await checkRateLimit(limiterOf(c), principal, { bucket, ratePerMinute: perMinute });
    if (!result.ok) {
      throw httpError(
        'rate_limited',
        `rate limit exceeded: ${result.limit} ${bucket} requests per minute for this key; retry after ${result.retryAfterSeconds} s`,
        { 'Retry-After': String(result.retryAfterSeconds), 'RateLimit-Limit': String(result.limit), 'RateLimit-Remaining': '0' },
      );
    }
    c.header('RateLimit-Limit', String(result.limit));
    c.header('RateLimit-Remaining', String(result.remaining));
    await next();
  };
}

/** The 429 for a refused in-flight acquire. */
export function tooManyInFlight(result: Extract<InFlightResult, { ok: false }>) {
  return httpError('rate_limited', `too many predictions in flight: limit ${result.limit}`, {
    'Retry-After': String(result.retryAfterSeconds),
  });
}

/** Acquires an in-flight slot for `predictionId` or throws the 429. Call before anything is queued. */
export async function inFlightSlot(env: LimiterBindings, principal: Principal, predictionId: string): Promise<InFlightResult> {
  const result = await acquireInFlight(env, principal, predictionId);
  if (!result.ok) throw tooManyInFlight(result);
  return result;
}
