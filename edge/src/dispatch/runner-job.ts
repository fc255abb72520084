// What a runner is given for a lease: the Cog prediction request (id, input, webhook) built from the record: the public
// input plus either the cached text embeddings (the runner skips its text encoder) or the token ids to encode and return,
// and the caller's pixel budget where the runner sizes the output.
import { DEFAULT_LIMITS } from '@sd/shared/schemas/limits';
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

/**
 * The caller's pixel budget for a runner that sizes the output from the input image (img2img without width or height):
 * the edge sizes data URIs itself, but an image given by URL only the runner sees. Sent only when it is tighter than
 * the runner's own limit, so a Cog host we do not run meets the extra field only where leaving it out would let a key
 * past its budget (it then refuses the input rather than draw too large).
 */
function budgetFor(record: LeasedJob): { max_pixels?: number } {
  const { maxPixels } = record.job;
  const { image, width, height } = record.input;
  const sized = width !== undefined && height !== undefined;
  if (image === undefined || sized || maxPixels === undefined || maxPixels >= DEFAULT_LIMITS.maxPixels) return {};
  return { max_pixels: maxPixels };
}

export async function runnerInput(
  record: LeasedJob,
  backend: Backend,
  cache: EmbeddingCache,
): Promise<{ input: Record<string, unknown>; embeddingCache: 'hit' | 'miss' | null }> {
  if (!backend.takesRunnerInput) return { input: { ...record.input }, embeddingCache: null };
  const input = { ...record.input, ...budgetFor(record) };
  const { tokens, cacheKeys } = record.job;
  if (!backend.tokenizesAtEdge || !tokens || !cacheKeys) return { input, embeddingCache: null };
  const embeddings = await cache.getPair(cacheKeys);
  if (embeddings) return { input: { ...input, embeddings }, embeddingCache: 'hit' };
  return {
    input: { ...input, prompt_tokens: tokens.prompt, negative_prompt_tokens: tokens.negative, return_embeddings: true },
    embeddingCache: 'miss',
  };
}
