import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  maxAbsDiff,
  readReferenceJson,
  referenceDir,
  referencePath,
  referenceSkipReason,
} from '../../../test/support/reference.ts';
import { GeneratorNoise, MersenneTwister, TorchGenerator } from './torch-generator.ts';

interface RandnManifest {
  cases: { seed: number; draws: { shape: number[]; file: string; first: number[] }[] }[];
}

function readBin(file: string): Float32Array {
  const buf = readFileSync(referencePath('randn', file));
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

describe.skipIf(!referenceDir)(
  `torch.randn goldens (shared/reference/randn, torch 1.13 CPU; 1e-6 abs)${referenceSkipReason}`,
  () => {
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
  },
);

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

  // Exact float32 values, derived independently of this module: numpy's legacy MT19937 seeding (init_genrand, the
  // same as torch's) for the 32-bit words, then torch's normal_distribution<double> in Python floats: u = low 53 bits
  // of (first word << 32 | second word) / 2^53, r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, r cos theta returned and
  // r sin theta cached. They agree with the well-known 4-decimal REPL values (seed 0: 1.5410, -0.2934, -2.1788, ...;
  // seed 42: 0.3367, 0.1288, 0.2345), which a swapped word order or a swapped u1/u2 would not.
  const SEED0_EXACT = [1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684312582015991, -1.0845223665237427];
  const SEED42_EXACT = [
    0.33669036626815796, 0.12880940735340118, 0.23446236550807953, 0.23033303022384644, -1.1228563785552979, -0.18632829189300537,
    2.2082014083862305,
  ];

  it('MT19937: the standard known answer for seed 5489 (3499211612, 581869302, 3890346734)', () => {
    const mt = new MersenneTwister(5489);
    expect([mt.nextUint32(), mt.nextUint32(), mt.nextUint32()]).toEqual([3499211612, 581869302, 3890346734]);
  });

  it('is bit-exact for torch.randn(5) with seed 0 and torch.randn(7) with seed 42', () => {
    expect(Array.from(new TorchGenerator(0).randn([5]))).toEqual(SEED0_EXACT);
    expect(Array.from(new TorchGenerator(42).randn([7]))).toEqual(SEED42_EXACT);
  });

  it('torch.randn(3) then torch.randn(2) continue one stream (the odd value of the first draw is cached)', () => {
    const g = new TorchGenerator(0);
    expect(Array.from(g.randn([3]))).toEqual(SEED0_EXACT.slice(0, 3));
    expect(Array.from(g.randn([2]))).toEqual(SEED0_EXACT.slice(3));
    expect(Array.from(new TorchGenerator(0).randn([1]))).toEqual([SEED0_EXACT[0]]);
  });

  it('a large draw (>= 16, float32 uniforms) leaves the cached normal in place for the next small draw', () => {
    const g = new TorchGenerator(0);
    expect(g.randn([1])[0]).toBe(SEED0_EXACT[0]);
    g.randn([16]);
    expect(g.randn([1])[0]).toBe(SEED0_EXACT[1]);
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
});
