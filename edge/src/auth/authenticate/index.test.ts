// The auth matrix inside workerd with the real KEYS namespace: every rejection with its status, and what a pass sets.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { type KeyLimits, type KeyRecord, newApiKey, type Scope } from '../key-format.ts';
import { kvStore, revokeKeyRecord, saveKeyRecord } from '../key-store.ts';
import { mintUserToken } from '../user-token.ts';
import { authenticate, KEY_MEMORY_TTL_MS, requireScope } from './index.ts';

const SITE = 'https://app.example';
const store = kvStore(env.KEYS);

function testApp() {
  const app = new Hono<{ Bindings: Env }>();
  app.use('/v1/*', authenticate({ cacheTtl: 0 }));
  app.get('/v1/whoami', (c) => c.json(c.var.principal));
  app.post('/v1/predictions', requireScope('predictions:write'), (c) => c.json({ ok: true }, 201));
  app.post('/v1/tokens-only', requireScope('tokens:write'), (c) => c.json({ ok: true }));
  return app;
}
const app = testApp();

async function makeKey(
  kind: 'secret' | 'publishable',
  opts: { scopes?: Scope[]; origins?: string[]; limits?: Partial<KeyLimits>; patch?: Partial<KeyRecord> } = {},
) {
  const { key, record } = await newApiKey({
    kind,
    name: `test ${kind}`,
    ...(opts.scopes ? { scopes: opts.scopes } : {}),
    origins: opts.origins ?? (kind === 'publishable' ? [SITE] : []),
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  const stored = { ...record, ...opts.patch };
  await saveKeyRecord(store, stored);
  return { key, record: stored };
}

function call(
  credential: string | null,
  { origin, path = '/v1/whoami', method = 'GET', scheme = 'Bearer' } = {} as {
    origin?: string;
    path?: string;
    method?: string;
    scheme?: string;
  },
) {
  const headers: Record<string, string> = {};
  if (credential !== null) headers.Authorization = `${scheme} ${credential}`;
  if (origin) headers.Origin = origin;
  return app.request(path, { method, headers }, env);
}

/** Reads an error response and checks that no part of the credential leaked into it. */
async function errorOf(res: Response, credential?: string) {
  const text = await res.text();
  if (credential) {
    expect(text).not.toContain(credential);
    // The secret part: a token's signature, or what follows sk_<id>_ (base64url, so it may itself hold '_').
    const secretPart = credential.includes('.')
      ? credential.slice(credential.lastIndexOf('.') + 1)
      : credential.split('_').slice(2).join('_');
    if (secretPart.length >= 8) expect(text).not.toContain(secretPart);
  }
  return JSON.parse(text) as { error: { code: string; message: string }; status: number };
}

describe('authenticate: API keys', () => {
  it('rejects a request without Authorization with 401 and a WWW-Authenticate challenge', async () => {
    const res = await call(null);
    expect(res.status).toBe(401);
    expect(res.headers.get('WWW-Authenticate')).toMatch(/^Bearer realm="sd-edge"/);
    const body = await errorOf(res);
    expect(body.error.code).toBe('unauthorized');
    expect(body.error.message).toMatch(/missing Authorization header/);
  });

  it('rejects an unknown key and a wrong secret for a real id alike (401 invalid API key)', async () => {
    const { key } = await makeKey('secret');
    const wrongSecret = `${key.slice(0, -4)}AAAA`;
    const unknownId = 'sk_zzzzzzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    for (const credential of [wrongSecret, unknownId]) {
      const res = await call(credential);
      expect(res.status).toBe(401);
      expect((await errorOf(res, credential)).error.message).toBe('invalid API key');
    }
  });

  it('rejects a malformed key and an unrecognized credential with distinct 401s', async () => {
    const malformed = await call('sk_short');
    expect(malformed.status).toBe(401);
    expect((await errorOf(malformed, 'sk_short')).error.message).toMatch(/malformed API key/);
    const other = await call('hunter2');
    expect(other.status).toBe(401);
    expect((await errorOf(other, 'hunter2')).error.message).toMatch(/unrecognized credential/);
  });

  it('rejects a revoked key with 401 and says so', async () => {
    const { key, record } = await makeKey('secret');
    expect((await call(key)).status).toBe(200);
    await revokeKeyRecord(store, record.id);
    const res = await call(key);
    expect(res.status).toBe(401);
    expect((await errorOf(res, key)).error.message).toMatch(/^API key was revoked at /);
  });

  it('rejects an expired key with 401 and says when it expired', async () => {
    const expiresAt = new Date(Date.now() - 60_000).toISOString();
    const { key } = await makeKey('secret', { patch: { expiresAt } });
    const res = await call(key);
    expect(res.status).toBe(401);
    expect((await errorOf(res, key)).error.message).toBe(`API key expired at ${expiresAt}`);
  });

  it('accepts a valid secret key with Bearer or Token and sets the principal', async () => {
    const { key, record } = await makeKey('secret', { limits: { ratePerMinute: 7 } });
    for (const scheme of ['Bearer', 'Token']) {
      const res = await call(key, { scheme });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        keyId: record.id,
        kind: 'secret',
        scopes: ['predictions:write', 'predictions:read', 'tokens:write'],
        limits: { ratePerMinute: 7, maxInFlight: 8 },
      });
    }
  });

  it('answers 403 when the key lacks the route scope, naming the scope', async () => {
    const { key } = await makeKey('secret', { scopes: ['predictions:read'] });
    const res = await call(key, { path: '/v1/predictions', method: 'POST' });
    expect(res.status).toBe(403);
    expect((await errorOf(res, key)).error.message).toBe(
      'this route needs scope predictions:write; the secret credential has: predictions:read',
    );
  });

  it('reads a key record once per KEY_MEMORY_TTL_MS per isolate, so a revocation shows after that', async () => {
    const { key, record } = await makeKey('secret');
    let reads = 0;
    let clock = Date.now();
    const counted = {
      ...store,
      get: (k: string) => {
        reads++;
        return store.get(k);
      },
    };
    const cached = new Hono<{ Bindings: Env }>();
    cached.use('/v1/*', authenticate({ keys: () => counted, now: () => clock }));
    cached.get('/v1/whoami', (c) => c.json(c.var.principal));
    const who = () => cached.request('/v1/whoami', { headers: { Authorization: `Bearer ${key}` } }, env);

    for (let i = 0; i < 3; i++) expect((await who()).status).toBe(200);
    expect(reads).toBe(1);
    await revokeKeyRecord(store, record.id);
    clock += KEY_MEMORY_TTL_MS - 1;
    expect((await who()).status).toBe(200);
    clock += 2;
    expect((await who()).status).toBe(401);
    expect(reads).toBe(2);
  });
});

describe('authenticate: publishable keys', () => {
  it('accepts a publishable key from a listed origin with its tighter limits, but only to mint visitor tokens', async () => {
    const { key, record } = await makeKey('publishable');
    // Every visitor of the page shares the key: predictions go through each visitor's own token.
    const res = await call(key, { origin: SITE, path: '/v1/predictions', method: 'POST' });
    expect(res.status).toBe(403);
    expect((await errorOf(res, key)).error.message).toMatch(/POST \/v1\/visitor-tokens/);
    const who = (await (await call(key, { origin: SITE })).json()) as Record<string, unknown>;
    expect(who).toMatchObject({
      keyId: record.id,
      kind: 'publishable',
      origin: SITE,
      limits: { ratePerMinute: 10, maxInFlight: 2 },
    });
  });

  it('rejects a publishable key from an unlisted origin or without Origin with 403', async () => {
    const { key } = await makeKey('publishable');
    const wrong = await call(key, { origin: 'https://evil.example' });
    expect(wrong.status).toBe(403);
    expect((await errorOf(wrong, key)).error.message).toBe('origin https://evil.example is not allowed for this publishable key');
    const none = await call(key);
    expect(none.status).toBe(403);
  });

  it('never gives a publishable key more than create/read predictions', async () => {
    const { key } = await makeKey('publishable', { scopes: ['predictions:write', 'predictions:read', 'tokens:write'] });
    const res = await call(key, { origin: SITE, path: '/v1/tokens-only', method: 'POST' });
    expect(res.status).toBe(403);
  });
});

describe('authenticate: visitor tokens', () => {
  const secret = env.TOKEN_SIGNING_SECRET!;

  it('accepts a visitor token from its origin as a visitor of the publishable key, with its limits', async () => {
    const { record } = await makeKey('publishable');
    const { token } = await mintUserToken({
      signingSecret: secret,
      keyId: record.id,
      subject: 'vis_1',
      audience: SITE,
      visitor: true,
    });
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ keyId: record.id, kind: 'visitor', subject: 'vis_1', origin: SITE });
    expect((await call(token, { origin: SITE, path: '/v1/predictions', method: 'POST' })).status).toBe(201);
  });

  it('refuses a visitor token from another origin, or once its origin is removed from the key', async () => {
    const { record } = await makeKey('publishable', { origins: [SITE, 'https://other.example'] });
    const { token } = await mintUserToken({
      signingSecret: secret,
      keyId: record.id,
      subject: 'v',
      audience: SITE,
      visitor: true,
    });
    expect((await call(token, { origin: 'https://other.example' })).status).toBe(403);
    await saveKeyRecord(store, { ...record, origins: ['https://other.example'] });
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(403);
    expect((await errorOf(res, token)).error.message).toBe(`origin ${SITE} is not allowed for this publishable key`);
  });

  it('a visitor token cannot pass as a user token, nor a user token as a visitor token (separate signing keys)', async () => {
    const { record: pk } = await makeKey('publishable');
    const { record: sk } = await makeKey('secret');
    const recode = (token: string, edit: (claims: Record<string, unknown>) => Record<string, unknown>) => {
      const [h, p, sig] = token.split('.');
      const claims = JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/')));
      const part = btoa(JSON.stringify(edit(claims)))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '');
      return `${h}.${part}.${sig}`;
    };
    const visitor = (await mintUserToken({ signingSecret: secret, keyId: pk.id, subject: 'v', audience: SITE, visitor: true }))
      .token;
    const asUser = recode(visitor, ({ kind: _kind, ...rest }) => ({ ...rest, iss: sk.id }));
    expect((await call(asUser, { origin: SITE })).status).toBe(401);
    const user = (await mintUserToken({ signingSecret: secret, keyId: sk.id, subject: 'alice', audience: SITE })).token;
    const asVisitor = recode(user, (claims) => ({ ...claims, kind: 'visitor' }));
    expect((await call(asVisitor, { origin: SITE })).status).toBe(401);
  });
});

describe('authenticate: user tokens', () => {
  const secret = env.TOKEN_SIGNING_SECRET!;

  it('accepts a token from its audience origin and narrows the issuer limits to its claims', async () => {
    const { record } = await makeKey('secret', { limits: { maxSteps: 50 } });
    const { token } = await mintUserToken({
      signingSecret: secret,
      keyId: record.id,
      subject: 'user-42',
      audience: SITE,
      model: 'sd/embedded',
      maxSteps: 20,
      maxOutputs: 1,
    });
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      keyId: record.id,
      kind: 'token',
      scopes: ['predictions:write', 'predictions:read'],
      origin: SITE,
      subject: 'user-42',
      limits: { ratePerMinute: 60, maxInFlight: 8, maxSteps: 20, maxOutputs: 1, models: ['sd/embedded'] },
    });
  });

  it('rejects a tampered token (claims edited, signature kept) with 401', async () => {
    const { record } = await makeKey('secret');
    const { token } = await mintUserToken({ signingSecret: secret, keyId: record.id, subject: 'u', audience: SITE, maxSteps: 4 });
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/')));
    const forged = btoa(JSON.stringify({ ...claims, max_steps: 150 }))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    const tampered = `${h}.${forged}.${s}`;
    const res = await call(tampered, { origin: SITE });
    expect(res.status).toBe(401);
    expect((await errorOf(res, tampered)).error.message).toBe('user token signature is invalid');
  });

  it('rejects a token signed with another secret with 401', async () => {
    const { record } = await makeKey('secret');
    const { token } = await mintUserToken({
      signingSecret: 'not-the-deployment-secret',
      keyId: record.id,
      subject: 'u',
      audience: SITE,
    });
    expect((await call(token, { origin: SITE })).status).toBe(401);
  });

  it('rejects an expired token with 401', async () => {
    const { record } = await makeKey('secret');
    const { token } = await mintUserToken({
      signingSecret: secret,
      keyId: record.id,
      subject: 'u',
      audience: SITE,
      ttlSeconds: 60,
      now: Date.now() - 10 * 60_000,
    });
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(401);
    expect((await errorOf(res, token)).error.message).toMatch(/^user token expired at /);
  });

  it('rejects a token used from another origin (wrong audience) with 403', async () => {
    const { record } = await makeKey('secret');
    const { token } = await mintUserToken({
      signingSecret: secret,
      keyId: record.id,
      subject: 'u',
      audience: 'https://other.example',
    });
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(403);
    expect((await errorOf(res, token)).error.message).toBe(
      `user token audience https://other.example does not match Origin ${SITE}`,
    );
  });

  it('rejects tokens of a revoked issuer with 401', async () => {
    const { record } = await makeKey('secret');
    const { token } = await mintUserToken({ signingSecret: secret, keyId: record.id, subject: 'u', audience: SITE });
    expect((await call(token, { origin: SITE })).status).toBe(200);
    await revokeKeyRecord(store, record.id);
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(401);
    expect((await errorOf(res, token)).error.message).toMatch(/^user token issuer key was revoked/);
  });

  it('rejects an unsigned ("alg": "none") token with 401', async () => {
    const { record } = await makeKey('secret');
    const enc = (v: unknown) => btoa(JSON.stringify(v)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const now = Math.floor(Date.now() / 1000);
    const token = `${enc({ alg: 'none' })}.${enc({ iss: record.id, sub: 'u', aud: SITE, iat: now, exp: now + 60 })}.AAAA`;
    const res = await call(token, { origin: SITE });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).error.message).toMatch(/malformed/);
  });
});
