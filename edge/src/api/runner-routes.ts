// The pull API for GPU runners, outside /v1 (no API keys; the runner credential is RUNNER_TOKEN):
//   POST /runner/v1/leases                        long-poll for the next prediction of a model
//   POST /runner/v1/leases/{lease}/heartbeat      keep the lease (the answer says stop when it is gone)
//   POST /runner/v1/leases/{lease}/report         the runner's Cog envelope (its webhook sender posts here)
//   POST /runner/v1/leases/{lease}/release        give a lease back unrun (the runner cannot take it after all), or,
//                                                 with {"refused": {"message"}}, refuse its input for good (the
//                                                 runner's 422): the prediction fails with that message
// The credential is checked before any body is read; a report is believed only under the prediction's current lease.

import { invalidFromZod, invalidInput } from '@sd/shared/domain-error';
import { errorBody } from '@sd/shared/schemas/errors';
import { RunnerPredictionSchema } from '@sd/shared/schemas/runner';
import { timingSafeEqual } from '@sd/shared/webhook-signature';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { type ModelConfig, resolveModel } from '../config.ts';
import { backendFor } from '../dispatch/model-backend.ts';
import type { Lease } from '../dispatch/model-queue.ts';
import { poolOf, queueStub } from '../dispatch/queue-stub.ts';
import { parseRunnerPredictionId, runnerInput, runnerPredictionId } from '../dispatch/runner-job.ts';
import { defaultCache, EmbeddingCache } from '../embeddings/embedding-cache.ts';
import { predictionStub } from '../predictions/stubs.ts';
import { type AppEnv, configOf, requestLog } from './app-env.ts';
import { MAX_BODY_BYTES, readJsonBody } from './json-body.ts';

/** Small requests (lease, heartbeat) never need more. */
const SMALL_BODY_BYTES = 16 * 1024;
const MAX_WAIT_MS = 25_000;
const LEASE_ID = /^lease_[0-9a-f]{32}$/;

const LeaseRequestSchema = z.strictObject({
  runner_id: z.string().regex(/^[\w.:-]{1,128}$/, 'runner_id must be 1 to 128 letters, digits or _ . : -'),
  /** "owner/name:version" (or "owner/name" when only one version is configured). */
  model: z.string().min(1).max(300),
  slots: z.number().int().min(1).max(64).default(1),
  wait_ms: z.number().int().min(0).max(MAX_WAIT_MS).default(20_000),
});

const ReleaseRequestSchema = z.strictObject({
  /** The runner refused the input itself (its 422: a limit of the loaded model the edge cannot know). */
  refused: z.strictObject({ message: z.string().min(1).max(2000) }).optional(),
});

const HeartbeatRequestSchema = z.strictObject({
  runner_id: z.string().min(1).max(128),
  slots: z.number().int().min(1).max(64).default(1),
});

function unauthorized(c: Context) {
  return c.json(errorBody(401, 'unauthorized', 'runner credential refused: send Authorization: Bearer <RUNNER_TOKEN>'), 401);
}

/** True when the request carries `Bearer <token>`. Constant-time, and before anything reads the body. */
export function hasBearer(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(m[1], token);
}

async function handOver(c: Context<AppEnv>, model: ModelConfig, lease: Lease) {
  const config = configOf(c);
  const claim = await predictionStub(c.env, lease.predictionId).claimLease({
    leaseId: lease.leaseId,
    attempt: lease.attempt,
    runnerId: lease.runnerId,
  });
  if (claim.kind === 'drop') return null;
  const cache = new EmbeddingCache({ kv: c.env.EMBEDDINGS, cache: defaultCache(), ttlSeconds: config.embeddingTtlSeconds });
  const { input } = await runnerInput(claim.record, backendFor(config, model), cache);
  const base = `${config.publicBaseUrl}/runner/v1/leases/${lease.leaseId}`;
  // The pool names the line that holds the lease (one Durable Object per model); the lease id is the capability.
  const pool = `?pool=${encodeURIComponent(poolOf(model))}`;
  return {
    lease_id: lease.leaseId,
    attempt: lease.attempt,
    lease_ttl_ms: lease.ttlMs,
    heartbeat_ms: lease.heartbeatMs,
    fence_ms: lease.fenceMs,
    heartbeat_url: `${base}/heartbeat${pool}`,
    release_url: `${base}/release${pool}`,
    prediction: {
      id: runnerPredictionId(lease.predictionId, lease.attempt),
      input,
      webhook: `${base}/report${pool}`,
      webhook_events_filter: ['start', 'output', 'logs', 'completed'],
    },
  };
}

export function registerRunnerRoutes(app: Hono<AppEnv>): void {
  app.post('/runner/v1/leases', async (c) => {
    const config = configOf(c);
    if (!hasBearer(c.req.header('authorization'), config.secrets.runnerToken)) return unauthorized(c);
    const { json } = await readJsonBody(c.req.raw, SMALL_BODY_BYTES);
    const parsed = LeaseRequestSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const req = parsed.data;
    const model = resolveModel(config, req.model);
    if (!model || !backendFor(config, model).pullable) {
      const known = config.models.filter((m) => backendFor(config, m).pullable).map((m) => `${m.id}:${m.version}`);
      throw invalidInput('model', `model must be a configured cog model (${known.join(', ')}), got ${JSON.stringify(req.model)}`);
    }
    const pool = poolOf(model);
    const queue = queueStub(c.env, pool);
    const deadline = Date.now() + req.wait_ms;
    // A lease whose prediction ended meanwhile (canceled in line) is dropped and the next one taken.
    for (;;) {
      const lease = await queue.lease(pool, req.runner_id, req.slots, Math.max(0, deadline - Date.now()));
      if (!lease) return c.body(null, 204);
      const job = await handOver(c, model, lease);
      if (job) {
        requestLog(c, { component: 'runner-api' }).info('leased', { predictionId: lease.predictionId, runner: req.runner_id });
        return c.json(job, 200);
      }
      await queue.remove(lease.predictionId);
    }
  });

  app.post('/runner/v1/leases/:lease/heartbeat', async (c) => {
    const config = configOf(c);
    if (!hasBearer(c.req.header('authorization'), config.secrets.runnerToken)) return unauthorized(c);
    const leaseId = c.req.param('lease');
    if (!LEASE_ID.test(leaseId)) throw invalidInput('lease', 'lease must be a lease id from POST /runner/v1/leases');
    const { json } = await readJsonBody(c.req.raw, SMALL_BODY_BYTES);
    const parsed = HeartbeatRequestSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const pool = c.req.query('pool');
    const model = pool ? resolveModel(config, pool) : null;
    if (!model) throw invalidInput('pool', 'pool must name the model of the lease (the heartbeat_url carries it)');
    const beat = await queueStub(c.env, poolOf(model)).heartbeat(leaseId, parsed.data.runner_id, parsed.data.slots);
    if (!beat.ok) return c.json({ ok: false, stop: true, reason: 'the lease is gone: stop this prediction' }, 409);
    return c.json({ ok: true, stop: false });
  });

  app.post('/runner/v1/leases/:lease/release', async (c) => {
    const config = configOf(c);
    if (!hasBearer(c.req.header('authorization'), config.secrets.runnerToken)) return unauthorized(c);
    const leaseId = c.req.param('lease');
    if (!LEASE_ID.test(leaseId)) throw invalidInput('lease', 'lease must be a lease id from POST /runner/v1/leases');
    const pool = c.req.query('pool');
    const model = pool ? resolveModel(config, pool) : null;
    if (!model) throw invalidInput('pool', 'pool must name the model of the lease (the release_url carries it)');
    const { json } = await readJsonBody(c.req.raw, SMALL_BODY_BYTES);
    const parsed = ReleaseRequestSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const queue = queueStub(c.env, poolOf(model));
    if (parsed.data.refused) await queue.refuse(leaseId, parsed.data.refused.message);
    else await queue.release(leaseId);
    return c.json({ ok: true });
  });

  app.post('/runner/v1/leases/:lease/report', async (c) => {
    const config = configOf(c);
    if (!hasBearer(c.req.header('authorization'), config.secrets.runnerToken)) return unauthorized(c);
    const leaseId = c.req.param('lease');
    if (!LEASE_ID.test(leaseId)) throw invalidInput('lease', 'lease must be a lease id from POST /runner/v1/leases');
    const { json } = await readJsonBody(c.req.raw, MAX_BODY_BYTES);
    const parsed = RunnerPredictionSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const update = parsed.data;
    const ids = parseRunnerPredictionId(update.id);
    if (!ids) throw invalidInput('id', `id must be a prediction id this edge handed out, got ${JSON.stringify(update.id)}`);
    const result = await predictionStub(c.env, ids.predictionId).runnerReport({ leaseId }, update);
    if (result.applied && !result.stop) {
      // A report is a heartbeat too.
      const pool = c.req.query('pool');
      const model = pool ? resolveModel(config, pool) : null;
      if (model) await queueStub(c.env, poolOf(model)).heartbeat(leaseId, null);
    }
    requestLog(c, { component: 'runner-api' }).debug('report', {
      predictionId: ids.predictionId,
      status: update.status,
      applied: result.applied,
      reason: result.reason,
    });
    // 200 even when refused: the sender must stop retrying a report that can never apply.
    return c.json(result);
  });
}
