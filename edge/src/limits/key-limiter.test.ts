// The KeyLimiter Durable Object in workerd (real SQLite storage): token bucket, in-flight cap, release, expiry.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../auth/principal.ts';
import { acquireInFlight, checkRateLimit, releaseInFlight } from './key-limiter.ts';

const limiter = (name = crypto.randomUUID()) => env.KEY_LIMITER.get(env.KEY_LIMITER.idFromName(name));

function principal(limits: Partial<Principal['limits']> = {}): Principal {
  return { keyId: crypto.randomUUID(), kind: 'secret', scopes: [], limits: { ratePerMinute: 60, maxInFlight: 2, ...limits } };
}

describe('KeyLimiter rate limit (token bucket)', () => {
  it('allows a burst of the per-minute rate, then refuses with the seconds until one token is back', async () => {
    const stub = limiter();
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 3; i++) expect(await stub.rateLimit('create', 3, 1, t0)).toMatchObject({ ok: true, remaining: 2 - i });
    // 3 per minute = one token every 20 s.
    expect(await stub.rateLimit('create', 3, 1, t0)).toEqual({ ok: false, limit: 3, remaining: 0, retryAfterSeconds: 20 });
    expect(await stub.rateLimit('create', 3, 1, t0 + 10_000)).toMatchObject({ ok: false, retryAfterSeconds: 10 });
    expect(await stub.rateLimit('create', 3, 1, t0 + 20_000)).toMatchObject({ ok: true, remaining: 0 });
  });

  it('keeps separate buckets apart', async () => {
    const stub = limiter();
    expect(await stub.rateLimit('create', 1, 1, 0)).toMatchObject({ ok: true });
    expect(await stub.rateLimit('create', 1, 1, 0)).toMatchObject({ ok: false });
    expect(await stub.rateLimit('read', 1, 1, 0)).toMatchObject({ ok: true });
  });

  it('applies a lowered limit at once', async () => {
    const stub = limiter();
    expect(await stub.rateLimit('r', 100, 1, 0)).toMatchObject({ ok: true, remaining: 99 });
    expect(await stub.rateLimit('r', 2, 1, 0)).toMatchObject({ ok: true, remaining: 1 });
  });

  it('checkRateLimit spends the principal key budget', async () => {
    const p = principal({ ratePerMinute: 2 });
    expect((await checkRateLimit(env, p)).ok).toBe(true);
    expect((await checkRateLimit(env, p)).ok).toBe(true);
    const refused = await checkRateLimit(env, p);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(29);
  });
});

describe('KeyLimiter in-flight cap', () => {
  it('refuses past the cap, frees a slot on release, and treats release as idempotent', async () => {
    const p = principal({ maxInFlight: 2 });
    expect(await acquireInFlight(env, p, 'p1')).toEqual({ ok: true, limit: 2, inFlight: 1 });
    expect(await acquireInFlight(env, p, 'p2')).toEqual({ ok: true, limit: 2, inFlight: 2 });
    expect(await acquireInFlight(env, p, 'p3')).toMatchObject({ ok: false, limit: 2, inFlight: 2 });
    // Re-acquiring a held id (a retried create) is not a new prediction.
    expect(await acquireInFlight(env, p, 'p2')).toMatchObject({ ok: true, inFlight: 2 });
    expect(await releaseInFlight(env, p.keyId, 'p1')).toBe(true);
    expect(await releaseInFlight(env, p.keyId, 'p1')).toBe(false);
    expect(await acquireInFlight(env, p, 'p3')).toMatchObject({ ok: true, inFlight: 2 });
  });

  it('expires a slot whose release was lost after its lifetime', async () => {
    const stub = limiter();
    expect(await stub.acquire('lost', 1, 1_000, 0)).toMatchObject({ ok: true });
    expect(await stub.acquire('next', 1, 1_000, 999)).toMatchObject({ ok: false, inFlight: 1 });
    expect(await stub.acquire('next', 1, 1_000, 1_000)).toMatchObject({ ok: true, inFlight: 1 });
    expect(await stub.inFlight(1_000)).toEqual(['next']);
  });
});
