// The one binary format embeddings travel in (edge cache <-> runner): dtype, shape, little-endian bytes, base64 in JSON.
import { z } from 'zod';
import { base64ToBytes, bytesToBase64 } from './base64.ts';

export const EncodedTensorSchema = z.strictObject({
  dtype: z.enum(['float32', 'float16']),
  shape: z.array(z.number().int().min(1).max(1_000_000)).min(1).max(6),
  /** Row-major, little-endian element bytes, base64. */
  data: z.string(),
});
export type EncodedTensor = z.infer<typeof EncodedTensorSchema>;

export interface DecodedTensor {
  data: Float32Array;
  shape: number[];
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Raw little-endian float32 bytes of a tensor (for KV, which stores binary). */
export function float32ToBytes(data: Float32Array): Uint8Array {
  if (isLittleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}

export function bytesToFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`float32 data must be a multiple of 4 bytes, got ${bytes.byteLength}`);
  const out = new Float32Array(bytes.byteLength / 4);
  if (isLittleEndian) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Why `t.data` cannot hold dtype x shape, without decoding it (a request may carry megabytes): characters outside
 * base64, or a decoded length other than elements x width. Null when it fits.
 */
export function tensorDataProblem(t: EncodedTensor): string | null {
  const data = t.data.replace(/\s+/g, '');
  if (!BASE64.test(data)) return 'data must be base64 (A-Z, a-z, 0-9, +, /, = padding)';
  const chars = data.replace(/=+$/, '').length;
  if (chars % 4 === 1) return `data must be base64, got ${chars} characters (not a whole number of bytes)`;
  const bytes = Math.floor((chars * 3) / 4);
  const needed = elementCount(t.shape) * (t.dtype === 'float32' ? 4 : 2);
  if (bytes !== needed) return `data must hold ${needed} bytes for ${t.dtype} [${t.shape.join(', ')}], got ${bytes}`;
  return null;
}

export function encodeTensor(data: Float32Array, shape: readonly number[]): EncodedTensor {
  if (elementCount(shape) !== data.length) {
    throw new Error(`tensor shape [${shape.join(', ')}] holds ${elementCount(shape)} values, got ${data.length}`);
  }
  return { dtype: 'float32', shape: [...shape], data: bytesToBase64(float32ToBytes(data)) };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decodes and checks a tensor: the byte count must match dtype x shape exactly. */
export function decodeTensor(t: EncodedTensor): DecodedTensor {
  const bytes = base64ToBytes(t.data);
  const n = elementCount(t.shape);
  const width = t.dtype === 'float32' ? 4 : 2;
  if (bytes.byteLength !== n * width) {
    throw new Error(
      `tensor of shape [${t.shape.join(', ')}] and dtype ${t.dtype} needs ${n * width} bytes, got ${bytes.byteLength}`,
    );
  }
  if (t.dtype === 'float32') return { data: bytesToFloat32(bytes), shape: [...t.shape] };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  return { data: out, shape: [...t.shape] };
}
