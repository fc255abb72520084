// What the line asks of a prediction it leases out, as dispatch sees it: the port the PredictionObject implements.
// The line never imports the prediction's own code: it reaches the object through this interface only.
import type { CacheKeys } from '../embeddings/embedding-cache.ts';
import type { PromptPair } from '../embeddings/prompt-tokens.ts';

export interface LeaseGrant {
  leaseId: string;
  attempt: number;
  runnerId: string;
}

/**
 * What the edge prepared for a prediction's runner beside its public input: the conditioning (token ids, cache keys) and
 * the caller's pixel budget (maxPixels, absent in records made before it was kept), which an output sized from its
 * input image must fit.
 */
export interface JobPlan {
  tokens: PromptPair | null;
  cacheKeys: CacheKeys | null;
  maxPixels?: number;
}

/** What a runner's job is built from: the prediction's input and the edge's plan for it. */
export interface LeasedJob {
  id: string;
  input: Record<string, unknown>;
  job: JobPlan;
}

export type LeaseClaim = { kind: 'run'; record: LeasedJob } | { kind: 'drop'; reason: string };

export interface LeaseHolder {
  /** The line handed the prediction to `grant.runnerId`; 'drop' when it ended or another lease is current. */
  claimLease(grant: LeaseGrant): Promise<LeaseClaim>;
  /** A push target took it (its remote id; whether the job carried cached embeddings). */
  pushAccepted(leaseId: string, remoteId: string | null, embeddingCache: 'hit' | 'miss' | null): Promise<void>;
  /** The holder gave it back unrun. */
  leaseReleased(leaseId: string): Promise<void>;
  /** The holder went silent: requeue it, or drop it (it ended, or its requeues are spent). */
  leaseLost(leaseId: string): Promise<'requeue' | 'drop'>;
  /** It cannot run (no GPU within the queue time, the host refused the input). */
  fail(error: string): Promise<unknown>;
}

/** The PredictionObject of a prediction, as the line talks to it. */
export function leaseHolder(env: Env, predictionId: string): LeaseHolder {
  // Cast: the Rpc type mapping turns records with `unknown`-typed JSON fields into never, although the values are
  // plain JSON and cross RPC intact; the PredictionObject declares `implements LeaseHolder`, which is the check.
  return env.PREDICTIONS.get(env.PREDICTIONS.idFromName(predictionId)) as unknown as LeaseHolder;
}
