// The push path: a lease the ModelQueue took on behalf of a host we do not run (a third-party Cog endpoint, or
// Replicate) is sent there with a webhook back to the edge. The lease holder's webhooks are its heartbeats.
import { timingSafeEqual } from '@sd/shared/webhook-signature';
import { defaultCache } from '../api/app-env.ts';
import type { EdgeConfig, ModelConfig } from '../config.ts';
import { EmbeddingCache } from '../embeddings/embedding-cache.ts';
import { logger } from '../log.ts';
import { predictionStub } from '../predictions/stubs.ts';
import type { DispatchOutcome } from './backend.ts';
import { dispatchToCog } from './cog-backend.ts';
import type { Lease } from './model-queue.ts';
import { dispatchToReplicate } from './replicate-backend.ts';
import { runnerInput, runnerPredictionId } from './runner-job.ts';

async function urlMac(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(text)));
  return Array.from(sig.slice(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Checks the MAC of a Replicate webhook URL's prediction and attempt. */
export async function verifyPushWebhookMac(secret: string, predictionId: string, attempt: number, mac: string): Promise<boolean> {
  const expected = await urlMac(secret, `replicate:${predictionId}:${attempt}`);
  return timingSafeEqual(expected, mac);
}

export type PushResult = { kind: 'accepted' } | { kind: 'busy'; reason: string } | { kind: 'dropped' };

/**
 * The webhook a push target reports to. A Cog runner's signed envelope id names the prediction and attempt; Replicate's
 * envelope carries its own id, so for it the edge signs the prediction and attempt into the URL itself.
 */
export async function pushWebhookUrl(
  config: EdgeConfig,
  predictionId: string,
  attempt: number,
  replicate: boolean,
): Promise<string> {
  const base = `${config.publicBaseUrl}/internal/runner-webhook`;
  if (!replicate) return base;
  const mac = await urlMac(config.secrets.runnerWebhookSecret, `replicate:${predictionId}:${attempt}`);
  return `${base}?prediction=${predictionId}&attempt=${attempt}&mac=${mac}`;
}

export async function pushToTarget(
  env: Env,
  config: EdgeConfig,
  model: ModelConfig,
  targetId: string,
  lease: Lease,
): Promise<PushResult> {
  const stub = predictionStub(env, lease.predictionId);
  const claim = await stub.claimLease({ leaseId: lease.leaseId, attempt: lease.attempt, runnerId: targetId });
  if (claim.kind === 'drop') return { kind: 'dropped' };
  const cache = new EmbeddingCache({ kv: env.EMBEDDINGS, cache: defaultCache(), ttlSeconds: config.embeddingTtlSeconds });
  const { input, embeddingCache } = await runnerInput(claim.record, model, cache);
  const replicate = model.backend === 'replicate';
  const request = {
    predictionId: lease.predictionId,
    remoteId: runnerPredictionId(lease.predictionId, lease.attempt),
    target: targetId,
    model,
    input,
    webhookUrl: await pushWebhookUrl(config, lease.predictionId, lease.attempt, replicate),
  };
  let outcome: DispatchOutcome;
  if (replicate) {
    const token = config.secrets.replicateApiToken;
    outcome = token
      ? await dispatchToReplicate(request, { token, fetch: (i, init) => fetch(i, init) })
      : { kind: 'rejected', reason: 'REPLICATE_API_TOKEN is not set for a model with backend "replicate"' };
  } else {
    outcome = await dispatchToCog(request, {
      token: config.secrets.runnerToken,
      timeoutMs: config.dispatch.requestTimeoutMs,
      fetch: (i, init) => fetch(i, init),
    });
  }
  const log = logger({ component: 'dispatch', predictionId: lease.predictionId });
  switch (outcome.kind) {
    case 'accepted':
      await stub.pushAccepted(lease.leaseId, outcome.remoteId, embeddingCache);
      log.info('pushed', { target: targetId, attempt: lease.attempt, embeddingCache });
      return { kind: 'accepted' };
    case 'rejected':
      // The detail may name the target's address: it goes to the log, the client gets the target's own words.
      log.warn('push target rejected the prediction', { target: targetId, reason: outcome.reason });
      await stub.fail(`the model host rejected the input${outcome.detail ? `: ${outcome.detail}` : ''}`);
      return { kind: 'dropped' };
    case 'busy':
      return { kind: 'busy', reason: outcome.reason };
  }
}
