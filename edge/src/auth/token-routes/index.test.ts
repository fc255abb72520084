// POST /v1/tokens inside workerd: who may mint, what is checked, and that the minted token then authenticates.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { authenticate } from '../authenticate/index.ts';
import { type KeyLimits, newApiKey, type Scope } from '../key-format.ts';
import { kvStore, saveKeyRecord } from '../key-store.ts';
import { tokenApp } from './index.ts';

const SITE = 'https://app.example';
const app = new Hono<{ Bindings: Env }>();
app.route('/', tokenApp);
app.get('/v1/whoami', authenticate({ cacheTtl: 0 }), (c) => c.json(c.var.principal));

async function makeKey(
  kind: 'secret' | 'publishable',
  opts: { scopes?: Scope[]; origins?: string[]; limits?: Partial<KeyLimits> } = {},
) {
  const { key, record } = await newApiKey({
    kind,
    name: 'routes test',
    origins: opts.origins ?? (kind === 'publishable' ? [SITE] : []),
    ...opts,
  });
  await saveKeyRecord(kvStore(env.KEYS), record);
  return { key, record };
}

const mint = (key: string, body: unknown, origin?: string) =>
  app.request(
    '/v1/tokens',
    {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', ...(origin ? { Origin: origin } : {}) },
      body: JSON.stringify(body),
    },
    env,
  );

describe('POST /v1/tokens', () => {
  it('mints a token a page at the audience origin can then use', async () => {
    const { key, record } = await makeKey('secret');
    const res = await mint(key, { subject: 'user-1', origin: SITE, max_steps: 10, ttl_seconds: 120 });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { token: string; expires_at: string; claims: Record<string, unknown> };
    expect(body.claims).toMatchObject({ iss: record.id, sub: 'user-1', aud: SITE, max_steps: 10 });
    expect(Date.parse(body.expires_at) - Date.now()).toBeGreaterThan(100_000);
    expect(Date.parse(body.expires_at) - Date.now()).toBeLessThanOrEqual(120_000);
    const who = await app.request('/v1/whoami', { headers: { Authorization: `Bearer ${body.token}`, Origin: SITE } }, env);
    expect(who.status).toBe(200);
    expect(await who.json()).toMatchObject({ kind: 'token', keyId: record.id, subject: 'user-1', limits: { maxSteps: 10 } });
  });

  it('refuses publishable keys and secret keys without tokens:write (403)', async () => {
    const { key: pk } = await makeKey('publishable');
    expect((await mint(pk, { subject: 'u', origin: SITE }, SITE)).status).toBe(403);
    const { key: sk } = await makeKey('secret', { scopes: ['predictions:write'] });
    const res = await mint(sk, { subject: 'u', origin: SITE });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('tokens:write');
  });

  it('refuses an origin the key does not list, and limits above the key (403 / 422)', async () => {
    const { key } = await makeKey('secret', { origins: [SITE], limits: { maxSteps: 25 } });
    const wrongOrigin = await mint(key, { subject: 'u', origin: 'https://other.example' });
    expect(wrongOrigin.status).toBe(403);
    const tooMany = await mint(key, { subject: 'u', origin: SITE, max_steps: 30 });
    expect(tooMany.status).toBe(422);
    expect(((await tooMany.json()) as { error: { message: string } }).error.message).toBe(
      'max_steps must be at most 25 for this key, got 30',
    );
  });

  it('validates the body: unknown fields, a ttl over the maximum, a non-origin (422)', async () => {
    const { key } = await makeKey('secret');
    expect((await mint(key, { subject: 'u', origin: SITE, admin: true })).status).toBe(422);
    expect((await mint(key, { subject: 'u', origin: SITE, ttl_seconds: 7200 })).status).toBe(422);
    expect((await mint(key, { subject: 'u', origin: 'not a url' })).status).toBe(422);
  });
});
