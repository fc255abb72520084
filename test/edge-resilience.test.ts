// No accepted prediction is lost or run twice when runners die, freeze, lose the edge or redeliver: real processes only
// (two pull runners, s3rver, the edge under wrangler dev, and a second edge whose model uses the `replicate` backend
// against the first). A runner SIGKILLed or SIGSTOPped mid-run loses its lease and the other runner completes the
// prediction once; the edge restarted with work in line runs all of it; a push pool that only refuses keeps the
// prediction waiting until its maximum queue time; client webhooks are retried with one webhook-id until accepted.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signWebhook } from '@sd/shared/webhook-signature';
import Replicate, { type Prediction } from 'replicate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushWebhookUrl } from '../edge/src/dispatch/push-webhook-url.ts';
import { type EdgeStack, type LocalStack, startEdgeStack, startLocalStack } from '../scripts/local-stack.ts';
import { freePort } from '../scripts/stack/free-port.ts';
import {
  callEdge,
  imageMetadata,
  type PublicPrediction,
  runnerStarts,
  storedObjects,
  waitForPrediction,
} from './support/stack-probes.ts';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.ts';

const TINY = { width: 64, height: 64, num_inference_steps: 6 } as const;
/** Small so a dead runner is noticed in seconds (production: 15). */
const LEASE_TTL_SECONDS = 4;
/** The push pool that only refuses gives up waiting after this long. */
const REFUSED_QUEUE_SECONDS = 8;
const REFUSING_MODEL = { id: 'sd/refused', version: 'refused-v1' } as const;
const REMOTE_MODEL = { id: 'sd/remote', version: 'remote-v1' } as const;
const TERMINAL = ['succeeded', 'failed', 'canceled'];

/** The edge B: two runners behind it, a second model whose pool only refuses (one answers 409, one is down). */
let stack: LocalStack;
/** The edge A: its model runs on B through the replicate backend. */
let front: EdgeStack;
/** A "runner" that answers every call with 409, counting them. */
let refuser: { url: string; server: Server; calls: number };
const started = Date.now();
const timings: Record<string, number> = {};

function startRefuser(): Promise<typeof refuser> {
  const state = { url: '', server: undefined as unknown as Server, calls: 0 };
  state.server = createServer((req, res) => {
    state.calls++;
    req.resume();
    res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: 'the test refuser is always busy' }));
  });
  return new Promise((resolve) =>
    state.server.listen(0, '127.0.0.1', () => {
      state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`;
      resolve(state);
    }),
  );
}

async function create(
  version: string,
  input: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<PublicPrediction> {
  const res = await callEdge(stack.edgeUrl, stack.apiKey, '/v1/predictions', { body: { version, input, ...extra } });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as PublicPrediction;
}

/** The edge's JSON log records (wrangler dev prints the worker's console lines among its own). */
function edgeLogs(edge: { process: { lines: string[] } }): Record<string, unknown>[] {
  return edge.process.lines.flatMap((colored) => {
    // wrangler colours warnings and errors even with FORCE_COLOR=0.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are control characters.
    const line = colored.replace(/\x1b\[[0-9;]*m/g, '');
    const brace = line.indexOf('{');
    if (brace < 0) return [];
    try {
      return [JSON.parse(line.slice(brace)) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** Posts a push-style runner webhook signed with the runners' secret, as a runner would (a late or duplicate one). */
async function runnerWebhook(envelope: Record<string, unknown>): Promise<Response> {
  const body = JSON.stringify(envelope);
  const headers = await signWebhook(stack.runnerWebhookSecret, `msg_${String(envelope.id)}_${Date.now()}`, body);
  // To the URL the edge issued for the push the envelope names (as the runner got it with the prediction).
  const push = /^([a-z0-9]+?)(?:-a(\d+))?$/.exec(String(envelope.id));
  if (!push) throw new Error(`not a pushed prediction id: ${String(envelope.id)}`);
  const url = await pushWebhookUrl(stack.edgeUrl, stack.runnerWebhookSecret, push[1], Number(push[2] ?? 0));
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.runnerToken}`, ...headers },
    body,
  });
}

beforeAll(async () => {
  refuser = await startRefuser();
  // Nothing listens here: the pool's "down" runner (connection refused).
  const downRunner = `http://127.0.0.1:${await freePort()}`;
  const t0 = Date.now();
  stack = await startLocalStack({
    runnerCount: 2,
    secretKey: { ratePerMinute: 600, maxInFlight: 16 },
    runnerEnv: { SLOTS: '1', PROGRESS_THROTTLE_MS: '100', ORT_INTRA_OP_THREADS: '1' },
    edgeVars: { LEASE_TTL_SECONDS: String(LEASE_TTL_SECONDS), MAX_REQUEUES: '2' },
    extraModels: () => [
      { ...REFUSING_MODEL, backend: 'cog', runners: [refuser.url, downRunner], maxQueueSeconds: REFUSED_QUEUE_SECONDS },
    ],
  });
  timings.startEdgeB = Date.now() - t0;
  const t1 = Date.now();
  front = await startEdgeStack({
    secretKey: { ratePerMinute: 600, maxInFlight: 16 },
    models: [
      { ...REMOTE_MODEL, backend: 'replicate', replicate: { baseUrl: `${stack.edgeUrl}/v1`, version: stack.model.version } },
    ],
    edgeSecrets: { REPLICATE_API_TOKEN: stack.apiKey, REPLICATE_WEBHOOK_SECRET: stack.clientWebhookSecret },
  });
  timings.startEdgeA = Date.now() - t1;
}, 240_000);

afterAll(async () => {
  // Each stop is independent: one failing must not leave the others' processes running.
  await Promise.allSettled([front?.stop(), stack?.stop()]);
  await new Promise<void>((resolve) => (refuser ? refuser.server.close(() => resolve()) : resolve()));
  console.log(`edge-resilience timings (ms): ${JSON.stringify({ ...timings, total: Date.now() - started })}`);
});

describe('client webhooks are retried end to end', () => {
  let hooks: WebhookReceiver;
  beforeAll(async () => {
    hooks = await startWebhookReceiver(stack.clientWebhookSecret);
  });
  afterAll(async () => {
    await hooks?.close();
  });

  it('a receiver that answers 500 twice to completed gets the same webhook-id again until it answers 200', async () => {
    const t0 = Date.now();
    hooks.respondWith((body, previous) => (TERMINAL.includes(body.status) && previous.length < 2 ? 500 : 200));
    const p = await create(
      stack.model.ref,
      { prompt: 'a webhook that fails twice', ...TINY },
      {
        webhook: hooks.url,
        webhook_events_filter: ['completed'],
      },
    );
    await hooks.waitFor(p.id, (w) => w.answered === 200, 45_000);
    const deliveries = hooks.forPrediction(p.id);
    expect(deliveries.map((d) => d.answered)).toEqual([500, 500, 200]);
    expect(deliveries.every((d) => d.signatureValid && d.body.status === 'succeeded')).toBe(true);
    // One message, delivered three times: receivers deduplicate on webhook-id.
    expect(new Set(deliveries.map((d) => d.webhookId)).size).toBe(1);
    expect(deliveries[0].webhookId).toBeTruthy();
    // The DO alarm's schedule: 5 s, then 10 s (a little early is not allowed, late by the alarm's latency is).
    const gaps = deliveries.slice(1).map((d, i) => d.receivedAt - deliveries[i].receivedAt);
    expect(gaps[0]).toBeGreaterThanOrEqual(4_500);
    expect(gaps[1]).toBeGreaterThanOrEqual(9_500);
    // Accepted: nothing more comes (the next retry would have been due 20 s later; the outbox is empty instead).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(hooks.forPrediction(p.id)).toHaveLength(3);
    timings.webhookRetries = Date.now() - t0;
  });
});

describe('the replicate backend against a real Replicate-compatible API (edge A -> edge B -> runner)', () => {
  const replicateOnA = () => new Replicate({ auth: front.apiKey, baseUrl: `${front.edgeUrl}/v1`, useFileOutput: false });

  /** B's prediction that A created for `prompt` (A's token is a key of B, so B lists it among that key's). */
  async function onB(prompt: string): Promise<PublicPrediction> {
    const res = await callEdge(stack.edgeUrl, stack.apiKey, '/v1/predictions');
    const { results } = (await res.json()) as { results: PublicPrediction[] };
    const hit = results.find((p) => p.input.prompt === prompt);
    if (!hit) throw new Error(`edge B has no prediction for ${JSON.stringify(prompt)}`);
    return hit;
  }

  it("replicate.run on A returns an image URL of the requested size; A learns the result from B's signed webhook", async () => {
    const t0 = Date.now();
    const prompt = `a harbour through two edges ${Date.now()}`;
    let last: Prediction | undefined;
    const output = await replicateOnA().run(
      `${REMOTE_MODEL.id}:${REMOTE_MODEL.version}`,
      { input: { prompt, width: 64, height: 96, num_inference_steps: 6, seed: 11 } },
      (p) => {
        last = p;
      },
    );
    expect(Array.isArray(output)).toBe(true);
    const [url] = output as string[];
    expect(url).toMatch(new RegExp(`^${stack.s3.endpoint}/outputs/predictions/`));
    expect(await imageMetadata(url)).toMatchObject({ width: 64, height: 96, format: 'png' });
    expect(last?.status).toBe('succeeded');
    const remote = await onB(prompt);
    expect(remote.status).toBe('succeeded');
    expect(remote.output).toEqual(output);
    expect(remote.id).not.toBe(last?.id);
    // A applied B's webhooks (verified with REPLICATE_WEBHOOK_SECRET), the terminal one included.
    const applied = edgeLogs(front.edge).filter((r) => r.msg === 'runner webhook' && r.predictionId === last?.id);
    expect(applied.some((r) => r.status === 'succeeded' && r.applied === true)).toBe(true);
    expect(edgeLogs(front.edge).filter((r) => r.msg === 'runner webhook rejected')).toEqual([]);
    timings.replicateRun = Date.now() - t0;
  });

  it('a webhook to A signed with another secret is refused and changes nothing', async () => {
    const prompt = `forged ${Date.now()}`;
    const body = JSON.stringify({ id: 'x', status: 'succeeded', input: { prompt }, output: ['http://127.0.0.1:1/evil.png'] });
    const headers = await signWebhook(
      `whsec_${Buffer.from('not the secret of B at all').toString('base64')}`,
      'msg_forged',
      body,
    );
    const res = await fetch(`${front.edgeUrl}/internal/runner-webhook?prediction=abc&generation=0`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    expect(res.status).toBe(401);
  });

  it('cancel on A cancels the prediction on B (and B cancels it on the runner)', async () => {
    const t0 = Date.now();
    const prompt = `a cancel through two edges ${Date.now()}`;
    const res = await callEdge(front.edgeUrl, front.apiKey, '/v1/predictions', {
      body: {
        version: `${REMOTE_MODEL.id}:${REMOTE_MODEL.version}`,
        input: { prompt, width: 256, height: 256, num_inference_steps: 150 },
      },
    });
    expect(res.status).toBe(201);
    const p = (await res.json()) as PublicPrediction;
    // Processing on A means B's start webhook arrived: the runner is at work.
    await waitForPrediction(front.edgeUrl, front.apiKey, p.id, (x) => x.status !== 'starting', 60_000);
    const cancel = await callEdge(front.edgeUrl, front.apiKey, `/v1/predictions/${p.id}/cancel`, { body: {} });
    expect(cancel.status).toBe(200);
    const final = await waitForPrediction(front.edgeUrl, front.apiKey, p.id, (x) => TERMINAL.includes(x.status));
    expect(final.status).toBe('canceled');
    const remote = await onB(prompt);
    const remoteFinal = await waitForPrediction(
      stack.edgeUrl,
      stack.apiKey,
      remote.id,
      (x) => TERMINAL.includes(x.status),
      30_000,
    );
    expect(remoteFinal.status).toBe('canceled');
    expect(remoteFinal.progress?.step ?? 0).toBeLessThan(150);
    // The runner stopped mid-loop and stored nothing.
    expect(await storedObjects(stack.s3, remote.id)).toEqual([]);
    timings.replicateCancel = Date.now() - t0;
  });
});

describe('runners that die, freeze or refuse, and an edge that restarts', () => {
  let hooks: WebhookReceiver;
  beforeAll(async () => {
    hooks = await startWebhookReceiver(stack.clientWebhookSecret);
  });
  afterAll(async () => {
    await hooks?.close();
  });

  /** Creates a long prediction and waits until a runner is a few steps into it; returns it and that runner. */
  async function longRunning(prompt: string, extra: Record<string, unknown> = {}) {
    const p = await create(stack.model.ref, { prompt, width: 256, height: 256, num_inference_steps: 150 }, extra);
    await waitForPrediction(
      stack.edgeUrl,
      stack.apiKey,
      p.id,
      (x) => (x.progress?.step ?? 0) >= 3 || TERMINAL.includes(x.status),
      60_000,
    );
    const holder = stack.runners.find((r) => runnerStarts(r, p.id) === 1);
    if (!holder) throw new Error(`no runner started ${p.id}`);
    return { p, holder, other: stack.runners.find((r) => r !== holder)! };
  }

  it('a push pool that only refuses (409) or is down keeps the prediction waiting, then fails it at the maximum queue time', async () => {
    const t0 = Date.now();
    const p = await create(`${REFUSING_MODEL.id}:${REFUSING_MODEL.version}`, { prompt: 'nobody will take this', ...TINY });
    const waiting = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, () => true);
    expect(waiting.status).toBe('starting');
    const final = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, (x) => TERMINAL.includes(x.status), 40_000);
    expect(final.status).toBe('failed');
    expect(final.error).toMatch(
      new RegExp(
        `^no GPU became free for this model within the maximum queue time of ${REFUSED_QUEUE_SECONDS} s \\(waited \\d+ s\\)$`,
      ),
    );
    // No internal address reaches the client.
    expect(final.error).not.toMatch(/127\.0\.0\.1|http:/);
    expect(refuser.calls).toBeGreaterThanOrEqual(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(REFUSED_QUEUE_SECONDS * 1000 - 1000);
    timings.allRefuse = Date.now() - t0;
  });

  it('a runner frozen (SIGSTOP) past its lease: the other runner completes the prediction once; the frozen one is fenced and refused', async () => {
    const t0 = Date.now();
    const { p, holder, other } = await longRunning('a runner that freezes');
    holder.process.signal('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await expect.poll(() => runnerStarts(other, `${p.id}-a1`), { timeout: 30_000, interval: 200 }).toBe(1);
    } finally {
      holder.process.signal('SIGCONT');
    }
    // Taken back after the lease TTL, not before.
    const retaken = other.logRecords().find((r) => r.msg === 'prediction started' && r.prediction_id === `${p.id}-a1`);
    expect(Date.parse(String(retaken?.time)) - stoppedAt).toBeGreaterThanOrEqual(LEASE_TTL_SECONDS * 1000 - 1000);
    const final = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, (x) => TERMINAL.includes(x.status), 120_000);
    expect(final.status, final.error ?? '').toBe('succeeded');
    expect(final.output?.[0]).toContain(`/predictions/${p.id}-a1/0.png`);
    // The thawed runner learns its lease is gone and stops: it never finishes or stores its attempt.
    await expect
      .poll(() => holder.logRecords().some((r) => r.prediction_id === p.id && /canceling/.test(String(r.msg))), {
        timeout: 15_000,
      })
      .toBe(true);
    expect(holder.logRecords().some((r) => r.prediction_id === p.id && r.msg === 'prediction succeeded')).toBe(false);
    expect(await storedObjects(stack.s3, p.id)).toEqual([]);
    expect(await storedObjects(stack.s3, `${p.id}-a1`)).toEqual(['0.png']);
    timings.freezeToSucceeded = Date.now() - t0;
  });

  it('the edge restarted with work in line: every queued prediction succeeds, each run once', async () => {
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await create(stack.model.ref, { prompt: `queued across a restart ${i}`, ...TINY })).id);
    // A prediction may finish before the restart: its record is in the first edge's log, so read both.
    const firstEdge = stack.edge;
    await stack.restartEdge();
    const finishedLogs = () => [...edgeLogs(firstEdge), ...edgeLogs(stack.edge)];
    for (const id of ids) {
      const final = await waitForPrediction(stack.edgeUrl, stack.apiKey, id, (x) => TERMINAL.includes(x.status), 120_000);
      expect(final.status, final.error ?? '').toBe('succeeded');
      // It ended once. A run whose report could not reach the edge while it was down may have been run again after
      // its lease ran out (never at the same time); exactly one result is the prediction's. The object commits the
      // state before it queues webhooks and logs, and the line then crosses the edge process's stdout pipe: a client
      // can see "succeeded" first, so wait for the line before counting.
      const finished = () => finishedLogs().filter((r) => r.msg === 'prediction finished' && r.predictionId === id);
      await expect.poll(() => finished().length, { timeout: 10_000, interval: 100 }).toBeGreaterThan(0);
      expect(finished()).toHaveLength(1);
      const starts = stack.runners.reduce((n, r) => n + runnerStarts(r, id) + runnerStarts(r, `${id}-a1`), 0);
      expect(starts).toBeGreaterThanOrEqual(1);
      expect(starts).toBeLessThanOrEqual(2);
    }
    timings.edgeRestart = Date.now() - t0;
  });

  it('a runner SIGKILLed mid-prediction: the other runner completes it once; late and duplicate reports change nothing', async () => {
    const t0 = Date.now();
    const {
      p,
      holder: victim,
      other: survivor,
    } = await longRunning('a runner that will not finish', {
      webhook: hooks.url,
      webhook_events_filter: ['completed'],
    });
    victim.process.signal('SIGKILL');
    const killedAt = Date.now();
    await victim.process.exited;
    const final = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, (x) => TERMINAL.includes(x.status), 120_000);
    timings.killToSucceeded = Date.now() - killedAt;
    expect(final.status, final.error ?? '').toBe('succeeded');
    const [url] = final.output ?? [];
    expect(await imageMetadata(url)).toMatchObject({ width: 256, height: 256, format: 'png' });
    const requeuedId = `${p.id}-a1`;
    expect(runnerStarts(survivor, requeuedId)).toBe(1);
    expect(runnerStarts(survivor, p.id)).toBe(0);
    expect(await storedObjects(stack.s3, p.id)).toEqual([]);
    expect(await storedObjects(stack.s3, requeuedId)).toEqual(['0.png']);
    // The seed the edge chose at create is kept across the requeue.
    expect(final.metrics.seed).toBe(p.input.seed);

    // A late completion from the dead attempt and a redelivered one of the live attempt change nothing.
    const envelope = {
      id: p.id,
      status: 'succeeded',
      input: {},
      output: ['http://127.0.0.1:1/from-the-dead-attempt.png'],
      error: null,
      logs: '',
      metrics: {},
      created_at: null,
      started_at: null,
      completed_at: new Date().toISOString(),
    };
    const late = await runnerWebhook(envelope);
    expect(late.status).toBe(200);
    expect(await late.json()).toMatchObject({ applied: false });
    const again = await runnerWebhook({ ...envelope, id: requeuedId });
    expect(await again.json()).toMatchObject({ applied: false });
    const after = await waitForPrediction(stack.edgeUrl, stack.apiKey, p.id, () => true);
    expect(after.output).toEqual(final.output);
    // One completion: one finished transition on the edge, one completed webhook to the client.
    expect(edgeLogs(stack.edge).filter((r) => r.msg === 'prediction finished' && r.predictionId === p.id)).toHaveLength(1);
    const completed = await hooks.waitFor(p.id, (w) => w.body.status === 'succeeded', 10_000);
    expect(completed.body.output).toEqual(final.output);
    await new Promise((r) => setTimeout(r, 500));
    expect(hooks.forPrediction(p.id)).toHaveLength(1);
    timings.runnerDies = Date.now() - t0;
  });
});
