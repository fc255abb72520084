// The per-key in-flight cap around a prediction's life: a slot is taken before anything is queued and released by the
// PredictionObject when the prediction ends. (The per-key request rate is the rateLimit() middleware's job.)
import type { Principal } from './auth/principal.ts';
import { releaseInFlight } from './limits/key-limiter.ts';
import { inFlightSlot } from './limits/rate-limit/index.ts';

export interface Admission {
  /** Throws 429 (Retry-After) when the key already has its cap of predictions in flight. */
  acquireInFlight(env: Env, principal: Principal, predictionId: string): Promise<void>;
  releaseInFlight(env: Env, keyId: string, predictionId: string): Promise<void>;
}

export const keyLimiterAdmission: Admission = {
  async acquireInFlight(env, principal, predictionId) {
    await inFlightSlot(env, principal, predictionId);
  },
  async releaseInFlight(env, keyId, predictionId) {
    await releaseInFlight(env, keyId, predictionId);
  },
};

export function admission(): Admission {
  return keyLimiterAdmission;
}
