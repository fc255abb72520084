// A pull runner that loses its network to the edge for a while (its TCP connections through a proxy are cut and new
// ones refused for 12 s), on the real stack: it stops the prediction itself before the edge can give it away (the fence
// at 70% of the lease TTL), the edge takes the lease back after the TTL, the other runner completes it once, and when
// the network returns the cut runner's late reports change nothing. Never two runners at once, nothing lost.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';
import { callEdge, type PublicPrediction, runnerStarts, storedObjects, waitForPrediction } from './support/stack-probes.ts';

const LEASE_TTL_SECONDS = 4;
const TERMINAL = ['succeeded', 'failed', 'canceled'];

/** A TCP proxy to the edge whose link can be cut: open connections are destroyed and new ones refused until restored. */
interface CuttableLink {
  url: string;
  cut(ms: number): void;
  close(): Promise<void>;
}

function cuttableLink(target: () => number): Promise<CuttableLink> {
  const sockets = new Set<Socket>();
  let blockedUntil = 0;
  const server: Server = createServer((client) => {
    if (Date.now() < blockedUntil) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: target() });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        cut(ms) {
          blockedUntil = Date.now() + ms;
          for (const s of sockets) s.destroy();
        },
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    }),
  );
}

let stack: LocalStack;
const links: CuttableLink[] = [];
let edgePort = 0;

beforeAll(async () => {
  for (let i = 0; i < 2; i++) links.push(await cuttableLink(() => edgePort));
  stack = await startLocalStack({
    runnerCount: 2,
    secretKey: { ratePerMinute: 600, maxInFlight: 16 },
    runnerEnv: { SLOTS: '1', PROGRESS_THROTTLE_MS: '100', ORT_INTRA_OP_THREADS: '1' },
    edgeVars: { LEASE_TTL_SECONDS: String(LEASE_TTL_SECONDS) },
    runnerEdgeUrl: (edgeUrl, i) => {
      edgePort = Number(new URL(edgeUrl).port);
      return links[i].url;
    },
  });
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await Promise.all(links.map((l) => l.close()));
});

describe('a pull runner that loses its network to the edge', () => {
  it('stops itself before the edge re-leases; the other runner completes the prediction once; its late reports change nothing', async () => {
    const res = await callEdge(stack.edgeUrl, stack.apiKey, '/v1/predictions', {
      body: {
        version: stack.model.ref,
        input: { prompt: 'a runner that loses its network', width: 256, height: 256, num_inference_steps: 150 },
      },
    });
    expect(res.status).toBe(201);
    const p = (await res.json()) as PublicPrediction;
    await waitForPrediction(
      stack.edgeUrl,
      stack.apiKey,
      p.id,
      (x) => (x.progress?.step ?? 0) >= 3 || TERMINAL.includes(x.status),
      60_000,
    );
    const holderIndex = stack.runners.findIndex((r) => runnerStarts(r, p.id) === 1);
    expect(holderIndex).toBeGreaterThanOrEqual(0);
    const holder = stack.runners[holderIndex];
    const other = stack.runners[1 - holderIndex];
    const cutAt = Date.now();
    links[holderIndex].cut(12_000);

    const final = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, (x) => TERMINAL.includes(x.status), 120_000);
    expect(final.status, final.error ?? '').toBe('succeeded');
    expect(final.output?.[0]).toContain(`/predictions/${p.id}-a1/0.png`);
    expect(runnerStarts(other, `${p.id}-a1`)).toBe(1);

    // The cut runner fenced itself (no renewed heartbeat for 70% of the TTL) before the other runner started.
    const timeOf = (records: Record<string, unknown>[], match: (r: Record<string, unknown>) => boolean) =>
      Date.parse(String(records.find(match)?.time));
    const fencedAt = timeOf(holder.logRecords(), (r) => /could not renew the lease in time/.test(String(r.msg)));
    const retakenAt = timeOf(other.logRecords(), (r) => r.msg === 'prediction started' && r.prediction_id === `${p.id}-a1`);
    expect(fencedAt - cutAt).toBeLessThan(LEASE_TTL_SECONDS * 1000);
    expect(fencedAt).toBeLessThan(retakenAt);
    // Its attempt never finished or stored anything, before or after the network came back.
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 13_000 - Date.now())));
    expect(
      holder.logRecords().some((r) => r.prediction_id === p.id && r.msg === 'prediction completed' && r.status === 'succeeded'),
    ).toBe(false);
    expect(await storedObjects(stack.s3, p.id)).toEqual([]);
    expect(await storedObjects(stack.s3, `${p.id}-a1`)).toEqual(['0.png']);
    const after = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, () => true);
    expect(after.output).toEqual(final.output);
    // The runner is back in service: it leases the next prediction.
    const next = await callEdge(stack.edgeUrl, stack.apiKey, '/v1/predictions', {
      body: {
        version: stack.model.ref,
        input: { prompt: 'after the network came back', width: 64, height: 64, num_inference_steps: 4 },
      },
    });
    const n = (await next.json()) as PublicPrediction;
    const done = await waitForPrediction(stack.edgeUrl, stack.apiKey, n.id, (x) => TERMINAL.includes(x.status), 60_000);
    expect(done.status).toBe('succeeded');
  });
});
