// The push path: a lease the ModelQueue took on behalf of a host we do not run (a third-party Cog endpoint, or
// Replicate) is claimed on the prediction and sent there through the model's Backend. The lease holder's webhooks
// are its heartbeats.
import type { EdgeConfig, ModelConfig } from '../config.ts';
import { defaultCache, EmbeddingCache } from '../embeddings/embedding-cache.ts';
import { logger } from '../log.ts';
import { leaseHolder } from './lease-holder.ts';
import { backendFor } from './model-backend.ts';
import type { Lease } from './model-queue.ts';
import { runnerInput } from './runner-job.ts';

export type PushResult = { kind: 'accepted' } | { kind: 'busy'; reason: string } | { kind: 'dropped' };

export async function pushToTarget(
  env: Env,
  config: EdgeConfig,
  model: ModelConfig,
  targetId: string,
  lease: Lease,
): Promise<PushResult> {
  const prediction = leaseHolder(env, lease.predictionId);
  const claim = await prediction.claimLease({ leaseId: lease.leaseId, attempt: lease.attempt, runnerId: targetId });
  if (claim.kind === 'drop') return { kind: 'dropped' };
  const backend = backendFor(config, model);
  const cache = new EmbeddingCache({ kv: env.EMBEDDINGS, cache: defaultCache(), ttlSeconds: config.embeddingTtlSeconds });
  const { input, embeddingCache } = await runnerInput(claim.record, backend, cache);
  const outcome = await backend.push({ predictionId: lease.predictionId, attempt: lease.attempt, target: targetId, input });
  const log = logger({ component: 'dispatch', predictionId: lease.predictionId });
  switch (outcome.kind) {
    case 'accepted':
      await prediction.pushAccepted(lease.leaseId, outcome.remoteId, embeddingCache);
      log.info('pushed', { target: targetId, attempt: lease.attempt, embeddingCache });
      return { kind: 'accepted' };
    case 'rejected':
      // The detail may name the target's address: it goes to the log, the client gets the target's own words.
      log.warn('push target rejected the prediction', { target: targetId, reason: outcome.reason });
      await prediction.fail(`the model host rejected the input${outcome.detail ? `: ${outcome.detail}` : ''}`);
      return { kind: 'dropped' };
    case 'busy':
      return { kind: 'busy', reason: outcome.reason };
  }
}
