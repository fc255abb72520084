// Per-user isolation through the real worker entry and Durable Objects: predictions belong to (key, end user). A user
// token or a visitor sees, lists and cancels only their own; the key's secret holder sees all of its key's; another key
// sees nothing. Every pair of callers is tried, through the Replicate routes, AUTOMATIC1111's /progress and
// /interrupt, and the uploaded files (/v1/files, and a file URL given as an image input).
import { env } from 'cloudflare:workers';
import type { Prediction } from '@sd/shared/schemas/prediction';
import { describe, expect, it } from 'vitest';
import { newApiKey } from '../src/auth/key-format.ts';
import { kvStore, saveKeyRecord } from '../src/auth/key-store.ts';
import { mintUserToken } from '../src/auth/user-token.ts';
import { api, createKey, fakeRunnerThatAccepts, MODEL, useEdgeHarness, VERSION } from './support/edge-harness.ts';

useEdgeHarness();

const SITE = 'https://shop.example';
const TINY = { width: 64, height: 64, num_inference_steps: 2 };
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

interface Caller {
  name: string;
  credential: string;
  origin?: string;
  /** Whose predictions this caller may see besides its own (by caller name). */
  sees: string[];
}

function call(caller: Caller, path: string, init: RequestInit & { json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (caller.origin) headers.set('origin', caller.origin);
  return api(caller.credential)(path, { ...init, headers });
}

async function create(caller: Caller, extra: RequestInit = {}): Promise<Response> {
  return call(caller, '/v1/predictions', {
    method: 'POST',
    json: { version: `${MODEL}:${VERSION}`, input: { prompt: `owned by ${caller.name}`, ...TINY } },
    ...extra,
  });
}

async function visitorToken(pk: string, body: unknown = {}): Promise<Response> {
  return api(pk)('/v1/visitor-tokens', { method: 'POST', json: body, headers: { origin: SITE } });
}

async function setUp(): Promise<{ callers: Caller[]; pk: string }> {
  const a = await createKey();
  const b = await createKey();
  const { key: pk, record } = await newApiKey({
    kind: 'publishable',
    name: 'shop',
    origins: [SITE],
    limits: { ratePerMinute: 1000, maxInFlight: 100 },
  });
  await saveKeyRecord(kvStore(env.KEYS), record);
  const mint = async (subject: string) =>
    (await mintUserToken({ signingSecret: env.TOKEN_SIGNING_SECRET!, keyId: a.keyId, subject, audience: SITE })).token;
  const v1 = (await (await visitorToken(pk)).json()) as { token: string; visitor_id: string };
  const v2 = (await (await visitorToken(pk)).json()) as { token: string; visitor_id: string };
  expect(v1.visitor_id).not.toBe(v2.visitor_id);
  return {
    pk,
    callers: [
      { name: 'backend A', credential: a.key, sees: ['alice', 'bob'] },
      { name: 'alice', credential: await mint('alice'), origin: SITE, sees: [] },
      { name: 'bob', credential: await mint('bob'), origin: SITE, sees: [] },
      { name: 'backend B', credential: b.key, sees: [] },
      { name: 'visitor 1', credential: v1.token, origin: SITE, sees: [] },
      { name: 'visitor 2', credential: v2.token, origin: SITE, sees: [] },
    ],
  };
}

describe('ownership per end user', () => {
  it('every caller sees, lists and cancels exactly its own predictions (and a secret key those of its tokens)', async () => {
    fakeRunnerThatAccepts();
    const { callers } = await setUp();
    const owned = new Map<string, Prediction>();
    for (const caller of callers) {
      const res = await create(caller);
      expect(res.status, `${caller.name}: ${await res.clone().text()}`).toBe(201);
      owned.set(caller.name, (await res.json()) as Prediction);
    }
    for (const viewer of callers) {
      const listed = (await (await call(viewer, '/v1/predictions')).json()) as { results: Prediction[] };
      const listedIds = new Set(listed.results.map((p) => p.id));
      for (const [ownerName, prediction] of owned) {
        const allowed = ownerName === viewer.name || viewer.sees.includes(ownerName);
        const get = await call(viewer, `/v1/predictions/${prediction.id}`);
        expect(get.status, `${viewer.name} GET ${ownerName}'s`).toBe(allowed ? 200 : 404);
        expect(listedIds.has(prediction.id), `${viewer.name} lists ${ownerName}'s`).toBe(allowed);
        if (!allowed) {
          const cancel = await call(viewer, `/v1/predictions/${prediction.id}/cancel`, { method: 'POST' });
          expect(cancel.status, `${viewer.name} cancels ${ownerName}'s`).toBe(404);
          // The refusal does not reveal that the prediction exists.
          expect(await cancel.text()).not.toContain(ownerName);
        }
      }
    }
    // Nothing above canceled anyone's prediction: each owner still finds its own not canceled.
    for (const caller of callers) {
      const own = (await (await call(caller, `/v1/predictions/${owned.get(caller.name)!.id}`)).json()) as Prediction;
      expect(own.status, caller.name).not.toBe('canceled');
    }
    // And the owner can cancel its own.
    const alice = callers[1];
    const cancel = await call(alice, `/v1/predictions/${owned.get('alice')!.id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(200);
    // Six callers by six predictions, three requests each: over 100 requests, past the default 5 s on a loaded machine.
  }, 30_000);

  it('a raw publishable key can only mint visitor tokens: creating, reading or listing with it is refused', async () => {
    fakeRunnerThatAccepts();
    const { pk } = await setUp();
    const raw: Caller = { name: 'raw pk', credential: pk, origin: SITE, sees: [] };
    for (const res of [await create(raw), await call(raw, '/v1/predictions')]) {
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/visitor-tokens/);
    }
  });

  it('a visitor renews its token and keeps its identity (and its predictions); a forged or foreign token is refused', async () => {
    fakeRunnerThatAccepts();
    const { pk, callers } = await setUp();
    const visitor = callers[4];
    const made = (await (await create(visitor)).json()) as Prediction;
    const renewed = (await (await visitorToken(pk, { visitor_token: visitor.credential })).json()) as { token: string };
    const again: Caller = { ...visitor, credential: renewed.token };
    expect((await call(again, `/v1/predictions/${made.id}`)).status).toBe(200);
    // A user token of another key is not a visitor token of this one.
    const bad = await visitorToken(pk, { visitor_token: callers[1].credential });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toMatch(/visitor_token/);
  });

  it("idempotency keys are per end user: another visitor's key does not replay someone else's prediction", async () => {
    fakeRunnerThatAccepts();
    const { callers } = await setUp();
    const [v1, v2] = [callers[4], callers[5]];
    const headers = { 'idempotency-key': 'same-key' };
    const first = (await (await create(v1, { headers })).json()) as Prediction;
    const res = await create(v2, { headers });
    expect(res.status).toBe(201);
    expect(((await res.json()) as Prediction).id).not.toBe(first.id);
    const replay = await create(v1, { headers });
    expect(replay.status).toBe(200);
    expect(((await replay.json()) as Prediction).id).toBe(first.id);
  });

  it("AUTOMATIC1111's /progress reports and /interrupt cancels only the caller's own running predictions", async () => {
    fakeRunnerThatAccepts();
    const { callers } = await setUp();
    const endUsers = callers.filter((c) => c.sees.length === 0 && c.name !== 'backend B');
    const owned = new Map<string, Prediction>();
    for (const caller of endUsers) owned.set(caller.name, (await (await create(caller)).json()) as Prediction);
    for (const caller of endUsers) {
      const progress = (await (await call(caller, '/sdapi/v1/progress')).json()) as { state: { job: string; job_count: number } };
      expect(progress.state.job, `${caller.name}'s /progress`).toBe(owned.get(caller.name)!.id);
      expect(progress.state.job_count, `${caller.name}'s /progress`).toBe(1);
    }
    // backend B has nothing running: its /progress is idle, and its /interrupt touches nobody.
    const other = callers.find((c) => c.name === 'backend B')!;
    expect(((await (await call(other, '/sdapi/v1/progress')).json()) as { state: { job: string } }).state.job).toBe('');
    expect((await call(other, '/sdapi/v1/interrupt', { method: 'POST' })).status).toBe(200);
    const alice = endUsers.find((c) => c.name === 'alice')!;
    expect((await call(alice, '/sdapi/v1/interrupt', { method: 'POST' })).status).toBe(200);
    for (const caller of endUsers) {
      const status = ((await (await call(caller, `/v1/predictions/${owned.get(caller.name)!.id}`)).json()) as Prediction).status;
      expect(status, `${caller.name}'s prediction after alice's interrupt`).toBe(caller === alice ? 'canceled' : 'starting');
    }
  }, 30_000);

  it("an uploaded file is only its uploader's: others can neither list, get, download, delete nor use it as an input", async () => {
    fakeRunnerThatAccepts();
    const { callers } = await setUp();
    const upload = async (caller: Caller) => {
      const form = new FormData();
      form.append('content', new Blob([Uint8Array.from(atob(PNG_1X1), (ch) => ch.charCodeAt(0))]), 'buffer_1');
      const res = await call(caller, '/v1/files', { method: 'POST', body: form });
      expect(res.status, `${caller.name} uploads: ${await res.clone().text()}`).toBe(201);
      return (await res.json()) as { id: string; urls: { get: string } };
    };
    const files = new Map<string, { id: string; urls: { get: string } }>();
    for (const caller of callers.filter((c) => c.name !== 'backend A')) files.set(caller.name, await upload(caller));
    for (const viewer of callers) {
      const listed = (await (await call(viewer, '/v1/files')).json()) as { results: Array<{ id: string }> };
      for (const [ownerName, file] of files) {
        const mine = ownerName === viewer.name;
        expect(
          listed.results.some((f) => f.id === file.id),
          `${viewer.name} lists ${ownerName}'s file`,
        ).toBe(mine);
        expect((await call(viewer, `/v1/files/${file.id}`)).status, `${viewer.name} GETs ${ownerName}'s file`).toBe(
          mine ? 200 : 404,
        );
        expect((await call(viewer, `/v1/files/${file.id}/download`)).status, `${viewer.name} downloads`).toBe(mine ? 200 : 404);
        if (mine) continue;
        const used = await call(viewer, '/v1/predictions', {
          method: 'POST',
          json: { version: `${MODEL}:${VERSION}`, input: { prompt: 'x', image: file.urls.get, ...TINY } },
        });
        expect(used.status, `${viewer.name} uses ${ownerName}'s file as input.image`).toBe(422);
        expect(await used.text()).toMatch(/does not exist or has expired/);
        expect((await call(viewer, `/v1/files/${file.id}`, { method: 'DELETE' })).status, `${viewer.name} deletes`).toBe(404);
      }
    }
    // Nothing above removed anyone's upload.
    for (const [ownerName, file] of files) {
      const owner = callers.find((c) => c.name === ownerName)!;
      expect((await call(owner, `/v1/files/${file.id}`)).status, `${ownerName} still has its file`).toBe(200);
    }
    // Six callers against five uploads: about 150 requests through the worker.
  }, 60_000);
});
