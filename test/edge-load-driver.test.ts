// The edge bench's load driver against a server that answers as wrangler dev's proxy does when its hop to the worker
// fails: the driver sends the request again instead of failing the run, and counts it; the edge's own answers pass.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isDevProxyRestart, load } from '../bench/edge.ts';

const PROXY_503 =
  'Your worker restarted mid-request. Please try sending the request again. Only GET or HEAD requests are retried automatically.';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** Answers each POST 201 with JSON, except the listed request numbers (1-based), which get wrangler's 503 text. */
async function edgeLike(failing: Set<number>): Promise<{ url: string; posts: () => number }> {
  let n = 0;
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      if (failing.has(n)) {
        res.writeHead(503, { 'content-type': 'text/plain;charset=UTF-8', 'retry-after': '0' });
        res.end(PROXY_503);
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: `p${n}`, status: 'starting' }));
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posts: () => n };
}

describe('the edge bench load driver', () => {
  it("recognises wrangler dev's proxy answer, and only it", () => {
    expect(isDevProxyRestart(503, PROXY_503)).toBe(true);
    expect(isDevProxyRestart(503, '{"error":{"code":"unavailable","message":"model sd/x has 5 predictions waiting"}}')).toBe(
      false,
    );
    expect(isDevProxyRestart(500, PROXY_503)).toBe(false);
  });

  it("sends a create again after the dev proxy's 503 and counts it, instead of failing the run", async () => {
    const edge = await edgeLike(new Set([25, 31, 32]));
    const spec = { method: 'POST' as const, path: '/v1/predictions', body: () => '{}', expect: 201 };
    const result = await load(edge.url, process.pid, spec, 30, 4);
    expect(result.retried).toBe(3);
    expect(result.bodies.length).toBe(30);
    expect(result.bodies.every((b) => JSON.parse(b).status === 'starting')).toBe(true);
    // 20 warm-up and 30 timed requests, three of them sent twice.
    expect(edge.posts()).toBe(53);
  });

  it('still fails the run on an answer of the edge that is not the expected one', async () => {
    const edge = await edgeLike(new Set());
    const spec = { method: 'POST' as const, path: '/v1/predictions', body: () => '{}', expect: 200 };
    await expect(load(edge.url, process.pid, spec, 5, 1)).rejects.toThrow(/expected 200, got 201/);
  });
});
