// Properties of the runner's rejection paths (fast-check), against the real runner process on a raw socket: for any
// early refusal (401, 404, 413, 415, 422), any body size around the ~1 MB where resets began, any chunking and pace,
// the client reads the status and the shared error body, never a reset, and the answer names no internal address.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunnerHandle, startRunner } from '../scripts/stack/runner-process.ts';
import { slowUpload } from './support/slow-upload.ts';

const API_TOKEN = 'rejection-property-token';
const MAX_REQUEST_BYTES = 2_000_000;

let runner: RunnerHandle;
beforeAll(async () => {
  runner = await startRunner({ API_TOKEN, MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) });
});
afterAll(() => runner?.stop());

const auth = `Bearer ${API_TOKEN}`;
type Case = { status: number; method: string; path: string; headers: Record<string, string>; json?: boolean };
const CASES: Case[] = [
  { status: 401, method: 'POST', path: '/predictions', headers: { 'content-type': 'application/json' } },
  { status: 401, method: 'PUT', path: '/predictions/abc', headers: { authorization: 'Bearer wrong' } },
  { status: 404, method: 'POST', path: '/nope', headers: { authorization: auth } },
  { status: 404, method: 'POST', path: '/predictions/missing/cancel', headers: { authorization: auth } },
  { status: 415, method: 'POST', path: '/predictions', headers: { authorization: auth, 'content-type': 'text/plain' } },
  {
    status: 422,
    method: 'POST',
    path: '/predictions',
    headers: { authorization: auth, 'content-type': 'application/json' },
    json: true,
  },
];

function bodyFor(c: Case, size: number): Uint8Array {
  if (!c.json) return new Uint8Array(size).fill(0x7a);
  // Valid JSON whose prompt is far past its limit: refused after the whole body was read.
  return new TextEncoder().encode(JSON.stringify({ input: { prompt: 'p'.repeat(Math.max(1, size - 40)) } }));
}

describe('runner rejection properties', () => {
  it('any early rejection of a large body is read as its status, never a reset, naming no internal address', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ c: fc.constantFrom(...CASES), size: fc.integer({ min: 900_000, max: MAX_REQUEST_BYTES - 100 }) }),
          fc.record({
            c: fc.constant<Case>({ status: 413, method: 'POST', path: '/predictions', headers: { authorization: auth } }),
            // Up to the drain bound (2x MAX_REQUEST_BYTES): past it the runner closes the connection on purpose.
            size: fc.integer({ min: MAX_REQUEST_BYTES + 1, max: 2 * MAX_REQUEST_BYTES - 1024 }),
          }),
        ),
        fc.integer({ min: 4 * 1024, max: 256 * 1024 }),
        fc.integer({ min: 0, max: 8 }),
        async ({ c, size }, chunkBytes, delayMs) => {
          const r = await slowUpload(runner.port, {
            method: c.method,
            path: c.path,
            headers: c.headers,
            body: bodyFor(c, size),
            chunkBytes,
            delayMs,
          });
          expect(r.error, `${c.status} ${c.path} size ${size}`).toBeNull();
          expect(r.status).toBe(c.status);
          const body = JSON.parse(r.body) as { status: number; detail: string };
          expect(body.status).toBe(c.status);
          expect(r.body).not.toMatch(/127\.0\.0\.1|localhost|\bat \S+\.ts:\d+/);
        },
      ),
      { numRuns: 30 },
    );
    expect(runner.process.isRunning()).toBe(true);
  });
});
