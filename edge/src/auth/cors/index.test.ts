// CORS inside workerd: preflights answered only for listed origins (static list or a key's origins), errors readable.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { authenticate } from '../authenticate/index.ts';
import { newApiKey } from '../key-format.ts';
import { kvStore, revokeKeyRecord, saveKeyRecord } from '../key-store.ts';
import { cors, parseAllowedOrigins } from './index.ts';

const LISTED = 'https://dashboard.example';
const app = new Hono<{ Bindings: Env }>();
app.use('/v1/*', cors({ allowedOrigins: [LISTED], cacheTtl: 0 }), authenticate({ cacheTtl: 0 }));
app.get('/v1/whoami', (c) => c.json({ keyId: c.var.principal.keyId }));

const preflight = (origin: string) =>
  app.request(
    '/v1/whoami',
    {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
    },
    env,
  );

describe('cors', () => {
  it('answers a preflight from a listed origin with the allowed methods and headers', async () => {
    const res = await preflight(LISTED);
    expect(res.status).toBe(204);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe(LISTED);
    expect(res.headers.get('Access-Control-Allow-Methods')).toContain('POST');
    expect(res.headers.get('Access-Control-Allow-Headers')).toContain('Authorization');
    expect(res.headers.get('Vary')).toBe('Origin');
  });

  it('gives a preflight from an unlisted origin no Access-Control headers', async () => {
    const res = await preflight('https://unlisted.example');
    expect(res.status).toBe(204);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(res.headers.get('Access-Control-Allow-Methods')).toBeNull();
  });

  it("answers preflights from a publishable key's origins until the key is revoked", async () => {
    const site = `https://shop-${crypto.randomUUID().slice(0, 8)}.example`;
    expect((await preflight(site)).headers.get('Access-Control-Allow-Origin')).toBeNull();
    const { record } = await newApiKey({ kind: 'publishable', name: 'shop', origins: [site] });
    await saveKeyRecord(kvStore(env.KEYS), record);
    expect((await preflight(site)).headers.get('Access-Control-Allow-Origin')).toBe(site);
    await revokeKeyRecord(kvStore(env.KEYS), record.id);
    expect((await preflight(site)).headers.get('Access-Control-Allow-Origin')).toBeNull();
  });

  it('lets a listed page read a 401 (Allow-Origin, Retry-After exposed, Vary) but not an unlisted one', async () => {
    const listed = await app.request('/v1/whoami', { headers: { Origin: LISTED } }, env);
    expect(listed.status).toBe(401);
    expect(listed.headers.get('Access-Control-Allow-Origin')).toBe(LISTED);
    expect(listed.headers.get('Access-Control-Expose-Headers')).toContain('Retry-After');
    expect(listed.headers.get('Vary')).toBe('Origin');
    const unlisted = await app.request('/v1/whoami', { headers: { Origin: 'https://unlisted.example' } }, env);
    expect(unlisted.status).toBe(401);
    expect(unlisted.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(unlisted.headers.get('Vary')).toBe('Origin');
  });

  it('allows the origin a publishable key was verified against on the actual response', async () => {
    const site = `https://widget-${crypto.randomUUID().slice(0, 8)}.example`;
    const { key, record } = await newApiKey({ kind: 'publishable', name: 'widget', origins: [site] });
    await saveKeyRecord(kvStore(env.KEYS), record);
    const res = await app.request('/v1/whoami', { headers: { Origin: site, Authorization: `Bearer ${key}` } }, env);
    expect(res.status).toBe(200);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe(site);
  });

  it('parses ALLOWED_ORIGINS and refuses an entry that is not an origin', () => {
    expect(parseAllowedOrigins('https://a.example, http://localhost:5173  https://B.example:443')).toEqual([
      'https://a.example',
      'http://localhost:5173',
      'https://b.example',
    ]);
    expect(parseAllowedOrigins('')).toEqual([]);
    expect(() => parseAllowedOrigins('https://a.example/path')).toThrow(/must not carry a path/);
  });
});
