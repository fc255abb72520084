// Runs one prediction to its end for the synchronous surfaces (OpenAI images, AUTOMATIC1111): create it through the
// same machinery as POST /v1/predictions (auth, limits, validation, cache, queue), wait on its Durable Object, and
// turn failure, cancel and timeout into errors.

import { DomainError } from '@sd/shared/domain-error';
import type { ErrorIssue } from '@sd/shared/schemas/errors';
import type { ModelConfig } from '../config.ts';
import { defaultCache } from '../embeddings/embedding-cache.ts';
import { createPrediction, idempotencyOf } from '../predictions/create-prediction.ts';
import type { PredictionRecord } from '../predictions/prediction-record.ts';
import { predictionStub } from '../predictions/stubs.ts';
import { type AppContext, configOf, requestLog } from './app-env.ts';
import { callerOf } from './caller.ts';

/** OpenAI's client waits up to 10 minutes by default; AUTOMATIC1111 clients wait as long as the render takes. */
export const SYNC_WAIT_MS = 300_000;

export interface SyncRun {
  model: ModelConfig;
  input: Record<string, unknown>;
  /** Idempotency-Key header and the raw body it is bound to, when the surface honours one. */
  idempotency?: { key: string | undefined; bodyText: string };
  /** Rewrites validation issues into the caller's field names. */
  rename?: (issue: ErrorIssue) => ErrorIssue;
  waitMs?: number;
}

function renamed(err: DomainError, rename: (issue: ErrorIssue) => ErrorIssue): DomainError {
  if (!err.issues) return err;
  const issues = err.issues.map(rename);
  return new DomainError(err.code, issues.map((i) => i.message).join('; '), issues, err.headers);
}

/** Creates the prediction and waits; resolves with the succeeded record. */
export async function runPredictionToEnd(c: AppContext, run: SyncRun): Promise<PredictionRecord> {
  const config = configOf(c);
  const principal = callerOf(c);
  const waitMs = run.waitMs ?? SYNC_WAIT_MS;
  let record: PredictionRecord;
  try {
    ({ record } = await createPrediction(
      { env: c.env, config, principal, log: requestLog(c, { keyId: principal.keyId }), cache: defaultCache() },
      {
        model: run.model,
        body: { input: run.input },
        idempotency: run.idempotency ? await idempotencyOf(run.idempotency.key, run.idempotency.bodyText) : null,
        source: principal.kind === 'secret' ? 'api' : 'web',
      },
    ));
  } catch (err) {
    throw err instanceof DomainError && run.rename ? renamed(err, run.rename) : err;
  }
  const done = (await predictionStub(c.env, record.id).waitForCompletion(waitMs)) ?? record;
  if (done.status === 'failed')
    throw new DomainError('upstream_failed', `image generation ${done.id} failed: ${done.error ?? 'unknown error'}`);
  if (done.status === 'canceled') throw new DomainError('upstream_failed', `image generation ${done.id} was canceled`);
  if (done.status !== 'succeeded') {
    throw new DomainError(
      'timeout',
      `image generation ${done.id} did not finish in ${waitMs / 1000}s; poll GET /v1/predictions/${done.id}`,
    );
  }
  return done;
}
