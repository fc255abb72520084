// Hardening of the edge's public surface inside workerd: seeded malformed requests on every route must get a 4xx with
// the shared error body naming the field, never a stack trace or a configured secret, and the edge keeps working.

import { env, exports } from 'cloudflare:workers';
import type { Prediction } from '@sd/shared/schemas/prediction';
import { encodeTensor } from '@sd/shared/tensor-format';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_PUBLIC_FIELDS,
  badInputs,
  CONTROL,
  namesField,
  randomText,
  readReply,
  refusalChecks,
  rng,
  toJson,
} from '../../test/support/fuzz.ts';
import { MAX_BODY_BYTES } from '../src/api/json-body.ts';
import {
  api,
  createKey,
  fakeRunnerThatAccepts,
  getPrediction,
  MODEL,
  RUNNER_WEBHOOK_SECRET,
  runnerEnvelope,
  runnerPuts,
  sendRunnerWebhook,
  useEdgeHarness,
  VERSION,
  WEBHOOK_SIGNING_SECRET,
  waitFor,
} from './support/edge-harness.ts';

/** The secrets vitest.config.ts binds: none may appear in any response. */
const SECRETS = [RUNNER_WEBHOOK_SECRET, WEBHOOK_SIGNING_SECRET, 'test-runner-token', 'test-token-signing-secret'];
const VERSION_REF = `${MODEL}:${VERSION}`;
const BASE = { prompt: 'a red apple', width: 64, height: 64, num_inference_steps: 2 } as const;

let key: string;
let call: ReturnType<typeof api>;

useEdgeHarness();

beforeAll(async () => {
  ({ key } = await createKey({ ratePerMinute: 100_000, maxInFlight: 1000 }));
  call = api(key);
});

const json = { 'content-type': 'application/json' };
const rawPost = async (path: string, body: BodyInit, headers: Record<string, string> = json) =>
  readReply(await call(path, { method: 'POST', body, headers }));

const { expectNoLeak, expectRefused } = refusalChecks(SECRETS);

/** Values each public input field must refuse; runner-only fields are unknown here. */
const BAD: Record<string, unknown[]> = {
  ...BAD_PUBLIC_FIELDS,
  image: [
    'http://example.com/a.png',
    'ftp://example.com/a.png',
    'data:image/gif;base64,R0lGODlh',
    'data:image/png;base64,@@@@',
    'not a url',
    5,
  ],
  mask: ['http://example.com/m.png', 'data:text/plain;base64,AAAA', {}],
  // Only the runner takes these; a public caller sending them is refused by name.
  prompt_tokens: [{ ids: [[1]], weights: [[1]] }],
  embeddings: [{ prompt: 'AAAA' }],
  return_embeddings: [true],
};

describe('malformed bodies on the create routes', () => {
  const createRoutes = [
    '/v1/predictions',
    `/v1/models/${MODEL}/predictions`,
    `/v1/models/${MODEL}/versions/${VERSION}/predictions`,
  ];

  it('invalid JSON, empty, array, string, null and deeply nested bodies are 422 naming the body or the field', async () => {
    const cases: Array<[string, string]> = [
      ['{bad', '(body)'],
      ['', '(body)'],
      ['[]', '(body)'],
      ['"a string"', '(body)'],
      ['null', '(body)'],
      ['42', '(body)'],
      [`{"version":"${VERSION_REF}","input":[]}`, 'input'],
      [`{"version":"${VERSION_REF}","input":null}`, 'input'],
      [`{"version":"${VERSION_REF}","input":{"prompt":"a","nested":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`, 'input.nested'],
      [`{"version":"${VERSION_REF}","input":{"prompt":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}}`, 'input.prompt'],
      [`{"version":"${VERSION_REF}","input":{"prompt":"a"},"webhook":"ftp://example.com/hook"}`, 'webhook'],
      [`{"version":"${VERSION_REF}","input":{"prompt":"a"},"webhook_events_filter":["start","boom"]}`, 'webhook_events_filter'],
      // SSRF: client webhooks to loopback, private, link-local, metadata or internal names (any spelling).
      ...[
        'http://127.0.0.1:8080/hook',
        'http://2130706433/hook',
        'http://0177.0.0.1/hook',
        'http://0x7f.1/hook',
        'http://127.1/hook',
        'https://10.1.2.3/hook',
        'https://169.254.169.254/latest/meta-data/',
        'https://[::1]/hook',
        'https://[::ffff:127.0.0.1]/hook',
        'https://[::ffff:0:127.0.0.1]/hook',
        'https://[64:ff9b::127.0.0.1]/hook',
        'https://[::127.0.0.1]/hook',
        'https://[fd00:ec2::254]/hook',
        'https://[2002:7f00:1::]/hook',
        'https://localhost/hook',
        'https://hooks.localhost/hook',
        'https://metadata.google.internal/computeMetadata/v1/',
        'https://metadata/hook',
      ].map(
        (hook) =>
          [JSON.stringify({ version: VERSION_REF, input: { prompt: 'a' }, webhook: hook }), 'webhook'] as [string, string],
      ),
      // SSRF through the hosts that fetch image inputs: an image or mask URL naming an internal host (the schema takes
      // plain http only on loopback, for a local stack's own bucket; a deployment refuses those too).
      ...[
        ['image', 'http://127.0.0.1:9000/outputs/predictions/p/0.png'],
        ['image', 'http://localhost/a.png'],
        ['image', 'https://169.254.169.254/latest/meta-data/'],
        ['image', 'https://[::ffff:10.0.0.1]/a.png'],
        ['image', 'https://metadata.google.internal/a.png'],
        ['mask', 'https://192.168.1.10/m.png'],
      ].map(([field, url]) => {
        const input = { prompt: 'a', image: 'https://images.example/a.png', [field]: url };
        return [JSON.stringify({ version: VERSION_REF, input }), `input.${field}`] as [string, string];
      }),
      [`{"version":"${VERSION_REF}","input":{"prompt":"a"},"surprise":1}`, 'surprise'],
    ];
    for (const [body, field] of cases) {
      for (const path of createRoutes) expectRefused(await rawPost(path, body), 422, [field]);
    }
    expectRefused(await rawPost('/v1/predictions', JSON.stringify({ version: 'nope:1', input: BASE })), 422, ['version']);
    expectRefused(await rawPost('/v1/predictions', JSON.stringify({ version: 7, input: BASE })), 422, ['version']);
  });

  it('a body that is not declared as JSON is 415 naming Content-Type', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
    ]) {
      expectRefused(
        await rawPost('/v1/predictions', JSON.stringify({ version: VERSION_REF, input: BASE }), { 'content-type': type }),
        415,
        ['Content-Type'],
      );
    }
  });

  it(`a body over ${MAX_BODY_BYTES} bytes is 413 naming the limit`, async () => {
    const big = new Uint8Array(MAX_BODY_BYTES + 1024).fill(0x20);
    for (const path of ['/v1/predictions', '/v1/images/generations', '/internal/runner-webhook']) {
      const body = expectRefused(await rawPost(path, big), 413);
      expect(body.error.message).toContain(String(MAX_BODY_BYTES));
    }
  });

  it('a 1 MB prompt is 422 naming prompt and its limit; a prompt past the window limit names prompt', async () => {
    const huge = expectRefused(
      await rawPost(
        '/v1/predictions',
        JSON.stringify({ version: VERSION_REF, input: { ...BASE, prompt: '\u00e9'.repeat(1024 * 1024) } }),
      ),
      422,
      ['input.prompt'],
    );
    expect(huge.error.message).toContain('10000 characters');
    const words = Array.from({ length: 3000 }, (_, i) => `w${i}`).join(' ');
    const long = expectRefused(
      await rawPost(
        '/v1/predictions',
        JSON.stringify({ version: VERSION_REF, input: { ...BASE, prompt: words.slice(0, 9999) } }),
      ),
      422,
      ['input.prompt'],
    );
    expect(long.error.message).toMatch(/must fit in 32 windows/);
  });

  it('prompt weights past the runner limit are 422 naming prompt, not a failed prediction later', async () => {
    for (const prompt of ['(cat:1000)', '(cat:-500)', `${'('.repeat(60)}cat${')'.repeat(60)}`]) {
      const body = expectRefused(
        await rawPost('/v1/predictions', JSON.stringify({ version: VERSION_REF, input: { ...BASE, prompt } })),
        422,
        ['input.prompt'],
      );
      expect(body.error.message).toMatch(/weights? .*between -100 and 100/);
    }
    for (const negative_prompt of ['(ugly:999)', '(ugly:100.5)']) {
      expectRefused(
        await rawPost('/v1/predictions', JSON.stringify({ version: VERSION_REF, input: { ...BASE, negative_prompt } })),
        422,
        ['input.negative_prompt'],
      );
    }
  });
});

describe('seeded field fuzzing', () => {
  it('every field given a bad value (1 to 3 at once, plus unknown fields) is named in a 422', async () => {
    for (const { n, input, expected } of badInputs(0x5eed, 100, BASE, BAD, [
      'extra',
      'Prompt',
      'prompt ',
      `k${CONTROL}`,
      'constructor',
    ])) {
      const res = await rawPost('/v1/predictions', toJson({ version: VERSION_REF, input }));
      const body = expectRefused(res, 422);
      for (const field of expected) {
        expect(namesField(body, `input.${field}`), `case ${n}: input.${field} not named; got ${res.text.slice(0, 400)}`).toBe(
          true,
        );
      }
    }
  });

  it('unicode, emoji, NUL and control characters in the prompts are accepted (201)', async () => {
    const seen = fakeRunnerThatAccepts();
    const ids: string[] = [];
    const r = rng(42);
    const alphabet = [
      '\u0000',
      '\u0007',
      '\u001b',
      '\u200b',
      '\u2028',
      '\ufeff',
      '😀',
      '🧑‍🚀',
      'é',
      '日本',
      '\ud800',
      '"',
      '\\',
      '<script>',
      'BREAK',
    ];
    for (let n = 0; n < 4; n++) {
      const text = () => randomText(r, alphabet, 30);
      const res = await readReply(
        await call('/v1/predictions', {
          method: 'POST',
          json: { version: VERSION_REF, input: { ...BASE, prompt: text(), negative_prompt: text() } },
        }),
      );
      expect(res.status, res.text.slice(0, 300)).toBe(201);
      expectNoLeak(res);
      ids.push((res.body as Prediction).id);
    }
    // Dispatched while the fake runner is still in place (the queue consumer shares this isolate's fetch).
    for (const id of ids) await waitFor(() => runnerPuts(seen, id)[0]);
  });

  it('the OpenAI route names n, size, prompt and unknown-typed fields', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ prompt: 'a', n: '1' }, 'n'],
      [{ prompt: 'a', n: 1.5 }, 'n'],
      [{ prompt: 'a', n: 99 }, 'n'],
      [{ prompt: 'a', size: 'huge' }, 'size'],
      [{ prompt: 'a', size: '9999x9999' }, 'size'],
      [{ prompt: 'a', size: '65x64' }, 'size'],
      [{ prompt: '' }, 'prompt'],
      [{ prompt: 5 }, 'prompt'],
      [{ prompt: 'a', response_format: 'gif' }, 'response_format'],
      [{ prompt: 'a', seed: -1 }, 'seed'],
      [{ prompt: 'a', num_inference_steps: 1e9 }, 'num_inference_steps'],
      [{ prompt: 'a', guidance_scale: -3 }, 'guidance_scale'],
    ];
    for (const [body, field] of cases) expectRefused(await rawPost('/v1/images/generations', JSON.stringify(body)), 422, [field]);
    expectRefused(await rawPost('/v1/images/generations', '{nope'), 422, ['(body)']);
  });
});

describe('paths, queries and auth', () => {
  it('weird prediction ids are 404; a cursor that is not one is 422 naming cursor', async () => {
    for (const id of ['%00', '..%2F..%2Fetc', 'A', 'a%20b', '%F0%9F%98%80', 'x'.repeat(65), "a'b"]) {
      expectRefused(await readReply(await call(`/v1/predictions/${id}`)), 404);
      expectRefused(await readReply(await call(`/v1/predictions/${id}/cancel`, { method: 'POST' })), 404);
      expectRefused(await readReply(await exports.default.fetch(`http://edge.test/v1/predictions/${id}/stream?token=x`)), 404);
    }
    for (const cursor of ['garbage', '%00', 'x'.repeat(5000), btoa('notatime:abc')]) {
      expectRefused(await readReply(await call(`/v1/predictions?cursor=${cursor}`)), 422, ['cursor']);
    }
    expect((await call('/v1/predictions')).status).toBe(200);
  });

  it('missing, wrong and malformed credentials are 401 without echoing anything secret', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Bearer ${key}x`,
      `Basic ${key}`,
      'Bearer sk_\u0001 ',
      `Bearer ${'a'.repeat(10_000)}`,
    ]) {
      const headers = new Headers(json);
      if (authorization !== undefined) headers.set('authorization', authorization);
      const res = await readReply(
        await exports.default.fetch(
          new Request('http://edge.test/v1/predictions', {
            method: 'POST',
            headers,
            body: JSON.stringify({ version: VERSION_REF, input: BASE }),
          }),
        ),
      );
      expectRefused(res, [401, 403]);
      expect(res.text).not.toContain(key);
    }
  });

  it('runner webhooks: unsigned or garbage is 401, signed garbage is 422, bad query values are named', async () => {
    expectRefused(
      await readReply(
        await exports.default.fetch(
          new Request('http://edge.test/internal/runner-webhook?prediction=abc', { method: 'POST', body: '{"x":1}' }),
        ),
      ),
      401,
    );
    const signedRaw = async (body: string, query = '') => {
      const { signWebhook } = await import('@sd/shared/webhook-signature');
      const headers = await signWebhook(RUNNER_WEBHOOK_SECRET, `msg_${crypto.randomUUID()}`, body);
      return readReply(
        await exports.default.fetch(
          new Request(`http://edge.test/internal/runner-webhook?${query}`, {
            method: 'POST',
            headers: { ...json, ...headers },
            body,
          }),
        ),
      );
    };
    expectRefused(await signedRaw('{bad'), 422, ['(body)']);
    expectRefused(await signedRaw('[]'), 422, ['(body)']);
    expectRefused(await signedRaw(JSON.stringify({ ...runnerEnvelope('abc', {}), status: 'exploded' })), 422, ['status']);
    const ok = JSON.stringify(runnerEnvelope('abc', {}));
    // The envelope id must be one the edge handed out, and the URL one the edge issued (its MAC) for that same push.
    expectRefused(await signedRaw(JSON.stringify(runnerEnvelope('../x', {}))), 422, ['id']);
    expectRefused(await signedRaw(ok), 401, []);
    expectRefused(await signedRaw(ok, 'prediction=abc&attempt=0&mac=forged'), 401, []);
    expectRefused(await signedRaw(ok, 'prediction=..%2Fx&attempt=0&mac=x'), 401, []);
  });
});

describe('embeddings a runner returns are checked before they are cached', () => {
  it('a succeeded prediction with mis-shaped embeddings stays succeeded, and the next request is a miss', async () => {
    const seen = fakeRunnerThatAccepts();
    const prompt = `a harbour ${crypto.randomUUID()}`;
    const create = async () => {
      const res = await call('/v1/predictions', {
        method: 'POST',
        json: { version: VERSION_REF, input: { ...BASE, prompt, seed: 1 } },
      });
      expect(res.status).toBe(201);
      return (await res.json()) as Prediction;
    };
    const first = await create();
    expect(first.metrics.embedding_cache).toBe('miss');
    await waitFor(() => runnerPuts(seen, first.id)[0]);
    // Two windows' worth of tokens for a one-window prompt: bytes match the shape, the shape does not match the job.
    const wrong = encodeTensor(new Float32Array(154 * 8), [1, 154, 8]);
    const done = await sendRunnerWebhook(
      runnerEnvelope(first.id, {
        status: 'succeeded',
        output: ['https://cdn.test/a.png'],
        embeddings: { prompt: wrong, negative: wrong },
        completed_at: new Date().toISOString(),
      }),
    );
    expect(done.status).toBe(200);
    expect((await getPrediction(key, first.id)).status).toBe('succeeded');
    const second = await create();
    expect(second.metrics.embedding_cache).toBe('miss');
  });
});

describe('after all of that', () => {
  it('the edge is healthy and a valid prediction goes through to succeeded', async () => {
    expect((await exports.default.fetch('http://edge.test/health')).status).toBe(200);
    const seen = fakeRunnerThatAccepts();
    const res = await call('/v1/predictions', {
      method: 'POST',
      json: { version: VERSION_REF, input: { ...BASE, prompt: 'a calm lake' } },
    });
    expect(res.status).toBe(201);
    const p = (await res.json()) as Prediction;
    await waitFor(() => runnerPuts(seen, p.id)[0]);
    const done = await sendRunnerWebhook(
      runnerEnvelope(p.id, { status: 'succeeded', output: ['https://cdn.test/b.png'], completed_at: new Date().toISOString() }),
    );
    expect(done.status).toBe(200);
    expect((await getPrediction(key, p.id)).status).toBe('succeeded');
    expect(env.KEYS).toBeDefined();
  });
});
