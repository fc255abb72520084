// Replicate's files and models APIs and OpenAI's edits/models through the real worker entry, KV (FILES), Queue and
// Durable Objects, with the runner faked at fetch.

import { exports } from 'cloudflare:workers';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import {
  api,
  createKey,
  fakeRunnerThatAccepts,
  MODEL,
  runnerEnvelope,
  runnerPuts,
  sendRunnerWebhook,
  useEdgeHarness,
  VERSION,
  waitFor,
} from './support/edge-harness.ts';

useEdgeHarness();

const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PNG_BYTES = Uint8Array.from(atob(PNG_1X1), (ch) => ch.charCodeAt(0));

function post(key: string, path: string, form: FormData): Promise<Response> {
  return exports.default.fetch(
    new Request(new URL(path, 'http://edge.test'), { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form }),
  );
}

/** The form the replicate client's files.create sends for a Buffer. */
function uploadForm(bytes: Uint8Array, metadata: object = {}): FormData {
  const form = new FormData();
  form.append('content', new Blob([bytes], { type: 'application/octet-stream' }), 'buffer_1');
  form.append('metadata', new Blob([JSON.stringify(metadata)], { type: 'application/json' }));
  return form;
}

describe('files', () => {
  it("an uploaded image is the caller's: its URL as an input is inlined at create; other keys see nothing", async () => {
    const { key } = await createKey();
    const { key: other } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const res = await post(key, '/v1/files', uploadForm(PNG_BYTES, { purpose: 'init' }));
    expect(res.status, await res.clone().text()).toBe(201);
    const file = (await res.json()) as {
      id: string;
      content_type: string;
      size: number;
      urls: { get: string };
      metadata: object;
    };
    expect(file).toMatchObject({ content_type: 'image/png', size: PNG_BYTES.length, metadata: { purpose: 'init' } });
    expect(file.urls.get).toBe(`http://127.0.0.1:8787/v1/files/${file.id}`);

    expect((await api(key)(`/v1/files/${file.id}`)).status).toBe(200);
    const download = await api(key)(`/v1/files/${file.id}/download`);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(PNG_BYTES);
    expect((await api(other)(`/v1/files/${file.id}`)).status).toBe(404);

    const created = await api(key)('/v1/predictions', {
      method: 'POST',
      json: { version: `${MODEL}:${VERSION}`, input: { prompt: 'x', image: file.urls.get, num_inference_steps: 4 } },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const put = await waitFor(() => runnerPuts(seen, id)[0]);
    expect(JSON.parse(put.body).input.image).toBe(`data:image/png;base64,${PNG_1X1}`);

    const stolen = await api(other)('/v1/predictions', {
      method: 'POST',
      json: { version: `${MODEL}:${VERSION}`, input: { prompt: 'x', image: file.urls.get } },
    });
    expect(stolen.status).toBe(422);
    expect(((await stolen.json()) as { error: { param: string } }).error.param).toBe('input.image');

    expect((await api(key)(`/v1/files/${file.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(key)(`/v1/files/${file.id}`)).status).toBe(404);
  });

  it('refuses a non-image (415), a missing content part (422) and a non-multipart body (415)', async () => {
    const { key } = await createKey();
    const text = await post(key, '/v1/files', uploadForm(new TextEncoder().encode('hello')));
    expect(text.status).toBe(415);
    expect(((await text.json()) as { error: { param: string } }).error.param).toBe('content');
    const empty = new FormData();
    empty.append('metadata', '{}');
    expect((await post(key, '/v1/files', empty)).status).toBe(422);
    const json = await api(key)('/v1/files', { method: 'POST', json: { content: PNG_1X1 } });
    expect(json.status).toBe(415);
  });

  it("a data URI of application/octet-stream (the replicate client's Buffer fallback) is given its real type", async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const created = await api(key)('/v1/predictions', {
      method: 'POST',
      json: { version: `${MODEL}:${VERSION}`, input: { prompt: 'x', image: `data:application/octet-stream;base64,${PNG_1X1}` } },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const put = await waitFor(() => runnerPuts(seen, id)[0]);
    expect(JSON.parse(put.body).input.image).toBe(`data:image/png;base64,${PNG_1X1}`);
  });
});

describe('models', () => {
  it('GET /v1/models/{owner}/{name} and its versions carry the input schema; /v1/models serves both clients', async () => {
    const { key } = await createKey();
    const model = (await (await api(key)(`/v1/models/${MODEL}`)).json()) as {
      owner: string;
      name: string;
      id: string;
      object: string;
      latest_version: {
        id: string;
        openapi_schema: { components: { schemas: { Input: { properties: Record<string, { format?: string }> } } } };
      };
    };
    expect(model).toMatchObject({ owner: 'sd', name: 'embedded', id: MODEL, object: 'model', latest_version: { id: VERSION } });
    expect(model.latest_version.openapi_schema.components.schemas.Input.properties.image.format).toBe('uri');
    const version = await api(key)(`/v1/models/${MODEL}/versions/${VERSION}`);
    expect(version.status).toBe(200);
    expect((await api(key)(`/v1/models/${MODEL}/versions/nope`)).status).toBe(404);
    expect((await api(key)('/v1/models/sd/missing')).status).toBe(404);
    const list = (await (await api(key)('/v1/models')).json()) as {
      object: string;
      data: { id: string }[];
      results: { name: string }[];
    };
    expect(list.object).toBe('list');
    // Every configured model (edge/vitest.config.ts adds the pull pool sd/pulled), the default first.
    expect(list.data.map((m) => m.id)).toEqual([MODEL, 'sd/pulled']);
    expect(list.results.map((m) => m.name)).toEqual(['embedded', 'pulled']);
  });

  it("the openai client's models.retrieve finds a model by the id models.list gave (its slash sent as %2F)", async () => {
    const { key } = await createKey();
    const openai = new OpenAI({
      apiKey: key,
      baseURL: 'http://edge.test/v1',
      fetch: (url: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(new Request(url, init)),
    });
    const [first] = (await openai.models.list()).data;
    expect(await openai.models.retrieve(first.id)).toMatchObject({ id: MODEL, object: 'model', owned_by: 'sd' });
    await expect(openai.models.retrieve('sd/missing')).rejects.toMatchObject({ status: 404 });
  });
});

describe('OpenAI images', () => {
  it('edits: multipart fields are mapped (quality -> steps, input_fidelity -> strength) and the answer says which model ran', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const form = new FormData();
    form.append('image', new Blob([PNG_BYTES], { type: 'image/png' }), 'in.png');
    form.append('prompt', 'make it blue');
    form.append('model', 'gpt-image-1');
    form.append('quality', 'high');
    form.append('input_fidelity', 'high');
    form.append('size', '64x64');
    form.append('n', '1');
    const pending = post(key, '/v1/images/edits', form);
    const put = await waitFor(() => seen.find((s) => s.method === 'PUT'));
    const job = JSON.parse(put.body);
    expect(job.input).toMatchObject({
      prompt: 'make it blue',
      image: `data:image/png;base64,${PNG_1X1}`,
      num_inference_steps: 50,
      strength: 0.5,
      width: 64,
      height: 64,
    });
    // The test PNG's one pixel has alpha 127: without a mask part, DALL-E 2's rule makes its transparency the mask.
    expect(job.input.mask).toMatch(/^data:image\/png;base64,/);
    await sendRunnerWebhook(runnerEnvelope(job.id, { status: 'succeeded', output: ['https://cdn.test/e.png'] }));
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-model')).toBe(`${MODEL}:${VERSION}`);
    expect(await res.json()).toMatchObject({ model: `${MODEL}:${VERSION}`, data: [{ url: 'https://cdn.test/e.png' }] });
  });

  it("edits without a size take the image's size fitted into the caller's pixel budget, not the model's", async () => {
    const { key } = await createKey({ maxPixels: 128 * 128 });
    const seen = fakeRunnerThatAccepts();
    // A JPEG's header up to its frame: 512 wide, 256 high (the edge reads the size from it; the fake runner takes it).
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0x00, 0x02, 0x00, 0x03, 0x01, 0x22, 0x00, 0, 0]);
    const form = new FormData();
    form.append('image', new Blob([jpeg], { type: 'image/jpeg' }), 'wide.jpg');
    form.append('prompt', 'make it blue');
    const pending = post(key, '/v1/images/edits', form);
    // A refusal answers before any push: it fails the test with its body instead of a timeout.
    const put = await Promise.race([
      waitFor(() => seen.find((s) => s.method === 'PUT')),
      pending.then(async (res) => {
        throw new Error(`answered ${res.status} before any push: ${await res.text()}`);
      }),
    ]);
    const job = JSON.parse(put.body);
    // 512x256 scaled into 128 * 128 pixels, in multiples of 8.
    expect([job.input.width, job.input.height]).toEqual([176, 88]);
    await sendRunnerWebhook(runnerEnvelope(job.id, { status: 'succeeded', output: ['https://cdn.test/e.png'] }));
    expect((await pending).status).toBe(200);
  });

  it.each([
    [{ prompt: 'x', foo: 1 }, 'foo', 'unknown field foo is not accepted'],
    [{ prompt: 'x', quality: 'ultra' }, 'quality', 'quality must be one of standard, hd, low, medium, high, auto, got "ultra"'],
    [{ prompt: 'x', style: 'bold' }, 'style', 'style must be one of vivid, natural, got "bold"'],
    [{ prompt: 'x', background: 'transparent' }, 'background', 'transparent backgrounds are not supported'],
    [{ prompt: 'x', stream: true }, 'stream', 'stream must be false'],
  ])('generations refuse %j naming %s (never silently dropped)', async (body, param, message) => {
    const { key } = await createKey();
    const res = await api(key)('/v1/images/generations', { method: 'POST', json: body });
    expect(res.status).toBe(422);
    const err = (await res.json()) as { error: { param: string; message: string } };
    expect(err.error.param).toBe(param);
    expect(err.error.message).toContain(message);
  });

  it('edits need an image part and refuse a second one', async () => {
    const { key } = await createKey();
    const none = new FormData();
    none.append('prompt', 'x');
    const res = await post(key, '/v1/images/edits', none);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe('image');
    const two = new FormData();
    two.append('prompt', 'x');
    two.append('image[]', new Blob([PNG_BYTES]), 'a.png');
    two.append('image[]', new Blob([PNG_BYTES]), 'b.png');
    expect((await post(key, '/v1/images/edits', two)).status).toBe(422);
  });
});

describe('OpenAPI document', () => {
  it('describes the new surfaces', async () => {
    const doc = (await (await api('unused')('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/files',
        '/v1/files/{id}',
        '/v1/models/{owner}/{name}',
        '/v1/images/edits',
        '/sdapi/v1/txt2img',
        '/sdapi/v1/img2img',
        '/sdapi/v1/progress',
      ]),
    );
  });
});
