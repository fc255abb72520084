// POST /internal/runner-webhook: a runner's (or Replicate's) progress and result. The signature is verified over the
// exact body BEFORE anything in it is believed; a forged or stale call changes nothing.
import { errorBody } from '@sd/shared/schemas/errors';
import { RunnerPredictionSchema } from '@sd/shared/schemas/runner';
import { verifyWebhook } from '@sd/shared/webhook-signature';
import type { Hono } from 'hono';
import { invalidFromZod, invalidInput } from '../errors.ts';
import { predictionStub } from '../predictions/stubs.ts';
import { type AppEnv, configOf, requestLog } from './app-env.ts';
import { readJsonBody } from './json-body.ts';

export function registerRunnerWebhookRoute(app: Hono<AppEnv>): void {
  app.post('/internal/runner-webhook', async (c) => {
    const config = configOf(c);
    const log = requestLog(c, { component: 'runner-webhook' });
    const body = await c.req.text();
    let verdict = await verifyWebhook(config.secrets.runnerWebhookSecret, c.req.raw.headers, body);
    if (!verdict.ok && config.secrets.replicateWebhookSecret) {
      verdict = await verifyWebhook(config.secrets.replicateWebhookSecret, c.req.raw.headers, body);
    }
    if (!verdict.ok) {
      log.warn('runner webhook rejected', { reason: verdict.reason, prediction: c.req.query('prediction') });
      return c.json(errorBody(401, 'unauthorized', `webhook signature rejected: ${verdict.reason}`), 401);
    }
    // The body is already read (and signed); the synthetic request only reuses the size cap and the JSON errors.
    const { json } = await readJsonBody(
      new Request(c.req.url, { method: 'POST', body, headers: { 'content-type': 'application/json' } }),
    );
    const parsed = RunnerPredictionSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const update = parsed.data;
    const predictionId = c.req.query('prediction') ?? update.id;
    if (!/^[a-z0-9]{1,64}$/.test(predictionId))
      throw invalidInput('prediction', `prediction must be a prediction id, got ${JSON.stringify(predictionId)}`);
    const rawGeneration = c.req.query('generation');
    const generation = rawGeneration === undefined ? null : Number(rawGeneration);
    if (generation !== null && !Number.isInteger(generation)) {
      throw invalidInput('generation', `generation must be an integer, got ${JSON.stringify(rawGeneration)}`);
    }
    const result = await predictionStub(c.env, predictionId).runnerUpdate(update, generation);
    log.info('runner webhook', { predictionId, status: update.status, applied: result.applied, reason: result.reason });
    // 200 even when ignored: the runner must stop retrying a delivery that can never apply.
    return c.json({ applied: result.applied, ...(result.reason ? { reason: result.reason } : {}) });
  });
}
