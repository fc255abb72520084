// Hardening of the runner's HTTP surface: seeded malformed requests on every public route must get a 4xx with the
// shared error body naming the field, never a stack trace or a configured secret, and leave the runner READY and working.
import { deflateSync } from 'node:zlib';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunnerHandle, startRunner } from '../scripts/stack/runner-process.ts';
import {
  BAD_PUBLIC_FIELDS,
  badInputs,
  CONTROL,
  INF,
  NEG_INF,
  namesField,
  type Reply,
  randomText,
  readReply,
  refusalChecks,
  rng,
  toJson,
} from './support/fuzz.ts';

const API_TOKEN = 'hardening-runner-api-token-5e1f';
const WEBHOOK_TOKEN = 'hardening-webhook-token-77ab';
const WEBHOOK_SECRET = `whsec_${Buffer.from('hardening-runner-signing-key-32b').toString('base64')}`;
const AWS_SECRET = 'hardening-aws-secret-never-shown';
const SECRETS = [API_TOKEN, WEBHOOK_TOKEN, WEBHOOK_SECRET, AWS_SECRET];
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** A valid input that runs in a few ms on the embedded model. */
const BASE = { prompt: 'a red apple', width: 64, height: 64, num_inference_steps: 2 } as const;

let runner: RunnerHandle;
const auth = { authorization: `Bearer ${API_TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

beforeAll(async () => {
  runner = await startRunner({
    API_TOKEN,
    WEBHOOK_TOKEN,
    WEBHOOK_SIGNING_SECRET: WEBHOOK_SECRET,
    // Present in the environment without a bucket (outputs stay data URLs): it must still never be echoed.
    AWS_ACCESS_KEY_ID: 'AKIAHARDENING',
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
  });
});

afterAll(async () => {
  await runner?.stop();
});

async function send(
  method: string,
  path: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = json,
): Promise<Reply> {
  return readReply(await fetch(`${runner.url}${path}`, { method, headers, body: body as BodyInit | undefined }));
}

const post = (input: unknown, headers: Record<string, string> = json) =>
  send('POST', '/predictions', JSON.stringify({ input }), headers);

/** Nothing a caller sees may carry a stack frame, a source path or a configured secret. */
const { expectNoLeak, expectRefused } = refusalChecks(SECRETS);

async function expectHealthy(): Promise<void> {
  expect(runner.process.isRunning()).toBe(true);
  const health = await send('GET', '/health-check', undefined, {});
  expect(health.status).toBe(200);
  expect((health.body as { status: string }).status).toBe('READY');
}

async function expectValidPredictionSucceeds(): Promise<void> {
  const res = await post({ ...BASE, seed: 7 });
  expect(res.status, res.text.slice(0, 300)).toBe(200);
  const p = res.body as RunnerPrediction;
  expect(p.status).toBe('succeeded');
  expect(p.output?.[0]).toMatch(/^data:image\/png;base64,/);
}

/** Values each field must refuse (schema level: no model needed to know they are wrong). */
const BAD: Record<string, unknown[]> = {
  ...BAD_PUBLIC_FIELDS,
  guidance_scale: ['7', -0.5, 31, INF, NEG_INF, 'NaN', 'Infinity', null],
  return_embeddings: ['yes', 0],
  image: [
    'http://example.com/a.png',
    'ftp://example.com/a.png',
    'data:image/gif;base64,R0lGODlh',
    'data:image/png;base64,@@@@',
    'not a url',
    5,
    `https://${'a'.repeat(5000)}.com/`,
  ],
  mask: ['http://example.com/m.png', 'data:text/plain;base64,AAAA', 'data:image/png;base64,%%%', {}],
  prompt_tokens: [
    'x',
    { ids: [], weights: [] },
    { ids: [[-1]], weights: [[1]] },
    { ids: [[1.5]], weights: [[1]] },
    { ids: [[1, 2]], weights: [[1]] },
    { ids: [[1]], weights: [[1], [1]] },
    { ids: [[1]], weights: [[1e6]] },
    { ids: [[1]], weights: [[INF]] },
    { ids: [[1]], weights: [['1']] },
    { ids: Array.from({ length: 33 }, () => [1]), weights: Array.from({ length: 33 }, () => [1]) },
    { ids: [[1]], weights: [[1]], extra: 1 },
  ],
  negative_prompt_tokens: [{ ids: [[1]], weights: [[NEG_INF]] }, { ids: [[1]] }],
  embeddings: [
    'AAAA',
    {
      prompt: { dtype: 'float32', shape: [1, 77, 4], data: '!!!!' },
      negative: { dtype: 'float32', shape: [1, 77, 4], data: '!!!!' },
    },
    {
      prompt: { dtype: 'float32', shape: [1, 77, 4], data: 'AAAA' },
      negative: { dtype: 'float32', shape: [1, 77, 4], data: 'AAAA' },
    },
    { prompt: { dtype: 'int8', shape: [1, 1, 4], data: 'AAAA' }, negative: { dtype: 'int8', shape: [1, 1, 4], data: 'AAAA' } },
    {
      prompt: { dtype: 'float32', shape: [4], data: 'AAAAAAAAAAAAAAAAAAAAAA==' },
      negative: { dtype: 'float32', shape: [4], data: 'AAAAAAAAAAAAAAAAAAAAAA==' },
    },
    { prompt: { dtype: 'float32', shape: [1, 0, 4], data: '' }, negative: { dtype: 'float32', shape: [1, 0, 4], data: '' } },
    { prompt: { dtype: 'float32', shape: [1, 1, 1], data: 'AAAAAA==' } },
  ],
};

describe('malformed bodies on POST /predictions and PUT /predictions/{id}', () => {
  it('invalid JSON, empty, array, string, null, deeply nested and unknown top-level shapes are 422 naming the body or input', async () => {
    const cases: Array<[string, string]> = [
      ['{bad', '(body)'],
      ['{"input": {"prompt": "a",}}', '(body)'],
      ['', 'input'],
      ['[]', '(body)'],
      ['"a string"', '(body)'],
      ['null', 'input'],
      ['42', '(body)'],
      ['{"input": []}', 'input'],
      ['{"input": "prompt"}', 'input'],
      [`{"input":{"prompt":"a","nested":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`, 'input.nested'],
      [`{"input":{"prompt":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}}`, 'input.prompt'],
      ['{"input":{"prompt":"a"},"webhook":"ftp://example.com/hook"}', 'webhook'],
      ['{"input":{"prompt":"a"},"webhook_events_filter":["start","boom"]}', 'webhook_events_filter'],
      ['{"input":{"prompt":"a"},"id":"../../etc/passwd"}', 'id'],
    ];
    for (const [body, field] of cases) {
      for (const [method, path] of [
        ['POST', '/predictions'],
        ['PUT', '/predictions/hardening-body'],
      ] as const) {
        expectRefused(await send(method, path, body), 422, [field]);
      }
    }
  });

  it('a body that is not declared as JSON is 415 naming Content-Type', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'image/png',
    ]) {
      const reply = await send('POST', '/predictions', JSON.stringify({ input: BASE }), { ...auth, 'content-type': type });
      expectRefused(reply, 415, ['Content-Type']);
    }
  });

  it('a body over MAX_REQUEST_BYTES is 413 naming the limit, declared or streamed', async () => {
    const big = new Uint8Array(MAX_REQUEST_BYTES + 1024).fill(0x20);
    const declared = expectRefused(await send('POST', '/predictions', big), 413);
    expect(declared.error.message).toContain(String(MAX_REQUEST_BYTES));
    // Chunked (no content-length): the cap applies while reading.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 18; i++) c.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
        c.close();
      },
    });
    const res = await fetch(`${runner.url}/predictions/streamed`, {
      method: 'PUT',
      headers: json,
      body: stream,
      duplex: 'half',
    } as RequestInit);
    const streamed = expectRefused(await readReply(res), 413);
    expect(streamed.error.message).toContain(String(MAX_REQUEST_BYTES));
  });

  it('a 1 MB prompt and an 11 MiB data URI are 422 naming the field and the limit', async () => {
    const prompt = expectRefused(await post({ ...BASE, prompt: '\u00e9'.repeat(1024 * 1024) }), 422, ['input.prompt']);
    expect(prompt.error.message).toContain('10000 characters');
    const image = `data:image/png;base64,${Buffer.alloc(11 * 1024 * 1024).toString('base64')}`;
    const tooBig = expectRefused(await post({ ...BASE, image }), 422, ['input.image']);
    expect(tooBig.error.message).toContain('10 MiB');
  });
});

describe('seeded field fuzzing', () => {
  it('every field given a bad value (1 to 3 at once, plus unknown fields) is named in a 422', async () => {
    for (const { n, input, expected } of badInputs(0x5eed, 120, BASE, BAD, [
      'extra',
      'Prompt',
      'prompt ',
      '__proto__x',
      `k${CONTROL}`,
      'constructor',
    ])) {
      const reply = await send('POST', '/predictions', toJson({ input }));
      const body = expectRefused(reply, 422);
      for (const field of expected) {
        expect(
          namesField(body, `input.${field}`),
          `case ${n}: input.${field} not named; input ${toJson(input).slice(0, 300)}; got ${reply.text.slice(0, 400)}`,
        ).toBe(true);
      }
    }
  });

  it('unicode, emoji, NUL and control characters in the free-text fields are accepted and produce an image', async () => {
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
      'ﬁ',
      '日本',
      '\ud800',
      '"',
      '\\',
      '<script>',
      '(',
      ')',
      ':',
      'BREAK',
    ];
    for (let n = 0; n < 4; n++) {
      const text = () => randomText(r, alphabet, 40);
      const res = await post({ ...BASE, num_inference_steps: 1, prompt: text(), negative_prompt: text(), seed: n });
      expect(res.status, res.text.slice(0, 300)).toBe(200);
      expect((res.body as RunnerPrediction).status).toBe('succeeded');
      expectNoLeak(res);
    }
  });
});

describe('model-level checks at the entrance', () => {
  const window = (id: number, length = 77) => Array.from({ length }, (_, i) => (i === 0 ? 0 : id));
  const ones = (length = 77) => Array.from({ length }, () => 1);

  it('token ids outside the vocabulary and windows of the wrong length are 422 naming the tokens', async () => {
    for (const id of [1e9, 49408, 2 ** 31]) {
      const body = expectRefused(await post({ ...BASE, prompt_tokens: { ids: [window(id)], weights: [ones()] } }), 422, [
        'input.prompt_tokens',
      ]);
      expect(body.error.message).toMatch(/below the vocabulary size \d+/);
    }
    expectRefused(await post({ ...BASE, negative_prompt_tokens: { ids: [window(5, 76)], weights: [ones(76)] } }), 422, [
      'input.negative_prompt_tokens',
    ]);
  });

  it('embeddings that are not a whole number of windows, or too many, are 422 naming the shape', async () => {
    for (const tokens of [5, 77 * 33]) {
      const t = { dtype: 'float32', shape: [1, tokens, 1], data: Buffer.alloc(tokens * 4).toString('base64') };
      expectRefused(await post({ ...BASE, embeddings: { prompt: t, negative: t } }), 422, ['input.embeddings']);
    }
  });

  it('image URLs to loopback, private and link-local addresses are refused (SSRF)', async () => {
    for (const url of [
      'https://127.0.0.1/a.png',
      'https://127.1.2.3:8443/a.png',
      'https://localhost/a.png',
      'https://10.0.0.1/a.png',
      'https://172.16.5.4/a.png',
      'https://192.168.1.1/a.png',
      'https://169.254.169.254/latest/meta-data/',
      'https://[::1]/a.png',
      'https://[fd12::1]/a.png',
      'https://[::ffff:127.0.0.1]/a.png',
      'https://0x7f000001/a.png',
    ]) {
      expectRefused(await post({ ...BASE, image: url }), 422, ['input.image']);
      expectRefused(await post({ ...BASE, image: 'https://example.com/a.png', mask: url }), 422, ['input.mask']);
    }
  });

  it('weird path ids: PUT refuses them with 422 naming id, GET and cancel answer 404', async () => {
    for (const id of ['%00', '..%2F..%2Fetc', 'a%20b', '%F0%9F%98%80', 'x'.repeat(129), "a'b", 'a.b']) {
      expectRefused(await send('PUT', `/predictions/${id}`, JSON.stringify({ input: BASE })), 422, ['id']);
      expectRefused(await send('GET', `/predictions/${id}`, undefined, auth), 404);
      expectRefused(await send('POST', `/predictions/${id}/cancel`, undefined, auth), 404);
    }
    expectRefused(await send('GET', `/predictions/${'%ff'.repeat(3000)}`, undefined, auth), [404, 414, 431]);
  });

  it('every route but the health check refuses a missing or wrong token with 401 and never echoes it', async () => {
    for (const [method, path] of [
      ['GET', '/openapi.json'],
      ['POST', '/predictions'],
      ['PUT', '/predictions/abc'],
      ['GET', '/predictions/abc'],
      ['POST', '/predictions/abc/cancel'],
      ['POST', '/shutdown'],
    ] as const) {
      for (const header of [
        {} as Record<string, string>,
        { authorization: 'Bearer wrong' },
        { authorization: `Bearer ${API_TOKEN}x` },
        { authorization: `Basic ${API_TOKEN}` },
      ]) {
        expectRefused(await send(method, path, undefined, header), 401);
      }
    }
    await expectHealthy();
  });
});

/** A PNG with the given IHDR and IDAT, checksums right: the header can declare any size. */
function png(width: number, height: number, idat: Buffer): Buffer {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = table[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type), data]);
    const out = Buffer.alloc(td.length + 8);
    out.writeUInt32BE(data.length, 0);
    td.copy(out, 4);
    out.writeUInt32BE(crc(td), td.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
const dataUri = (bytes: Buffer) => `data:image/png;base64,${bytes.toString('base64')}`;

describe('inputs that pass validation but fail in the pipeline', () => {
  async function runToEnd(input: Record<string, unknown>): Promise<RunnerPrediction> {
    const res = await post({ ...BASE, ...input });
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    expectNoLeak(res);
    return res.body as RunnerPrediction;
  }

  it('end failed with a clear error naming the input, and the runner stays READY and working', async () => {
    const wrongHidden = { dtype: 'float32', shape: [1, 77, 3], data: Buffer.alloc(77 * 3 * 4).toString('base64') };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        { embeddings: { prompt: wrongHidden, negative: wrongHidden } },
        /embeddings\.cond must be float32 \[1, tokens, \d+\].*\[1, 77, 3\]/,
      ],
      [
        { image: dataUri(Buffer.concat([png(1, 1, Buffer.alloc(0)).subarray(0, 8), Buffer.alloc(100, 7)])) },
        /image is not a readable PNG, JPEG or WebP image/,
      ],
      [{ image: dataUri(Buffer.from('GIF89a not a png at all')) }, /image is not a readable PNG, JPEG or WebP image/],
      [
        { image: dataUri(png(20000, 20000, deflateSync(Buffer.alloc(64)))) },
        /image must have between 1 and 16777216 pixels, got 20000 x 20000/,
      ],
      [
        {
          image: dataUri(png(64, 64, deflateSync(Buffer.alloc(64)))),
          mask: dataUri(png(100_000, 1000, deflateSync(Buffer.alloc(64)))),
        },
        /mask must have between 1 and 16777216 pixels/,
      ],
    ];
    for (const [input, error] of cases) {
      const p = await runToEnd(input);
      expect(p.status, JSON.stringify(input).slice(0, 200)).toBe('failed');
      expect(p.error).toMatch(error);
      await expectHealthy();
    }
    await expectValidPredictionSucceeds();
  });

  it('a 1x1 image and a mask of another size are resized and succeed', async () => {
    const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#3a6' } })
      .png()
      .toBuffer();
    const mask = await sharp({ create: { width: 48, height: 200, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    const p = await runToEnd({ image: dataUri(tiny), mask: dataUri(mask), strength: 1 });
    expect(p.status, p.error ?? '').toBe('succeeded');
  });
});

describe('after all of that', () => {
  it('the runner is READY, a valid prediction succeeds, and nothing fatal was logged', async () => {
    await expectHealthy();
    await expectValidPredictionSucceeds();
    const fatal = runner.logRecords().filter((l) => Number(l.level) >= 60 || l.msg === 'unhandled error');
    expect(fatal).toEqual([]);
  });
});
