// The embedding cache key: a hash of everything that determines a text encoder's output.
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
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
