// rateLimit() and inFlightSlot() on a small Hono app in workerd: 429 with Retry-After, error bodies without secrets.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { authenticate } from '../../auth/authenticate/index.ts';
import { newApiKey } from '../../auth/key-format.ts';
import { kvStore, saveKeyRecord } from '../../auth/key-store.ts';
import { releaseInFlight } from '../key-limiter.ts';
import { inFlightSlot, rateLimit } from './index.ts';

const app = new Hono<{ Bindings: Env }>();
app.use('/v1/*', authenticate({ cacheTtl: 0 }));
app.get('/v1/predictions/:id', rateLimit(), (c) => c.json({ id: c.req.param('id') }));
app.post('/v1/predictions', rateLimit(), async (c) => {
  const id = c.req.query('id') ?? crypto.randomUUID();
  await inFlightSlot(c.env, c.var.principal, id);
  return c.json({ id }, 201);
});

async function keyWith(limits: { ratePerMinute: number; maxInFlight: number }) {
  const { key, record } = await newApiKey({ kind: 'secret', name: 'limits test', limits });
  await saveKeyRecord(kvStore(env.KEYS), record);
  return { key, id: record.id };
}

const create = (key: string, id?: string) =>
  app.request(`/v1/predictions${id ? `?id=${id}` : ''}`, { method: 'POST', headers: { Authorization: `Bearer ${key}` } }, env);

describe('rateLimit()', () => {
  it('answers 429 with Retry-After once the per-minute budget is spent', async () => {
    const { key } = await keyWith({ ratePerMinute: 2, maxInFlight: 100 });
    const first = await create(key);
    expect(first.status).toBe(201);
    expect(first.headers.get('RateLimit-Limit')).toBe('2');
    expect(first.headers.get('RateLimit-Remaining')).toBe('1');
    expect((await create(key)).status).toBe(201);
    const refused = await create(key);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('Retry-After'));
    expect(retryAfter).toBeGreaterThanOrEqual(29);
    expect(retryAfter).toBeLessThanOrEqual(30);
    const text = await refused.text();
    expect(text).not.toContain(key);
    expect(JSON.parse(text)).toMatchObject({
      error: { code: 'rate_limited', message: expect.stringMatching(/^rate limit exceeded: 2 write requests per minute/) },
      status: 429,
    });
  });

  it('gives reads (polling) their own, larger budget', async () => {
    const { key } = await keyWith({ ratePerMinute: 1, maxInFlight: 100 });
    expect((await create(key)).status).toBe(201);
    expect((await create(key)).status).toBe(429);
    const get = () => app.request('/v1/predictions/p', { headers: { Authorization: `Bearer ${key}` } }, env);
    for (let i = 0; i < 10; i++) expect((await get()).status).toBe(200);
    const refused = await get();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('RateLimit-Limit')).toBe('10');
  });
});

describe('inFlightSlot()', () => {
  it('answers 429 at the in-flight cap and admits again after a release', async () => {
    const { key, id } = await keyWith({ ratePerMinute: 100, maxInFlight: 1 });
    expect((await create(key, 'pred-a')).status).toBe(201);
    const refused = await create(key, 'pred-b');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('Retry-After')).toBe('5');
    const text = await refused.text();
    expect(text).not.toContain(key);
    expect(JSON.parse(text).error.message).toBe('too many predictions in flight: limit 1');
    await releaseInFlight(env, id, 'pred-a');
    expect((await create(key, 'pred-b')).status).toBe(201);
  });
});
