// Inputs and outputs bigger than one Durable Object storage value (2 MiB): a maximum-size img2img request and
// data-URL outputs must be stored and dispatched intact, never lost with an internal error.
import type { Prediction } from '@sd/shared/schemas/prediction';
import { describe, expect, it } from 'vitest';
import {
  api,
  createKey,
  fakeRunnerThatAccepts,
  getPrediction,
  MODEL,
  runnerEnvelope,
  runnerPuts,
  sendRunnerWebhook,
  useEdgeHarness,
  VERSION,
  waitFor,
} from './support/edge-harness.ts';

useEdgeHarness();

/** A data URI of `bytes` decoded bytes with a PNG signature (the edge checks size and type, the runner decodes). */
function bigDataUri(bytes: number, fill: string): string {
  const b64 = `iVBORw0KGgo${fill.repeat(Math.ceil((bytes * 4) / 3 / fill.length))}`.slice(0, Math.floor((bytes * 4) / 3 / 4) * 4);
  return `data:image/png;base64,${b64}`;
}

// Tens of MB cross the worker, two Durable Objects and the fake network: more than the default 5 s on a busy machine.
describe('large inputs and outputs', { timeout: 30_000 }, () => {
  it('accepts a 9 MiB image and 9 MiB mask, stores them and sends them to the runner unchanged', async () => {
    const { key } = await createKey();
    const seen = fakeRunnerThatAccepts();
    const image = bigDataUri(9 * 1024 * 1024, 'QUJD');
    const mask = bigDataUri(9 * 1024 * 1024, 'WFla');
    const res = await api(key)('/v1/predictions', {
      method: 'POST',
      json: { version: `${MODEL}:${VERSION}`, input: { prompt: 'a cat', image, mask, width: 64, height: 64, seed: 3 } },
    });
    expect(res.status, (await res.clone().text()).slice(0, 300)).toBe(201);
    const created = (await res.json()) as Prediction;
    const put = await waitFor(() => runnerPuts(seen, created.id)[0]);
    const job = JSON.parse(put.body);
    expect(job.input.image).toBe(image);
    expect(job.input.mask).toBe(mask);
    const read = await getPrediction(key, created.id);
    expect(read.input.image).toBe(image);
  });

  it('keeps data-URL outputs larger than one storage value', async () => {
    const { key } = await createKey();
    fakeRunnerThatAccepts();
    const res = await api(key)('/v1/predictions', {
      method: 'POST',
      json: { version: `${MODEL}:${VERSION}`, input: { prompt: 'a dog', num_outputs: 4, seed: 4 } },
    });
    const created = (await res.json()) as Prediction;
    const outputs = [0, 1, 2, 3].map((i) => bigDataUri(1024 * 1024, `QU${i}D`));
    const done = await sendRunnerWebhook(
      runnerEnvelope(created.id, { status: 'succeeded', output: outputs, completed_at: new Date().toISOString() }),
    );
    expect(done.status).toBe(200);
    const read = await getPrediction(key, created.id);
    expect(read.status).toBe('succeeded');
    expect(read.output).toEqual(outputs);
  });
});
