// Client webhooks signed per Standard Webhooks and filtered; the OpenAI route's validation and answer; the OpenAPI
// document. (The line and the leases: line-and-leases.test.ts.)

import type { Prediction } from '@sd/shared/schemas/prediction';
import { verifyWebhook } from '@sd/shared/webhook-signature';
import { describe, expect, it } from 'vitest';
import {
  api,
  createKey,
  fakeNetwork,
  RUNNER_URL,
  runnerEnvelope,
  runnerPuts,
  sendRunnerWebhook,
  useEdgeHarness,
  VERSION,
  WEBHOOK_SIGNING_SECRET,
  waitFor,
} from './support/edge-harness.ts';

useEdgeHarness();

describe('client webhooks', () => {
  it('delivers only the filtered events, signed per Standard Webhooks with the deployment secret', async () => {
    const { key } = await createKey();
    const seen = fakeNetwork((req) =>
      req.url.startsWith(RUNNER_URL) ? new Response('{}', { status: 202 }) : new Response('ok'),
    );
    const created = (await (
      await api(key)('/v1/predictions', {
        method: 'POST',
        json: {
          version: VERSION,
          input: { prompt: 'a vole' },
          webhook: 'https://client.test/hook',
          webhook_events_filter: ['completed'],
        },
      })
    ).json()) as Prediction;
    await waitFor(() => runnerPuts(seen, created.id)[0]);
    await sendRunnerWebhook(runnerEnvelope(created.id, { status: 'processing', progress: { step: 1, total: 2, fraction: 0.5 } }));
    await sendRunnerWebhook(runnerEnvelope(created.id, { status: 'succeeded', output: ['https://cdn.test/vole.png'] }));
    const hook = await waitFor(() => seen.find((s) => s.url === 'https://client.test/hook'));
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.filter((s) => s.url === 'https://client.test/hook')).toHaveLength(1);
    expect(await verifyWebhook(WEBHOOK_SIGNING_SECRET, hook.headers, hook.body)).toEqual({ ok: true });
    expect(await verifyWebhook('whsec_b3RoZXI=', hook.headers, hook.body)).toMatchObject({ ok: false });
    expect(JSON.parse(hook.body)).toMatchObject({ id: created.id, status: 'succeeded', output: ['https://cdn.test/vole.png'] });
  });
});

describe('OpenAI images route', () => {
  it.each([
    [{ prompt: 'x', n: 5 }, 'n', 'n must be an integer between 1 and 4, got 5'],
    [{ prompt: 'x', size: 'big' }, 'size', 'size must look like 512x512, got "big"'],
    [{ prompt: 'x', size: '500x512' }, 'size', 'width must be a multiple of 8 between 64 and 2048, got 500'],
    [{ n: 1 }, 'prompt', 'prompt must be a string'],
    [{ prompt: 'x', response_format: 'png' }, 'response_format', 'response_format must be url or b64_json'],
  ])('rejects %j naming %s', async (body, param, message) => {
    const { key } = await createKey();
    const res = await api(key)('/v1/images/generations', { method: 'POST', json: body });
    expect(res.status).toBe(422);
    const err = (await res.json()) as { error: { param: string; message: string; type: string } };
    expect(err.error.param).toBe(param);
    expect(err.error.message).toContain(message);
    expect(err.error.type).toBe('invalid_request_error');
  });

  it('waits for the prediction and answers with URLs or base64', async () => {
    const { key } = await createKey();
    const seen = fakeNetwork((req) =>
      req.url.startsWith(RUNNER_URL)
        ? new Response('{}', { status: 202 })
        : new Response(new Uint8Array([137, 80, 78, 71]), { headers: { 'content-type': 'image/png' } }),
    );
    const pending = api(key)('/v1/images/generations', {
      method: 'POST',
      json: { prompt: 'a yak', n: 2, size: '256x256', response_format: 'b64_json' },
    });
    const put = await waitFor(() => seen.find((s) => s.method === 'PUT'));
    const job = JSON.parse(put.body);
    expect(job.input).toMatchObject({ prompt: 'a yak', num_outputs: 2, width: 256, height: 256 });
    await sendRunnerWebhook(
      runnerEnvelope(job.id, { status: 'succeeded', output: ['https://cdn.test/a.png', 'data:image/png;base64,AAEC'] }),
    );
    const res = await pending;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { created: number; data: { b64_json: string }[] };
    expect(body.data.map((d) => d.b64_json)).toEqual(['iVBORw==', 'AAEC']);
  });
});

describe('OpenAPI', () => {
  it('describes the routes and the input from the zod schemas', async () => {
    const res = await api('unused')('/openapi.json');
    const doc = (await res.json()) as {
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/predictions', '/v1/predictions/{id}', '/v1/images/generations']),
    );
    expect(Object.keys(doc.components.schemas.PredictionInput.properties ?? {})).toEqual(
      expect.arrayContaining(['prompt', 'width', 'scheduler', 'seed']),
    );
  });
});
