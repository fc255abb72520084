// What a runner is given for a lease: the Cog prediction request (id, input, webhook) built from the record: the public
// input plus either the cached text embeddings (the runner skips its text encoder) or the token ids to encode and return.
import type { EmbeddingCache } from '../embeddings/embedding-cache.ts';
import type { Backend } from './backend.ts';
import type { LeasedJob } from './lease-holder.ts';

/**
 * The id a runner knows a prediction by: ours on the first lease, "<id>-a<attempt>" after a requeue. A Cog runner's PUT
 * is idempotent by id, so reusing the id would hand back the abandoned attempt instead of running it again; and the id,
 * which the runner's signed envelope carries, names the prediction and the attempt without trusting a query string.
 */
export function runnerPredictionId(predictionId: string, attempt: number): string {
  return attempt === 0 ? predictionId : `${predictionId}-a${attempt}`;
}

/** The inverse of runnerPredictionId, or null for an id we did not make. */
export function parseRunnerPredictionId(id: string): { predictionId: string; attempt: number } | null {
  const m = /^([a-z0-9]{1,64}?)(?:-a([1-9][0-9]{0,5}))?$/.exec(id);
  if (!m) return null;
  return { predictionId: m[1], attempt: m[2] ? Number(m[2]) : 0 };
}

export async function runnerInput(
  record: LeasedJob,
  backend: Backend,
  cache: EmbeddingCache,
): Promise<{ input: Record<string, unknown>; embeddingCache: 'hit' | 'miss' | null }> {
  const { tokens, cacheKeys } = record.job;
  if (!backend.tokenizesAtEdge || !tokens || !cacheKeys) return { input: { ...record.input }, embeddingCache: null };
  const embeddings = await cache.getPair(cacheKeys);
  if (embeddings) return { input: { ...record.input, embeddings }, embeddingCache: 'hit' };
  return {
    input: { ...record.input, prompt_tokens: tokens.prompt, negative_prompt_tokens: tokens.negative, return_embeddings: true },
    embeddingCache: 'miss',
  };
}
