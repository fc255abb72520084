import { describe, expect, it } from 'vitest';
import { base64ToBytes, bytesToBase64 } from './base64.ts';
import { embeddingCacheKey } from './embedding-cache-key.ts';
import { decodeTensor, EncodedTensorSchema, encodeTensor } from './tensor-format.ts';

describe('base64', () => {
  it('round-trips every length and agrees with Buffer', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      const b64 = bytesToBase64(bytes);
      expect(b64).toBe(Buffer.from(bytes).toString('base64'));
      expect(Array.from(base64ToBytes(b64))).toEqual(Array.from(bytes));
    }
  });
  it('rejects characters outside the alphabet', () => {
    expect(() => base64ToBytes('ab$d')).toThrow(/unexpected character/);
  });
});

describe('tensor format', () => {
  it('round-trips float32 exactly, little-endian', () => {
    const data = Float32Array.from([1, -2.5, Math.fround(0.1), 3e38, -0]);
    const enc = encodeTensor(data, [1, 5]);
    expect(EncodedTensorSchema.parse(enc)).toEqual(enc);
    expect(Buffer.from(enc.data, 'base64').readFloatLE(4)).toBe(-2.5);
    const dec = decodeTensor(enc);
    expect(dec.shape).toEqual([1, 5]);
    expect(Array.from(dec.data)).toEqual(Array.from(data));
  });
  it('decodes float16', () => {
    const half = new Uint16Array([0x3c00, 0xc000, 0x3555]); // 1, -2, ~0.3333
    const enc = { dtype: 'float16' as const, shape: [3], data: Buffer.from(half.buffer).toString('base64') };
    const dec = decodeTensor(enc);
    expect(dec.data[0]).toBe(1);
    expect(dec.data[1]).toBe(-2);
    expect(dec.data[2]).toBeCloseTo(0.33325, 4);
  });
  it('rejects a shape that does not match the bytes', () => {
    const enc = encodeTensor(new Float32Array(6), [2, 3]);
    expect(() => decodeTensor({ ...enc, shape: [2, 4] })).toThrow(/needs 32 bytes, got 24/);
    expect(() => encodeTensor(new Float32Array(5), [2, 3])).toThrow(/holds 6 values, got 5/);
  });
});

describe('embedding cache key', () => {
  const base = { model: 'm:v1', ids: [[49406, 320, 49407]], weights: [[1, 1, 1]] };
  it('is stable and changes with every part', async () => {
    const k = await embeddingCacheKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(await embeddingCacheKey({ ...base })).toBe(k);
    expect(await embeddingCacheKey({ ...base, model: 'm:v2' })).not.toBe(k);
    expect(await embeddingCacheKey({ ...base, ids: [[49406, 321, 49407]] })).not.toBe(k);
    expect(await embeddingCacheKey({ ...base, weights: [[1, 1.1, 1]] })).not.toBe(k);
    expect(await embeddingCacheKey({ ...base, clipSkip: 2 })).not.toBe(k);
  });
});
