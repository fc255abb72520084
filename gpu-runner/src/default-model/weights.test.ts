import { describe, expect, it } from 'vitest';
import { WeightGenerator } from './weights.ts';

describe('WeightGenerator', () => {
  it('draws the same values for the same seed and name, and others for another name or seed', () => {
    const a = new WeightGenerator(1).normal('conv.weight', 1000, 1);
    expect(new WeightGenerator(1).normal('conv.weight', 1000, 1)).toEqual(a);
    expect(new WeightGenerator(1).normal('conv.bias', 1000, 1)).not.toEqual(a);
    expect(new WeightGenerator(2).normal('conv.weight', 1000, 1)).not.toEqual(a);
  });

  it('draws N(0, std²) with fanIn scaling gain/sqrt(fanIn)', () => {
    const n = 200_000;
    const x = new WeightGenerator(7).fanIn('w', n, 16, 2); // std 0.5
    let sum = 0;
    let sq = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / n;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.sqrt(sq / n - mean * mean)).toBeCloseTo(0.5, 2);
    expect(x.every(Number.isFinite)).toBe(true);
  });
});
