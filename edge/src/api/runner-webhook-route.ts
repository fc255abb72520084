// POST /internal/runner-webhook: a push target's (a Cog host we do not run, or Replicate's) progress and result. The
// signature is verified over the exact body BEFORE anything in it is believed, and the body of an unauthenticated
// sender is capped small until then. The webhook URL holds the prediction and attempt under the edge's own MAC (one
// URL per push), so a push target can report only on what it was handed.

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
    // Our runners and Cog hosts keep the id the edge gave (it names the prediction and attempt); Replicate has its own.
    const named = fromReplicate ? null : parseRunnerPredictionId(update.id);
    if (!fromReplicate && !named) {
      throw invalidInput('id', `id must be a prediction id this edge handed out, got ${JSON.stringify(update.id)}`);
    }
    // The URL names the push (prediction and attempt) under the edge's MAC: the signature says a push target sent
    // it, the URL which push it may report on, and the envelope must name that same push.
    const predictionId = c.req.query('prediction') ?? '';
    const attempt = Number(c.req.query('attempt'));
    const urlOk =
      /^[a-z0-9]{1,64}$/.test(predictionId) &&
      Number.isInteger(attempt) &&
      attempt >= 0 &&
      (await verifyPushWebhookMac(config.secrets.runnerWebhookSecret, predictionId, attempt, c.req.query('mac') ?? ''));
    if (!urlOk) return c.json(errorBody(401, 'unauthorized', 'webhook URL was not issued by this edge'), 401);
    if (named && (named.predictionId !== predictionId || named.attempt !== attempt)) {
      log.warn('runner webhook names another push than its URL', { predictionId, attempt, id: update.id });
      return c.json(errorBody(401, 'unauthorized', 'webhook envelope id does not match the push its URL was issued for'), 401);
    }
    const target = { predictionId, attempt };
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
