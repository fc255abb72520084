// The model's line and the runners' leases through the real worker entry and Durable Objects: a pull runner leases
// (long poll), heartbeats and reports; a lease that misses its heartbeats goes back to the head of the line and the
// first holder's late reports are refused; a full line answers 503; a prediction past its queue time fails; a push
// target that refuses keeps the prediction waiting instead of failing it. The pull pool is "sd/pulled:v1"
// (edge/vitest.config.ts: lease TTL 2 s, max queue time 4 s, backlog 3).
import { exports } from 'cloudflare:workers';
import type { Prediction } from '@sd/shared/schemas/prediction';
import { createRunnerInputSchema } from '@sd/shared/schemas/runner';
import { describe, expect, it } from 'vitest';
import {
  api,
  createKey,
  fakeNetwork,
  getPrediction,
  runnerEnvelope,
  runnerPuts,
  sendRunnerWebhook,
  useEdgeHarness,
  VERSION,
  waitFor,
} from './support/edge-harness.ts';

useEdgeHarness();

const PULLED = 'sd/pulled:v1';
const RUNNER_TOKEN = 'test-runner-token';

function runnerCall(path: string, body: unknown, token = RUNNER_TOKEN): Promise<Response> {
  return exports.default.fetch(
    new Request(new URL(path, 'http://edge.test'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}

interface LeaseAnswer {
  lease_id: string;
  attempt: number;
  heartbeat_url: string;
  release_url: string;
  prediction: { id: string; input: Record<string, unknown>; webhook: string };
}

async function lease(runnerId: string, waitMs = 0): Promise<LeaseAnswer | null> {
  const res = await runnerCall('/runner/v1/leases', { runner_id: runnerId, model: PULLED, wait_ms: waitMs });
  if (res.status === 204) return null;
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as LeaseAnswer;
}

const path = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

async function create(key: string, prompt: string, version = PULLED): Promise<Response> {
  return api(key)('/v1/predictions', { method: 'POST', json: { version, input: { prompt, width: 64, height: 64 } } });
}

/** Drains whatever earlier tests left in the pull line. */
async function drain(): Promise<void> {
  for (let l = await lease('drainer'); l; l = await lease('drainer')) {
    await runnerCall(path(l.prediction.webhook), runnerEnvelope(l.prediction.id, { status: 'canceled' }));
  }
}

describe('pull runners', () => {
  it('a runner without the credential is refused before anything is read', async () => {
    const res = await runnerCall('/runner/v1/leases', { runner_id: 'r', model: PULLED }, 'wrong');
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain(RUNNER_TOKEN);
  });

  it('a waiting runner gets a prediction created after it asked (long poll); reports and heartbeats carry it to the end', async () => {
    await drain();
    const { key } = await createKey();
    const polling = lease('runner-1', 10_000);
    await new Promise((r) => setTimeout(r, 200));
    const created = (await (await create(key, 'a heron at dawn')).json()) as Prediction;
    const got = await polling;
    expect(got?.prediction.id).toBe(created.id);
    expect(got?.attempt).toBe(0);
    // A miss: the runner gets the token ids and is asked to return the embeddings.
    expect(Object.keys(got?.prediction.input ?? {}), JSON.stringify(created.metrics)).toContain('prompt_tokens');
    expect(got?.prediction.input.return_embeddings).toBe(true);
    const beat = await runnerCall(path(got!.heartbeat_url), { runner_id: 'runner-1' });
    expect(beat.status).toBe(200);
    await runnerCall(path(got!.prediction.webhook), runnerEnvelope(created.id, { status: 'processing' }));
    const done = await runnerCall(
      path(got!.prediction.webhook),
      runnerEnvelope(created.id, { status: 'succeeded', output: ['https://cdn.test/heron.png'] }),
    );
    expect(await done.json()).toMatchObject({ applied: true, stop: true });
    const final = await getPrediction(key, created.id);
    expect(final.status).toBe('succeeded');
    expect(final.output).toEqual(['https://cdn.test/heron.png']);
    // The lease is gone with the job: a heartbeat now tells the runner to stop.
    expect((await runnerCall(path(got!.heartbeat_url), { runner_id: 'runner-1' })).status).toBe(409);
  });

  it('predictions start in creation order, the waiting ones show their place, and another key is not stuck behind a burst', async () => {
    await drain();
    const burst = await createKey();
    const single = await createKey();
    const ids: string[] = [];
    for (const n of [1, 2]) ids.push(((await (await create(burst.key, `burst ${n}`)).json()) as Prediction).id);
    const lone = ((await (await create(single.key, 'alone')).json()) as Prediction).id;
    const waiting = await getPrediction(single.key, lone);
    expect(waiting.queue).toMatchObject({ position: 1, waiting: 3 });
    const order: string[] = [];
    for (let l = await lease('runner-2'); l; l = await lease('runner-2')) {
      order.push(l.prediction.id);
      await runnerCall(path(l.prediction.webhook), runnerEnvelope(l.prediction.id, { status: 'succeeded', output: [] }));
    }
    expect(order).toEqual([ids[0], lone, ids[1]]);
  });

  it("hands the runner the caller's pixel budget when only the runner can size the output (an image URL, no width/height)", async () => {
    await drain();
    const budget = 512 * 512;
    const small = await createKey({ maxPixels: budget });
    const open = await createKey();
    const image = 'https://images.example/photo.png';
    const make = async (key: string, input: Record<string, unknown>) => {
      const res = await api(key)('/v1/predictions', {
        method: 'POST',
        json: { version: PULLED, input: { prompt: 'a cat', image, ...input } },
      });
      expect(res.status, await res.clone().text()).toBe(201);
      return ((await res.json()) as Prediction).id;
    };
    const byUrl = await make(small.key, {});
    const sized = await make(small.key, { width: 256, height: 256 });
    const unlimited = await make(open.key, {});
    const inputs = new Map<string, Record<string, unknown>>();
    for (let l = await lease('runner-budget'); l; l = await lease('runner-budget')) {
      inputs.set(l.prediction.id, l.prediction.input);
      await runnerCall(path(l.prediction.webhook), runnerEnvelope(l.prediction.id, { status: 'canceled' }));
    }
    expect(inputs.get(byUrl)?.max_pixels).toBe(budget);
    // The runner takes it (its own schema), and it is not shown to the caller as part of their input.
    expect(createRunnerInputSchema().safeParse(inputs.get(byUrl)).success).toBe(true);
    expect((await getPrediction(small.key, byUrl)).input).not.toHaveProperty('max_pixels');
    // A size the caller gave was checked against the budget at the edge; a key without one has the runner's own limit.
    expect(inputs.get(sized)).not.toHaveProperty('max_pixels');
    expect(inputs.get(unlimited)).not.toHaveProperty('max_pixels');
  });

  it('predictions made while no runner is connected wait, and all succeed once one arrives (scale from zero)', async () => {
    await drain();
    const { key } = await createKey();
    const ids: string[] = [];
    for (const n of [1, 2]) ids.push(((await (await create(key, `made before any runner ${n}`)).json()) as Prediction).id);
    // No runner asks: they wait (not fail), each with its place in line.
    await new Promise((r) => setTimeout(r, 1500));
    const waiting = await getPrediction(key, ids[1]);
    expect(waiting.status).toBe('starting');
    expect(waiting.queue).toMatchObject({ position: 1 });
    // A runner starts and drains the line.
    for (let l = await lease('late-runner'); l; l = await lease('late-runner')) {
      await runnerCall(path(l.prediction.webhook), runnerEnvelope(l.prediction.id, { status: 'succeeded', output: ['ok'] }));
    }
    for (const id of ids) expect((await getPrediction(key, id)).status).toBe('succeeded');
  });

  it('a full line answers 503 with Retry-After before storing anything', async () => {
    await drain();
    const { key } = await createKey();
    for (const n of [1, 2, 3]) expect((await create(key, `fill ${n}`)).status).toBe(201);
    const refused = await create(key, 'one too many');
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/3 predictions waiting, its limit/);
    const listed = (await (await api(key)('/v1/predictions')).json()) as { results: Prediction[] };
    expect(listed.results).toHaveLength(3);
    await drain();
  });

  it('a lease that misses its heartbeats goes back to the head of the line; the first holder is refused from then on', async () => {
    await drain();
    const { key } = await createKey();
    const created = (await (await create(key, 'a runner that freezes')).json()) as Prediction;
    const first = await lease('frozen');
    expect(first?.prediction.id).toBe(created.id);
    // No heartbeat: the 2 s lease expires and the next runner gets the same prediction, as attempt 1.
    const second = await waitFor(() => lease('healthy', 1000), 15_000);
    expect(second.prediction.id).toBe(`${created.id}-a1`);
    expect(second.attempt).toBe(1);
    const late = await runnerCall(
      path(first!.prediction.webhook),
      runnerEnvelope(created.id, { status: 'succeeded', output: ['x'] }),
    );
    expect(await late.json()).toMatchObject({ applied: false, stop: true });
    expect((await runnerCall(path(first!.heartbeat_url), { runner_id: 'frozen' })).status).toBe(409);
    await runnerCall(
      path(second.prediction.webhook),
      runnerEnvelope(second.prediction.id, { status: 'succeeded', output: ['y'] }),
    );
    const final = await getPrediction(key, created.id);
    expect(final.status).toBe('succeeded');
    expect(final.output).toEqual(['y']);
  });

  it('a prediction no runner takes fails after the maximum queue time, with a clear error', async () => {
    await drain();
    const { key } = await createKey();
    const created = (await (await create(key, 'nobody is here')).json()) as Prediction;
    const failed = await waitFor(async () => {
      const p = await getPrediction(key, created.id);
      return p.status === 'failed' ? p : null;
    }, 20_000);
    expect(failed.error).toMatch(/^no GPU became free for this model within the maximum queue time of 4 s \(waited \d+ s\)$/);
  });

  it('a released lease goes back to the head of the line unrun; a refused input fails the prediction at once', async () => {
    await drain();
    const { key } = await createKey();
    const created = (await (await create(key, 'given back, then refused')).json()) as Prediction;
    const first = await lease('shutting-down');
    expect(first?.prediction.id).toBe(created.id);
    expect((await runnerCall(path(first!.release_url), {})).status).toBe(200);
    expect((await getPrediction(key, created.id)).status).toBe('starting');
    // Released, not lost: the next runner gets it as the same attempt.
    const second = await lease('strict-runner');
    expect(second?.prediction.id).toBe(created.id);
    // The old lease cannot refuse on the new holder's behalf.
    expect((await runnerCall(path(first!.release_url), { refused: { message: 'stale' } })).status).toBe(200);
    expect((await getPrediction(key, created.id)).status).toBe('starting');
    const message = 'clip_skip must be at most 1 for this model, got 2';
    expect((await runnerCall(path(second!.release_url), { refused: { message } })).status).toBe(200);
    const failed = await getPrediction(key, created.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe(`the model host rejected the input: ${message}`);
    expect(await lease('strict-runner')).toBeNull();
  });

  it('a release body that is not the documented shape is refused, naming the field', async () => {
    await drain();
    const { key } = await createKey();
    await create(key, 'odd release');
    const got = await lease('odd-runner');
    const res = await runnerCall(path(got!.release_url), { refused: { message: '' } });
    expect(res.status).toBe(422);
    expect(await res.text()).toContain('refused.message');
    await runnerCall(path(got!.release_url), {});
    await drain();
  });

  it("a push target's signed webhook cannot report a prediction a pull runner holds; the runner's own report can", async () => {
    await drain();
    const { key } = await createKey();
    const created = (await (await create(key, 'held by a pull runner')).json()) as Prediction;
    const got = await lease('runner-held');
    expect(got?.prediction.id).toBe(created.id);
    // Signed with the secret every push target holds, naming the prediction and its attempt: still not its holder.
    const forged = await sendRunnerWebhook(
      runnerEnvelope(created.id, { status: 'succeeded', output: ['https://evil.test/x.png'] }),
    );
    expect(await forged.json()).toMatchObject({ applied: false, reason: expect.stringMatching(/pull runner holds/) });
    expect((await getPrediction(key, created.id)).output).toBeNull();
    const own = await runnerCall(
      path(got!.prediction.webhook),
      runnerEnvelope(created.id, { status: 'succeeded', output: ['https://cdn.test/held.png'] }),
    );
    expect(await own.json()).toMatchObject({ applied: true });
    expect((await getPrediction(key, created.id)).output).toEqual(['https://cdn.test/held.png']);
  });

  it('canceling a waiting prediction takes it out of the line', async () => {
    await drain();
    const { key } = await createKey();
    const created = (await (await create(key, 'changed my mind')).json()) as Prediction;
    expect((await api(key)(`/v1/predictions/${created.id}/cancel`, { method: 'POST' })).status).toBe(200);
    expect(await lease('runner-3')).toBeNull();
  });
});

describe('push targets', () => {
  it('a target that refuses (409) keeps the prediction waiting, not failed; it is pushed again when the target has room', async () => {
    const { key } = await createKey();
    let busy = true;
    const seen = fakeNetwork(() =>
      busy ? Response.json({ detail: 'Already running a prediction' }, { status: 409 }) : new Response('{}', { status: 202 }),
    );
    const created = (await (await create(key, 'a lynx', VERSION)).json()) as Prediction;
    await waitFor(() => runnerPuts(seen, created.id).length >= 1);
    expect((await getPrediction(key, created.id)).status).toBe('starting');
    busy = false;
    await waitFor(() => seen.some((s) => s.method === 'PUT' && s.url.endsWith(`/predictions/${created.id}`) && !busy), 20_000);
    await waitFor(async () => runnerPuts(seen, created.id).length >= 2, 20_000);
    expect((await getPrediction(key, created.id)).status).toBe('starting');
  });

  it("a target is sent its own token, never the runner credential: what it receives cannot lease any model's work", async () => {
    const { key } = await createKey();
    const seen = fakeNetwork(() => new Response('{}', { status: 202 }));
    const { id } = (await (await create(key, 'a boat', VERSION)).json()) as Prediction;
    const put = await waitFor(() => runnerPuts(seen, id)[0]);
    const given = /^Bearer (\S+)$/.exec(put.headers.get('authorization') ?? '')?.[1] ?? '';
    expect(given).toBe('test-push-target-token');
    const leased = await runnerCall('/runner/v1/leases', { runner_id: 'push-host', model: PULLED, wait_ms: 0 }, given);
    expect(leased.status).toBe(401);
    expect((await api(key)(`/v1/predictions/${id}/cancel`, { method: 'POST' })).status).toBe(200);
  });

  it('a 422 from the target fails the prediction at once with its message and no internal address', async () => {
    const { key } = await createKey();
    fakeNetwork(() => Response.json({ detail: 'input.width: bad' }, { status: 422 }));
    const created = (await (await create(key, 'a newt', VERSION)).json()) as Prediction;
    const p = await waitFor(async () => {
      const x = await getPrediction(key, created.id);
      return x.status === 'failed' ? x : null;
    });
    expect(p.error).toBe('the model host rejected the input: input.width: bad');
    expect(p.error).not.toMatch(/127\.0\.0\.1|http:/);
  });
});

describe('GET /metrics', () => {
  it('publishes each model backlog behind the operator token, as Prometheus text and JSON', async () => {
    await drain();
    const { key } = await createKey();
    await create(key, 'counted in the backlog');
    const get = (auth: string | null, query = '') =>
      exports.default.fetch(
        new Request(`http://edge.test/metrics${query}`, auth ? { headers: { authorization: `Bearer ${auth}` } } : {}),
      );
    expect((await get(null)).status).toBe(401);
    expect((await get(RUNNER_TOKEN)).status).toBe(401);
    const text = await (await get('test-operator-token')).text();
    expect(text).toContain('# TYPE sd_backlog gauge');
    expect(text).toMatch(/^sd_waiting\{model="sd\/pulled:v1"\} 1$/m);
    const json = (await (await get('test-operator-token', '?format=json')).json()) as {
      models: Array<{ pool: string; waiting: number; running: number }>;
    };
    expect(json.models.find((m) => m.pool === PULLED)).toMatchObject({ waiting: 1, running: 0 });
    await drain();
  });
});
