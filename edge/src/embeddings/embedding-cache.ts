// The CLIP embedding cache: KV holds each side's conditioning as raw little-endian float32 bytes with
// {dtype, shape} metadata; the Cache API (this colo's memory) fronts KV, keyed by a synthetic URL.
import { embeddingCacheKey } from '@sd/shared/embedding-cache-key';
import { type PrecomputedEmbeddings, PrecomputedEmbeddingsInputSchema, type TokenizedPrompt } from '@sd/shared/schemas/runner';
import { bytesToFloat32, decodeTensor, type EncodedTensor, encodeTensor, float32ToBytes } from '@sd/shared/tensor-format';

interface TensorMetadata {
  dtype: 'float32';
  shape: number[];
}

export interface CacheKeys {
  prompt: string;
  negative: string;
}

const CACHE_URL = 'https://embedding-cache.sd-edge.internal/v1/';

export interface EmbeddingCacheOptions {
  kv: KVNamespace;
  /** caches.default in production; undefined skips the front cache. */
  cache?: Cache;
  ttlSeconds: number;
}

export async function cacheKeysFor(
  modelKey: string,
  clipSkip: number,
  tokens: { prompt: TokenizedPrompt; negative: TokenizedPrompt },
): Promise<CacheKeys> {
  const [prompt, negative] = await Promise.all([
    embeddingCacheKey({ model: modelKey, ids: tokens.prompt.ids, weights: tokens.prompt.weights, clipSkip }),
    embeddingCacheKey({ model: modelKey, ids: tokens.negative.ids, weights: tokens.negative.weights, clipSkip }),
  ]);
  return { prompt, negative };
}

/**
 * Why a runner's returned embeddings do not fit the job's tokens: [1, windows x window length, hidden] on both
 * sides, data matching the shape (the check the runner's entrance applies). Null when they fit.
 */
export function embeddingsShapeProblem(
  embeddings: PrecomputedEmbeddings,
  tokens: { prompt: TokenizedPrompt; negative: TokenizedPrompt },
): string | null {
  const parsed = PrecomputedEmbeddingsInputSchema.safeParse(embeddings);
  if (!parsed.success) return parsed.error.issues.map((i) => i.message).join('; ');
  const expected = tokens.prompt.ids.reduce((n, w) => n + w.length, 0);
  const got = embeddings.prompt.shape[1];
  if (got !== expected)
    return `embeddings.prompt.shape[1] must be ${expected} (the job's ${tokens.prompt.ids.length} token windows), got ${got}`;
  return null;
}

/** One side found in the cache: its shape, and its bytes read on demand (or discarded unread). */
interface Found {
  shape: number[];
  bytes(): Promise<Uint8Array>;
  discard(): Promise<void>;
}

export class EmbeddingCache {
  constructor(private readonly options: EmbeddingCacheOptions) {}

  private url(key: string): string {
    return `${CACHE_URL}${key}`;
  }

  /** One side's tensor, or null. A KV hit refills the front cache. */
  async get(key: string): Promise<EncodedTensor | null> {
    const found = await this.lookup(key);
    return found ? this.encodeFound(found) : null;
  }

  /** Whether one side is cached, without reading it into base64 (the create path only needs hit or miss). */
  async has(key: string): Promise<boolean> {
    const found = await this.lookup(key);
    await found?.discard();
    return found !== null;
  }

  /**
   * Both sides, or null unless both are cached (the runner needs both to skip its text encoder). A side is read and
   * base64-encoded only when both are there: a half hit (a new prompt with the usual empty negative) encodes nothing.
   */
  async getPair(keys: CacheKeys): Promise<PrecomputedEmbeddings | null> {
    const [prompt, negative] = await Promise.all([this.lookup(keys.prompt), this.lookup(keys.negative)]);
    if (!prompt || !negative) {
      await Promise.all([prompt?.discard(), negative?.discard()]);
      return null;
    }
    return { prompt: await this.encodeFound(prompt), negative: await this.encodeFound(negative) };
  }

  private async encodeFound(found: Found): Promise<EncodedTensor> {
    return encodeTensor(bytesToFloat32(await found.bytes()), found.shape);
  }

  /** Whether both sides are cached; like getPair, a KV hit refills the front cache. */
  async hasPair(keys: CacheKeys): Promise<boolean> {
    const [prompt, negative] = await Promise.all([this.has(keys.prompt), this.has(keys.negative)]);
    return prompt && negative;
  }

  /** Finds one side in the front cache, then KV (refilling the front cache); the bytes are read only on demand. */
  private async lookup(key: string): Promise<Found | null> {
    const front = await this.options.cache?.match(this.url(key));
    if (front) {
      const shape = (front.headers.get('x-tensor-shape') ?? '').split(',').map(Number);
      if (shape.length > 0 && shape.every((n) => Number.isInteger(n) && n > 0)) {
        return { shape, bytes: async () => new Uint8Array(await front.arrayBuffer()), discard: async () => front.body?.cancel() };
      }
      await front.body?.cancel();
    }
    const hit = await this.options.kv.getWithMetadata<TensorMetadata>(key, 'arrayBuffer');
    if (!hit.value || !hit.metadata) return null;
    const bytes = new Uint8Array(hit.value);
    await this.putFront(key, bytes, hit.metadata.shape);
    return { shape: hit.metadata.shape, bytes: async () => bytes, discard: async () => {} };
  }

  /** Stores one side; the tensor is validated (byte count vs shape) and normalised to float32. */
  async put(key: string, tensor: EncodedTensor): Promise<void> {
    const decoded = decodeTensor(tensor);
    const bytes = float32ToBytes(decoded.data);
    const metadata: TensorMetadata = { dtype: 'float32', shape: decoded.shape };
    await this.options.kv.put(key, bytes, { metadata, expirationTtl: this.options.ttlSeconds });
    await this.putFront(key, bytes, decoded.shape);
  }

  async putPair(keys: CacheKeys, embeddings: PrecomputedEmbeddings): Promise<void> {
    await Promise.all([this.put(keys.prompt, embeddings.prompt), this.put(keys.negative, embeddings.negative)]);
  }

  private async putFront(key: string, bytes: Uint8Array, shape: number[]): Promise<void> {
    if (!this.options.cache) return;
    await this.options.cache.put(
      this.url(key),
      new Response(bytes, {
        headers: {
          'content-type': 'application/octet-stream',
          'x-tensor-shape': shape.join(','),
          'cache-control': `public, max-age=${Math.min(this.options.ttlSeconds, 86_400)}`,
        },
      }),
    );
  }
}

/** caches.default where the runtime has it (workerd); undefined elsewhere. */
export function defaultCache(): Cache | undefined {
  return typeof caches !== 'undefined' ? caches.default : undefined;
}
