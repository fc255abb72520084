// GET /embed/origin-check inside workerd: the caller's own origin and whether cors() lists it, readable from anywhere.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { newApiKey } from '../key-format.ts';
import { kvStore, revokeKeyRecord, saveKeyRecord } from '../key-store.ts';
import { cors } from './index.ts';
import { originCheck } from './origin-check.ts';

const LISTED = 'https://dashboard.example';
const app = new Hono<{ Bindings: Env }>();
app.get('/embed/origin-check', originCheck({ allowedOrigins: [LISTED], cacheTtl: 0 }));
app.use('/v1/*', cors({ allowedOrigins: [LISTED], cacheTtl: 0 }));
app.post('/v1/thing', (c) => c.json({ ok: true }));

async function check(origin?: string) {
  const res = await app.request('/embed/origin-check', { headers: origin ? { Origin: origin } : {} }, env);
  return { res, body: (await res.json()) as { origin: string | null; allowed: boolean } };
}

describe('GET /embed/origin-check', () => {
  it('says a listed origin is allowed, in an answer any origin may read and nobody caches', async () => {
    const { res, body } = await check(LISTED);
    expect(res.status).toBe(200);
    expect(body).toEqual({ origin: LISTED, allowed: true });
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('*');
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    expect(res.headers.get('Vary')).toBe('Origin');
  });

  it('names an unlisted origin as not allowed (localhost and 127.0.0.1 are different origins)', async () => {
    expect((await check('http://localhost:5173')).body).toEqual({ origin: 'http://localhost:5173', allowed: false });
    expect((await check('http://127.0.0.1:5173')).body).toEqual({ origin: 'http://127.0.0.1:5173', allowed: false });
  });

  it("follows a publishable key's origins until the key is revoked", async () => {
    const site = `https://shop-${crypto.randomUUID().slice(0, 8)}.example`;
    expect((await check(site)).body.allowed).toBe(false);
    const { record } = await newApiKey({ kind: 'publishable', name: 'shop', origins: [site] });
    await saveKeyRecord(kvStore(env.KEYS), record);
    expect((await check(site)).body.allowed).toBe(true);
    await revokeKeyRecord(kvStore(env.KEYS), record.id);
    expect((await check(site)).body.allowed).toBe(false);
  });

  it('answers a request without an Origin (or with "null") with origin null, not allowed', async () => {
    expect((await check()).body).toEqual({ origin: null, allowed: false });
    expect((await check('null')).body).toEqual({ origin: null, allowed: false });
  });

  it('leaves CORS of the API as it was: an unlisted origin still gets no Access-Control headers there', async () => {
    const preflight = await app.request(
      '/v1/thing',
      { method: 'OPTIONS', headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Method': 'POST' } },
      env,
    );
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const post = await app.request('/v1/thing', { method: 'POST', headers: { Origin: 'http://localhost:5173' } }, env);
    expect(post.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});
