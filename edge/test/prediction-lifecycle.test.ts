// The prediction's life through the real worker entry, KV, Queue, Durable Objects and Cache API, with the network
// faked at fetch: create, dispatch, runner webhooks, embedding cache, idempotency, stream, cancel, listing.

import { exports } from 'cloudflare:workers';
import type { Prediction } from '@sd/shared/schemas/prediction';
import { encodeTensor } from '@sd/shared/tensor-format';
import { describe, expect, it } from 'vitest';
import {
  api,
  createKey,
  fakeNetwork,
  fakeRunnerThatAccepts,
  getPrediction,
  MODEL,
  RUNNER_URL,
  runnerEnvelope,
  runnerPuts,
  sendRunnerWebhook,
  useEdgeHarness,
  VERSION,
  waitFor,
} from './support/edge-harness.ts';

useEdgeHarness();

async function create(key: string, input: Record<string, unknown>, init: RequestInit = {}): Promise<Prediction> {
  const res = await api(key)('/v1/predictions', { method: 'POST', json: { version: `${MODEL}:${VERSION}`, input }, ...init });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return (await res.json()) as Prediction;
}

const fakeEmbeddings = (seed: number) => {
  const data = new Float32Array(77 * 8).map((_, i) => Math.sin(i + seed));
  return {
    prompt: encodeTensor(data, [1, 77, 8]),
    negative: encodeTensor(
      data.map((v) => -v),
      [1, 77, 8],
    ),
  };
};

describe('embedding cache', () => {
  it('a miss sends tokens and asks for embeddings; the repeated prompt is a hit and reaches the runner with embeddings, not ids', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const prompt = `a lighthouse at dusk ${crypto.randomUUID()}`;

    const first = await create(key, { prompt, negative_prompt: 'blurry', seed: 1 });
    expect(first.metrics.embedding_cache).toBe('miss');
    const put1 = await waitFor(() => runnerPuts(seen, first.id)[0]);
    const job1 = JSON.parse(put1.body);
    expect(put1.headers.get('prefer')).toBe('respond-async');
    expect(put1.headers.get('authorization')).toBe('Bearer test-push-target-token');
    // One webhook URL per push: the prediction and attempt under the edge's MAC.
    expect(job1.webhook).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:8787/internal/runner-webhook\\?prediction=${first.id}&attempt=0&mac=[0-9a-f]{32}$`),
    );
    expect(job1.input.return_embeddings).toBe(true);
    expect(job1.input.embeddings).toBeUndefined();
    expect(job1.input.prompt_tokens.ids[0]).toHaveLength(77);
    expect(job1.input.negative_prompt_tokens.ids).toHaveLength(job1.input.prompt_tokens.ids.length);

    const embeddings = fakeEmbeddings(1);
    const done = await sendRunnerWebhook(
      runnerEnvelope(first.id, {
        status: 'succeeded',
        output: ['https://cdn.test/out-0.png'],
        embeddings,
        completed_at: new Date().toISOString(),
      }),
    );
    expect(done.status).toBe(200);
    expect(await done.json()).toEqual({ applied: true });

    const second = await create(key, { prompt, negative_prompt: 'blurry', seed: 2 });
    expect(second.metrics.embedding_cache).toBe('hit');
    const put2 = await waitFor(() => runnerPuts(seen, second.id)[0]);
    const job2 = JSON.parse(put2.body);
    expect(job2.input.prompt_tokens).toBeUndefined();
    expect(job2.input.negative_prompt_tokens).toBeUndefined();
    expect(job2.input.return_embeddings).toBeUndefined();
    expect(job2.input.embeddings).toEqual(embeddings);

    // A different negative prompt is a different conditioning: a miss.
    const third = await create(key, { prompt, negative_prompt: 'grainy' });
    expect(third.metrics.embedding_cache).toBe('miss');

    // clip_skip picks another text-encoder layer: a miss; clip_skip 1 is the model's default layer: a hit.
    const skip2 = await create(key, { prompt, negative_prompt: 'blurry', clip_skip: 2 });
    expect(skip2.metrics.embedding_cache).toBe('miss');
    const skip1 = await create(key, { prompt, negative_prompt: 'blurry', clip_skip: 1 });
    expect(skip1.metrics.embedding_cache).toBe('hit');
  });

  it('pads the shorter side with empty windows so both sides have the same window count', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const long = Array.from({ length: 120 }, (_, i) => `word${i % 7} lighthouse`).join(', ');
    const p = await create(key, { prompt: long, negative_prompt: 'blurry', prompt_mode: 'chunk' });
    const job = JSON.parse((await waitFor(() => runnerPuts(seen, p.id)[0])).body);
    expect(job.input.prompt_tokens.ids.length).toBeGreaterThan(1);
    expect(job.input.negative_prompt_tokens.ids.length).toBe(job.input.prompt_tokens.ids.length);
    const lastNeg = job.input.negative_prompt_tokens.ids.at(-1);
    // An empty window: BOS, EOS, then padding (the embedded vocabulary pads with EOS).
    expect(lastNeg[2]).toBe(lastNeg[1]);
  });
});

describe('create', () => {
  it('returns the same prediction for a retried POST with the same Idempotency-Key, and 409 for a different body', async () => {
    const { key } = await createKey();
    fakeRunnerThatAccepts();
    const headers = { 'idempotency-key': `idem-${crypto.randomUUID()}` };
    const a = await api(key)('/v1/predictions', {
      method: 'POST',
      headers,
      json: { version: VERSION, input: { prompt: 'a fox' } },
    });
    const b = await api(key)('/v1/predictions', {
      method: 'POST',
      headers,
      json: { version: VERSION, input: { prompt: 'a fox' } },
    });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(((await b.json()) as Prediction).id).toBe(((await a.json()) as Prediction).id);
    const c = await api(key)('/v1/predictions', {
      method: 'POST',
      headers,
      json: { version: VERSION, input: { prompt: 'a wolf' } },
    });
    expect(c.status).toBe(409);
    const list = (await (await api(key)('/v1/predictions')).json()) as { results: Prediction[] };
    expect(list.results).toHaveLength(1);
  });

  it('reports validation errors with the field, the limit and the value', async () => {
    const { key } = await createKey();
    const res = await api(key)('/v1/predictions', {
      method: 'POST',
      json: { version: VERSION, input: { prompt: 'x', width: 500 } },
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { param: string; message: string; code: string } };
    expect(body.error).toMatchObject({ code: 'invalid_input', param: 'input.width' });
    expect(body.error.message).toContain('width must be a multiple of 8 between 64 and 2048, got 500');

    const unknown = await api(key)('/v1/predictions', { method: 'POST', json: { version: 'nope:1', input: { prompt: 'x' } } });
    expect(unknown.status).toBe(422);
    expect(((await unknown.json()) as { error: { param: string } }).error.param).toBe('version');

    const notJson = await api(key)('/v1/predictions', {
      method: 'POST',
      body: '{oops',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.status).toBe(422);
    expect(((await notJson.json()) as { error: { message: string } }).error.message).toContain('body must be JSON');
  });

  it("applies the key's limits on top of the model's", async () => {
    const { key } = await createKey({ maxSteps: 10 });
    const res = await api(key)(`/v1/models/${MODEL}/predictions`, {
      method: 'POST',
      json: { input: { prompt: 'x', num_inference_steps: 11 } },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toBe(
      'num_inference_steps must be an integer between 1 and 10, got 11',
    );
  });

  it('rejects unauthenticated calls before anything else', async () => {
    const res = await exports.default.fetch(new Request('http://edge.test/v1/predictions', { method: 'POST', body: '{}' }));
    expect(res.status).toBe(401);
  });

  it('holds the answer for Prefer: wait until the prediction ends', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const pending = api(key)('/v1/predictions', {
      method: 'POST',
      headers: { prefer: 'wait=20' },
      json: { version: VERSION, input: { prompt: 'an owl' } },
    });
    const put = await waitFor(() => seen.find((s) => s.method === 'PUT'));
    const id = JSON.parse(put.body).id as string;
    await sendRunnerWebhook(runnerEnvelope(id, { status: 'succeeded', output: ['https://cdn.test/owl.png'] }));
    const res = await pending;
    expect(res.status).toBe(201);
    const body = (await res.json()) as Prediction;
    expect(body).toMatchObject({ id, status: 'succeeded', output: ['https://cdn.test/owl.png'] });
  });

  it('returns after N seconds of Prefer: wait=N with the prediction still running', async () => {
    const { key } = await createKey();
    fakeRunnerThatAccepts();
    const t0 = Date.now();
    const res = await api(key)('/v1/predictions', {
      method: 'POST',
      headers: { prefer: 'wait=1' },
      json: { version: VERSION, input: { prompt: 'a bat' } },
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(['starting', 'processing']).toContain(((await res.json()) as Prediction).status);
  });
});

describe('runner webhooks', () => {
  it('a forged webhook is refused with 401 and changes nothing', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const p = await create(key, { prompt: 'a heron' });
    await waitFor(() => runnerPuts(seen, p.id)[0]);
    const forged = await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'succeeded', output: ['https://evil.test/x.png'] }), {
      secret: 'not-the-secret',
    });
    expect(forged.status).toBe(401);
    const unsigned = await exports.default.fetch(
      new Request(`http://edge.test/internal/runner-webhook?prediction=${p.id}`, {
        method: 'POST',
        body: JSON.stringify(runnerEnvelope(p.id, { status: 'failed' })),
      }),
    );
    expect(unsigned.status).toBe(401);
    const after = await getPrediction(key, p.id);
    expect(after.status).toBe('starting');
    expect(after.output).toBeNull();
  });

  it('ignores a webhook from another attempt (a runner that was given up on)', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const p = await create(key, { prompt: 'a crane' });
    await waitFor(() => runnerPuts(seen, p.id)[0]);
    const res = await sendRunnerWebhook(
      runnerEnvelope(`${p.id}-a7`, { status: 'succeeded', output: ['https://cdn.test/x.png'] }),
    );
    expect(((await res.json()) as { applied: boolean }).applied).toBe(false);
    expect((await getPrediction(key, p.id)).status).toBe('starting');
  });

  it('a push target cannot report on another push: its URL is its own, and the envelope must name that push', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const mine = await create(key, { prompt: 'a heron of mine' });
    const theirs = await create(key, { prompt: 'a heron of theirs' });
    const myPut = await waitFor(() => runnerPuts(seen, mine.id)[0]);
    await waitFor(() => runnerPuts(seen, theirs.id)[0]);
    const myUrl = (JSON.parse(myPut.body) as { webhook: string }).webhook;
    const forged = { status: 'succeeded' as const, output: ['https://evil.test/x.png'] };
    // Signed with the secret every push target shares, sent to my own URL, naming their prediction (or a later attempt).
    for (const id of [theirs.id, `${mine.id}-a1`]) {
      const res = await sendRunnerWebhook(runnerEnvelope(id, forged), {
        url: myUrl.replace('http://127.0.0.1:8787', 'http://edge.test'),
      });
      expect(res.status, id).toBe(401);
    }
    // Without a URL the edge issued, nothing is believed either.
    const bare = await sendRunnerWebhook(runnerEnvelope(theirs.id, forged), { url: 'http://edge.test/internal/runner-webhook' });
    expect(bare.status).toBe(401);
    expect((await getPrediction(key, theirs.id)).status).toBe('starting');
    expect((await getPrediction(key, mine.id)).output).toBeNull();
  });

  it('terminal states are final: a later failure or cancel does not change a success', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const p = await create(key, { prompt: 'a swan' });
    await waitFor(() => runnerPuts(seen, p.id)[0]);
    await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'processing', progress: { step: 1, total: 4, fraction: 0.25 } }));
    expect((await getPrediction(key, p.id)).status).toBe('processing');
    await sendRunnerWebhook(
      runnerEnvelope(p.id, { status: 'succeeded', output: ['https://cdn.test/swan.png'], metrics: { predict_time: 1.5 } }),
    );
    const late = await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'failed', error: 'boom' }));
    expect(((await late.json()) as { applied: boolean }).applied).toBe(false);
    const canceled = await api(key)(`/v1/predictions/${p.id}/cancel`, { method: 'POST' });
    const final = (await canceled.json()) as Prediction;
    expect(final).toMatchObject({ status: 'succeeded', output: ['https://cdn.test/swan.png'], error: null });
    expect(final.metrics.predict_time).toBe(1.5);
    expect(final.completed_at).not.toBeNull();
  });
});

describe('stream, cancel and listing', () => {
  it('streams status, progress, output and done as Server-Sent Events', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const p = await create(key, { prompt: 'a kite' });
    await waitFor(() => runnerPuts(seen, p.id)[0]);
    const streamUrl = new URL(p.urls.stream as string);
    const bad = await exports.default.fetch(new Request(`http://edge.test${streamUrl.pathname}?token=forged`));
    expect(bad.status).toBe(404);
    const res = await exports.default.fetch(
      new Request(`http://edge.test${streamUrl.pathname}${streamUrl.search}`, { headers: { accept: 'text/event-stream' } }),
    );
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = res.text();
    await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'processing', progress: { step: 2, total: 4, fraction: 0.5 } }));
    await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'succeeded', output: ['https://cdn.test/kite.png'] }));
    const events = [...(await text).matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => [m[1], m[2]]);
    expect(events).toEqual([
      ['status', '{"status":"starting"}'],
      ['status', '{"status":"processing"}'],
      ['progress', '{"step":2,"total":4,"fraction":0.5}'],
      ['status', '{"status":"succeeded"}'],
      ['progress', '{"step":4,"total":4,"fraction":1}'],
      ['output', 'https://cdn.test/kite.png'],
      ['done', '{}'],
    ]);
  });

  it('cancels a running prediction and tells its runner', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const p = await create(key, { prompt: 'a moth' });
    await waitFor(async () => runnerPuts(seen, p.id)[0] && (await getPrediction(key, p.id)).status === 'starting');
    // The accept is recorded right after the PUT returns; wait until the object knows its runner.
    await new Promise((r) => setTimeout(r, 200));
    const res = await api(key)(`/v1/predictions/${p.id}/cancel`, { method: 'POST' });
    expect(((await res.json()) as Prediction).status).toBe('canceled');
    await waitFor(() => seen.find((s) => s.method === 'POST' && s.url === `${RUNNER_URL}/predictions/${p.id}/cancel`));
    const late = await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'succeeded', output: ['https://cdn.test/moth.png'] }));
    expect(((await late.json()) as { applied: boolean }).applied).toBe(false);
  });

  it("lists only the caller's predictions, newest first, and hides others' predictions", async () => {
    const alice = await createKey();
    const bob = await createKey();
    fakeRunnerThatAccepts();
    const a1 = await create(alice.key, { prompt: 'one' });
    await new Promise((r) => setTimeout(r, 5));
    const a2 = await create(alice.key, { prompt: 'two' });
    const list = (await (await api(alice.key)('/v1/predictions')).json()) as { results: Prediction[]; next: string | null };
    expect(list.results.map((p) => p.id)).toEqual([a2.id, a1.id]);
    expect(list.next).toBeNull();
    const bobs = (await (await api(bob.key)('/v1/predictions')).json()) as { results: Prediction[] };
    expect(bobs.results).toEqual([]);
    expect((await api(bob.key)(`/v1/predictions/${a1.id}`)).status).toBe(404);
    expect((await api(bob.key)(`/v1/predictions/${a1.id}/cancel`, { method: 'POST' })).status).toBe(404);
  });
});

describe('dispatch', () => {
  it('retries on 409 with backoff and the next attempt goes through', async () => {
    const { key } = await createKey();
    let refusals = 0;
    const fakeRunnerThatSays409 = fakeNetwork((req) => {
      if (req.method === 'PUT' && refusals === 0) {
        refusals++;
        return Response.json({ detail: 'Already running a prediction' }, { status: 409 });
      }
      return new Response('{}', { status: 202 });
    });
    const p = await create(key, { prompt: 'a wren' });
    await waitFor(() => runnerPuts(fakeRunnerThatSays409, p.id).length >= 2, 20_000);
    const puts = runnerPuts(fakeRunnerThatSays409, p.id);
    expect(puts.map((s) => JSON.parse(s.body).id)).toEqual([p.id, p.id]);
    await sendRunnerWebhook(runnerEnvelope(p.id, { status: 'succeeded', output: ['https://cdn.test/wren.png'] }));
    expect((await getPrediction(key, p.id)).status).toBe('succeeded');
  }, 30_000);
});
