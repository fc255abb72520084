import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, referenceDir, referencePath, referenceSkipReason, readReferenceJson } from '../../../test/support/reference.ts';
import { GeneratorNoise, TorchGenerator } from './torch-generator.ts';

interface RandnManifest {
  cases: { seed: number; draws: { shape: number[]; file: string; first: number[] }[] }[];
}

function readBin(file: string): Float32Array {
  const buf = readFileSync(referencePath('randn', file));
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

describe.skipIf(!referenceDir)(`torch.randn goldens (shared/reference/randn, torch 1.13 CPU; 1e-6 abs)${referenceSkipReason}`, () => {
  const manifest = referenceDir ? readReferenceJson<RandnManifest>('randn', 'manifest.json') : { cases: [] };
  for (const c of manifest.cases) {
    it(`seed ${c.seed}: ${c.draws.map((d) => `[${d.shape}]`).join(' then ')} from one generator`, () => {
      const g = new TorchGenerator(c.seed);
      for (const draw of c.draws) {
        const ref = readBin(draw.file);
        const got = g.randn(draw.shape);
        expect(got.length).toBe(ref.length);
        expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual(1e-6);
        expect(maxAbsDiff(got.subarray(0, 4), draw.first)).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it('GeneratorNoise with one generator is one draw of the full shape', () => {
    const c = manifest.cases.find((x) => x.draws[0].shape[0] === 2);
    if (!c) throw new Error('manifest has no batch-2 case');
    const got = new GeneratorNoise([new TorchGenerator(c.seed)]).randn(c.draws[0].shape);
    expect(maxAbsDiff(got, readBin(c.draws[0].file))).toBeLessThanOrEqual(1e-6);
  });
});

describe('TorchGenerator small draws (< 16 elements: float64 Box-Muller with a cached normal)', () => {
  // torch.manual_seed(0); torch.randn(5) -> [1.5410, -0.2934, -2.1788, 0.5684, -1.0845] (torch docs/REPL, 4 decimals)
  const seed0 = [1.541, -0.2934, -2.1788, 0.5684, -1.0845];

  it('matches torch.randn(5) for seed 0', () => {
    expect(maxAbsDiff(new TorchGenerator(0).randn([5]), seed0)).toBeLessThan(5e-5);
  });

  it('carries the cached normal across draws: randn(1) x5 equals randn(5)', () => {
    const g = new TorchGenerator(0);
    const parts = Array.from({ length: 5 }, () => g.randn([1])[0]);
    expect(Array.from(parts)).toEqual(Array.from(new TorchGenerator(0).randn([5])));
  });

  it('uses only the low 32 bits of the seed', () => {
    const a = new TorchGenerator(7n + (1n << 32n)).randn([20]);
    expect(Array.from(a)).toEqual(Array.from(new TorchGenerator(7).randn([20])));
  });
});

describe('GeneratorNoise', () => {
  it('draws image i of a batch from generator i alone', () => {
    const noise = GeneratorNoise.fromSeeds([11, 12]);
    const both = noise.randn([2, 4, 8, 8]);
    const second = new TorchGenerator(12).randn([1, 4, 8, 8]);
    expect(Array.from(both.subarray(256))).toEqual(Array.from(second));
    expect(Array.from(both.subarray(0, 256))).toEqual(Array.from(new TorchGenerator(11).randn([1, 4, 8, 8])));
  });

  it('rejects a batch that does not match the generators', () => {
    expect(() => GeneratorNoise.fromSeeds([1, 2]).randn([3, 4, 8, 8])).toThrow(/number of generators \(2\), got 3/);
  });

  it('draws 1x4x64x64 well under 5 ms', () => {
    const g = new TorchGenerator(42);
    g.randn([1, 4, 64, 64]);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) g.randn([1, 4, 64, 64]);
    const perDraw = (performance.now() - t0) / 10;
    expect(perDraw).toBeLessThan(5);
  });
});
