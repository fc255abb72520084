// Early rejections while a large body is still arriving: the real runner process, a raw socket sending megabytes
// slowly, and every refusal the runner can make before it has read the body (401, 404, 413, 415) or after (422).
// The client must read the status every time, never a reset (before the fix, fetch saw 'other side closed' or EPIPE
// on about 4 of 10 tries and every 413 waited 5 s for a drain that had stalled).
import { errorMessage } from '@sd/shared/error-message';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunnerHandle, startRunner } from '../scripts/stack/runner-process.ts';
import { slowUpload } from './support/slow-upload.ts';

const API_TOKEN = 'early-rejection-token';
const MAX_REQUEST_BYTES = 2_000_000;
const TRIES = Number(process.env.EARLY_TRIES ?? 20);

let runner: RunnerHandle;
beforeAll(async () => {
  runner = await startRunner({ API_TOKEN, MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) });
});
afterAll(() => runner?.stop());

const auth = `Bearer ${API_TOKEN}`;
const filler = (n: number) => new Uint8Array(n).fill(0x61);
/** Valid JSON, an input the schema refuses (the prompt is far too long), about `n` bytes. */
const tooLongPrompt = (n: number) => new TextEncoder().encode(JSON.stringify({ input: { prompt: 'a'.repeat(n - 40) } }));

const CASES = [
  { status: 401, method: 'POST', path: '/predictions', headers: { 'content-type': 'application/json' }, body: filler(1_500_000) },
  { status: 404, method: 'POST', path: '/no-such-route', headers: { authorization: auth }, body: filler(1_500_000) },
  {
    status: 404,
    method: 'POST',
    path: '/predictions/unknown-id/cancel',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: filler(1_500_000),
  },
  {
    status: 413,
    method: 'POST',
    path: '/predictions',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: filler(2_500_000),
  },
  {
    status: 415,
    method: 'POST',
    path: '/predictions',
    headers: { authorization: auth, 'content-type': 'text/plain' },
    body: filler(1_500_000),
  },
  {
    status: 422,
    method: 'PUT',
    path: '/predictions/abc',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: tooLongPrompt(1_500_000),
  },
] as const;

/** Runs `tries` attempts, `parallel` at a time, and returns one outcome string each. */
async function attempts(tries: number, parallel: number, one: () => Promise<string>): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < tries; i += parallel) {
    outcomes.push(...(await Promise.all(Array.from({ length: Math.min(parallel, tries - i) }, one))));
  }
  return outcomes;
}

describe('early rejections of a large body still arriving', () => {
  it.each(CASES)('$status for $method $path, sent slowly on a raw socket: the status every time, never a reset', async (c) => {
    // 32 KiB every 30 ms: 1.5 MB take about 1.5 s, far longer than a server that answers and then drains a moment.
    const outcomes = await attempts(TRIES, 4, async () => {
      const r = await slowUpload(runner.port, { ...c, chunkBytes: 32 * 1024, delayMs: 30 });
      if (r.status === c.status && !r.error) expect(JSON.parse(r.body).status, r.body).toBe(c.status);
      return r.error ? `${r.status ?? 'no status'} ${r.error} after ${r.sent} bytes` : String(r.status);
    });
    expect(outcomes).toEqual(new Array(TRIES).fill(String(c.status)));
    expect(runner.process.isRunning()).toBe(true);
  });

  it.each(CASES)('$status for $method $path, sent at full speed by fetch: the status every time', async (c) => {
    const outcomes = await attempts(TRIES, 1, async () => {
      try {
        const res = await fetch(`${runner.url}${c.path}`, { method: c.method, headers: c.headers, body: c.body });
        const body = (await res.json()) as { status: number };
        return body.status === res.status ? String(res.status) : `${res.status} with body status ${body.status}`;
      } catch (err) {
        return `${errorMessage(err)}: ${err instanceof Error && err.cause !== undefined ? errorMessage(err.cause) : undefined}`;
      }
    });
    expect(outcomes).toEqual(new Array(TRIES).fill(String(c.status)));
  });
});
