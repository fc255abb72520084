// Locates ../shared/reference (golden data made with the reference implementations) for tests.
// CI always has it; on a machine without it, golden tests skip and say why.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of the reference folder, or null when it is not on this machine. */
export function findReferenceDir(): string | null {
  const candidates = [process.env.SD_REFERENCE_DIR, join(repoRoot, '..', 'shared', 'reference')];
  for (const dir of candidates) {
    if (dir && existsSync(join(dir, 'README.md'))) return resolve(dir);
  }
  return null;
}

export const referenceDir = findReferenceDir();

/** Why golden tests are skipped, for `describe.skipIf(!referenceDir)` titles. */
export const referenceSkipReason = referenceDir ? '' : ' (skipped: ../shared/reference not found and SD_REFERENCE_DIR unset)';

export function referencePath(...parts: string[]): string {
  if (!referenceDir) throw new Error('reference data not available');
  return join(referenceDir, ...parts);
}

export function readReferenceJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(referencePath(...parts), 'utf8')) as T;
}

/** The reference README's tensor format: {dtype, shape, data}, row-major. */
export interface RefTensor {
  dtype: 'float32' | 'int32' | 'int64' | 'uint8';
  shape: number[];
  data: number[];
}

export function toFloat32(t: RefTensor): Float32Array {
  return Float32Array.from(t.data);
}

/** Largest absolute elementwise difference; throws on a length mismatch. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
