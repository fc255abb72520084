// The embedding cache key: a hash of everything that determines a text encoder's output.
import { sha256Hex } from './sha256.ts';
export interface EmbeddingKeyParts {
  /** Model id and version (weights differ per version). */
  model: string;
  ids: readonly (readonly number[])[];
  weights: readonly (readonly number[])[];
  clipSkip?: number;
}

/** SHA-256 (hex) over a canonical encoding; Web Crypto, so it runs in workerd and Node. */
export async function embeddingCacheKey(parts: EmbeddingKeyParts): Promise<string> {
  const canonical = JSON.stringify({
    v: 1,
    model: parts.model,
    ids: parts.ids,
    // Weights as float32 bit patterns: 1.1 and 1.1000000001 become the same key only if the model would see the same value.
    weights: parts.weights.map((w) => Array.from(new Uint32Array(Float32Array.from(w).buffer))),
    clipSkip: parts.clipSkip ?? 1,
  });
  return sha256Hex(canonical);
}
