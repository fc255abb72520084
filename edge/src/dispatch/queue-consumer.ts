// The sd-jobs consumer: claims a prediction's current generation, builds the runner input (cached embeddings, or tokens
// with return_embeddings), sends it to one runner of the pool and acts on the answer. Refusals are retried with backoff
// on the next runner; after the retry budget the prediction fails with the last reason and the message goes to the DLQ.
import type { EdgeConfig, ModelConfig } from '../config.ts';
import { EmbeddingCache } from '../embeddings/embedding-cache.ts';
import { errorFields, logger } from '../log.ts';
import type { JobMessage } from '../predictions/prediction-object.ts';
import type { PredictionRecord } from '../predictions/prediction-record.ts';
import { predictionStub } from '../predictions/stubs.ts';
import type { DispatchOutcome, DispatchRequest } from './backend.ts';
import { dispatchToCog } from './cog-backend.ts';
import { dispatchToReplicate } from './replicate-backend.ts';
import { retryDelaySeconds } from './runner-pool.ts';

export interface ConsumerDeps {
  /** Outbound HTTP to runners (global fetch in production). */
  fetch: typeof fetch;
  /** caches.default in production. */
  cache?: Cache;
}

/** How long one consumer holds a prediction's dispatch before another may try. */
const LEASE_MS = 60_000;

function isJobMessage(body: unknown): body is JobMessage {
  const b = body as Partial<JobMessage> | null;
  return typeof b?.predictionId === 'string' && typeof b.generation === 'number';
}

export function webhookUrlFor(config: EdgeConfig, predictionId: string, generation: number): string {
  return `${config.publicBaseUrl}/internal/runner-webhook?prediction=${encodeURIComponent(predictionId)}&generation=${generation}`;
}

/** The runner input: the public input plus either the cached conditioning or the tokens to encode (and return). */
async function runnerInput(
  record: PredictionRecord,
  model: ModelConfig,
  cache: EmbeddingCache,
): Promise<{ input: Record<string, unknown>; embeddingCache: 'hit' | 'miss' | null }> {
  const { tokens, cacheKeys } = record.job;
  if (model.backend !== 'cog' || !tokens || !cacheKeys) return { input: { ...record.input }, embeddingCache: null };
  const embeddings = await cache.getPair(cacheKeys);
  if (embeddings) return { input: { ...record.input, embeddings }, embeddingCache: 'hit' };
  return {
    input: { ...record.input, prompt_tokens: tokens.prompt, negative_prompt_tokens: tokens.negative, return_embeddings: true },
    embeddingCache: 'miss',
  };
}

async function dispatch(config: EdgeConfig, request: DispatchRequest, deps: ConsumerDeps): Promise<DispatchOutcome> {
  if (request.model.backend === 'replicate') {
    const token = config.secrets.replicateApiToken;
    if (!token)
      return {
        kind: 'rejected',
        runner: 'replicate',
        reason: 'REPLICATE_API_TOKEN is not set for a model with backend "replicate"',
      };
    return dispatchToReplicate(request, { token, fetch: deps.fetch });
  }
  return dispatchToCog(request, {
    token: config.secrets.runnerToken,
    timeoutMs: config.dispatch.requestTimeoutMs,
    fetch: deps.fetch,
  });
}

export async function consumeJob(message: Message<unknown>, env: Env, config: EdgeConfig, deps: ConsumerDeps): Promise<void> {
  const log = logger({ component: 'dispatch' });
  if (!isJobMessage(message.body)) {
    log.error('dropping a malformed job message', { body: JSON.stringify(message.body)?.slice(0, 200) });
    message.ack();
    return;
  }
  const { predictionId, generation } = message.body;
  const plog = log.with({ predictionId, generation, attempt: message.attempts });
  const stub = predictionStub(env, predictionId);
  const claim = await stub.claimDispatch(generation, LEASE_MS);
  if (claim.kind === 'skip') {
    plog.info('job skipped', { reason: claim.reason });
    message.ack();
    return;
  }
  if (claim.kind === 'busy') {
    message.retry({ delaySeconds: claim.retryAfterSeconds });
    return;
  }
  const record = claim.record;
  const model = config.models.find((m) => m.id === record.model && m.version === record.version);
  if (!model) {
    await stub.fail(`model ${record.model}:${record.version} is no longer configured on this edge`);
    message.ack();
    return;
  }
  const cache = new EmbeddingCache({ kv: env.EMBEDDINGS, cache: deps.cache, ttlSeconds: config.embeddingTtlSeconds });
  const { input, embeddingCache } = await runnerInput(record, model, cache);
  const outcome = await dispatch(
    config,
    {
      predictionId,
      model,
      input,
      webhookUrl: webhookUrlFor(config, predictionId, generation),
      attempt: message.attempts,
      generation,
      avoid: record.dispatch.silentRunners,
    },
    deps,
  );

  switch (outcome.kind) {
    case 'accepted':
      await stub.dispatchAccepted(generation, outcome.runner, outcome.remoteId, embeddingCache);
      message.ack();
      return;
    case 'rejected':
      plog.warn('runner rejected the prediction', { runner: outcome.runner, reason: outcome.reason });
      await stub.fail(`the runner rejected the prediction: ${outcome.reason}`);
      message.ack();
      return;
    case 'busy':
      if (message.attempts > config.dispatch.maxRetries) {
        plog.error('dispatch budget spent', { reason: outcome.reason });
        await stub.fail(`no runner accepted the prediction after ${message.attempts} attempts; last: ${outcome.reason}`);
        // Retrying past max_retries hands the message to the dead-letter queue, where it stays visible to operators.
        message.retry();
        return;
      }
      plog.warn('runner refused; retrying', { runner: outcome.runner, reason: outcome.reason });
      await stub.dispatchRefused(generation, outcome.reason);
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      return;
  }
}

export async function consumeJobs(batch: MessageBatch<unknown>, env: Env, config: EdgeConfig, deps: ConsumerDeps): Promise<void> {
  for (const message of batch.messages) {
    try {
      await consumeJob(message, env, config, deps);
    } catch (err) {
      logger({ component: 'dispatch' }).error('dispatch crashed; retrying', errorFields(err));
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    }
  }
}

/** sd-jobs-dlq: a message that spent its retries; its prediction must end failed if nothing else ended it. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    if (isJobMessage(message.body)) {
      const stub = predictionStub(env, message.body.predictionId);
      const record = await stub.get();
      const reason = record?.dispatch.lastError ? `; last: ${record.dispatch.lastError}` : '';
      await stub.fail(`no runner accepted the prediction before the queue gave up${reason}`);
      logger({ component: 'dispatch', predictionId: message.body.predictionId }).error('job dead-lettered', {
        status: record?.status,
      });
    }
    message.ack();
  }
}
