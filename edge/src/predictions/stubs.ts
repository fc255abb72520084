// Addressing the predictions' Durable Objects: one PredictionObject per prediction id, one PredictionIndex per API key
// (a model's line is dispatch/queue-stub.ts).
import type { PredictionIndex } from './prediction-index.ts';
import type { PredictionObject } from './prediction-object.ts';

type Methods<T, K extends keyof T> = Pick<T, K> & { fetch(input: string | Request, init?: RequestInit): Promise<Response> };

/** The PredictionObject's RPC surface. */
export type PredictionStub = Methods<
  PredictionObject,
  | 'create'
  | 'get'
  | 'claimLease'
  | 'pushAccepted'
  | 'leaseLost'
  | 'leaseReleased'
  | 'fail'
  | 'cancel'
  | 'runnerReport'
  | 'waitForCompletion'
>;
export type IndexStub = Methods<PredictionIndex, 'claimIdempotencyKey' | 'releaseIdempotencyKey' | 'add' | 'list'>;

export function predictionStub(env: Env, predictionId: string): PredictionStub {
  const stub = env.PREDICTIONS.get(env.PREDICTIONS.idFromName(predictionId));
  // Cast: the Rpc type mapping turns records with `unknown`-typed JSON fields (input, metrics) into never, although the
  // values are plain JSON and cross RPC intact; the methods' own signatures are the truth.
  return stub as unknown as PredictionStub;
}

export function indexStub(env: Env, keyId: string): IndexStub {
  return env.PREDICTION_INDEX.get(env.PREDICTION_INDEX.idFromName(keyId)) as unknown as IndexStub;
}

/** Replicate-style ids: 26 lowercase base32 characters (130 random bits), safe in URLs and Cog's id pattern. */
export function newPredictionId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = crypto.getRandomValues(new Uint8Array(26));
  let out = '';
  for (const b of bytes) out += alphabet[b & 31];
  return out;
}
