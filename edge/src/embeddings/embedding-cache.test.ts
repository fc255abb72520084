// The embedding cache inside workerd with the real EMBEDDINGS namespace and Cache API: hit/miss without decoding,
// and the front cache refilled from KV.
import { env } from 'cloudflare:workers';
import { encodeTensor } from '@sd/shared/tensor-format';
import { describe, expect, it } from 'vitest';
import { EmbeddingCache } from './embedding-cache.ts';

const tensor = (fill: number) => encodeTensor(new Float32Array(2 * 3).fill(fill), [1, 2, 3]);
const unique = () => `test-${crypto.randomUUID()}`;

describe('EmbeddingCache.hasPair', () => {
  it('is true only when both sides are cached, and agrees with getPair', async () => {
    const cache = new EmbeddingCache({ kv: env.EMBEDDINGS, cache: caches.default, ttlSeconds: 3600 });
    const keys = { prompt: unique(), negative: unique() };
    expect(await cache.hasPair(keys)).toBe(false);
    await cache.put(keys.prompt, tensor(1));
    expect(await cache.hasPair(keys)).toBe(false);
    expect(await cache.getPair(keys)).toBeNull();
    await cache.put(keys.negative, tensor(2));
    expect(await cache.hasPair(keys)).toBe(true);
    expect(await cache.getPair(keys)).toEqual({ prompt: tensor(1), negative: tensor(2) });
  });

  it('answers from KV when the front cache misses, and refills the front cache', async () => {
    const kvOnly = new EmbeddingCache({ kv: env.EMBEDDINGS, ttlSeconds: 3600 });
    const key = unique();
    await kvOnly.put(key, tensor(3));
    const cache = new EmbeddingCache({ kv: env.EMBEDDINGS, cache: caches.default, ttlSeconds: 3600 });
    expect(await caches.default.match(`https://embedding-cache.sd-edge.internal/v1/${key}`)).toBeUndefined();
    expect(await cache.has(key)).toBe(true);
    await env.EMBEDDINGS.delete(key);
    expect(await cache.has(key)).toBe(true);
    expect(await cache.get(key)).toEqual(tensor(3));
  });
});
