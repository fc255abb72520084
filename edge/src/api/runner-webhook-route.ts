// POST /internal/runner-webhook: a push target's (a Cog host we do not run, or Replicate's) progress and result. The
// signature is verified over the exact body BEFORE anything in it is believed, and the body of an unauthenticated
// sender is capped small until then. The signed envelope's id names the prediction and attempt (Cog); Replicate's
// envelope carries its own id, so its webhook URL holds the prediction and attempt under the edge's own MAC.

import { invalidFromZod, invalidInput } from '@sd/shared/domain-error';
import { errorBody } from '@sd/shared/schemas/errors';
import { RunnerPredictionSchema } from '@sd/shared/schemas/runner';
import { verifyWebhook } from '@sd/shared/webhook-signature';
import type { Hono } from 'hono';
import { verifyPushWebhookMac } from '../dispatch/push-webhook-url.ts';
import { parseRunnerPredictionId } from '../dispatch/runner-job.ts';
import { predictionStub } from '../predictions/stubs.ts';
import { type AppEnv, configOf, requestLog } from './app-env.ts';
import { MAX_BODY_BYTES, readCappedText } from './json-body.ts';
import { hasBearer } from './runner-routes.ts';

/** Before its signature is checked, a body from a sender without the runner bearer token may be at most this big. */
export const UNAUTHENTICATED_WEBHOOK_BYTES = 1024 * 1024;

export function registerRunnerWebhookRoute(app: Hono<AppEnv>): void {
  app.post('/internal/runner-webhook', async (c) => {
    const config = configOf(c);
    const log = requestLog(c, { component: 'runner-webhook' });
    // Our own runners also send the bearer token (WEBHOOK_TOKEN); only they may send big bodies (embeddings, data URLs).
    const trusted = hasBearer(c.req.header('authorization'), config.secrets.runnerToken);
    const body = await readCappedText(c.req.raw, trusted ? MAX_BODY_BYTES : UNAUTHENTICATED_WEBHOOK_BYTES);
    let verdict = await verifyWebhook(config.secrets.runnerWebhookSecret, c.req.raw.headers, body);
    let fromReplicate = false;
    if (!verdict.ok && config.secrets.replicateWebhookSecret) {
      verdict = await verifyWebhook(config.secrets.replicateWebhookSecret, c.req.raw.headers, body);
      fromReplicate = verdict.ok;
    }
    if (!verdict.ok) {
      log.warn('runner webhook rejected', { reason: verdict.reason });
      return c.json(errorBody(401, 'unauthorized', `webhook signature rejected: ${verdict.reason}`), 401);
    }
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw invalidInput('(body)', 'body must be JSON');
    }
    const parsed = RunnerPredictionSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const update = parsed.data;
    let target = parseRunnerPredictionId(update.id);
    const queryPrediction = c.req.query('prediction');
    if (queryPrediction !== undefined) {
      // Only Replicate-style webhooks carry the prediction in the URL, and only under the edge's MAC.
      const attempt = Number(c.req.query('attempt'));
      const mac = c.req.query('mac') ?? '';
      const ok =
        /^[a-z0-9]{1,64}$/.test(queryPrediction) &&
        Number.isInteger(attempt) &&
        (await verifyPushWebhookMac(config.secrets.runnerWebhookSecret, queryPrediction, attempt, mac));
      if (!ok) return c.json(errorBody(401, 'unauthorized', 'webhook URL was not issued by this edge'), 401);
      target = { predictionId: queryPrediction, attempt };
    } else if (fromReplicate) {
      throw invalidInput('prediction', 'a Replicate webhook must use the URL this edge issued');
    }
    if (!target) throw invalidInput('id', `id must be a prediction id this edge handed out, got ${JSON.stringify(update.id)}`);
    const result = await predictionStub(c.env, target.predictionId).runnerReport({ attempt: target.attempt }, update);
    log.info('runner webhook', {
      predictionId: target.predictionId,
      status: update.status,
      applied: result.applied,
      reason: result.reason,
    });
    // 200 even when ignored: the sender must stop retrying a delivery that can never apply.
    return c.json({ applied: result.applied, ...(result.reason ? { reason: result.reason } : {}) });
  });
}
