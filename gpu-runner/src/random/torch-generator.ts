// torch.Generator('cpu') reproduced bit for bit: MT19937 seeded like manual_seed, and torch.randn's two code paths
// (vectorized float32 Box-Muller for >= 16 elements, cached float64 normals below that), so seeds match diffusers.
import type { NoiseSource } from './noise-source.ts';

const N = 624;
const M = 397;
const TWO_PI = 2 * Math.PI;
const INV_2_24 = 1 / 16777216;
const INV_2_53 = 1 / 9007199254740992;

/** The 32-bit Mersenne Twister exactly as torch's CPU generator runs it (exported for its known-answer test). */
export class MersenneTwister {
  private readonly state = new Uint32Array(N);
  private index = N;

  constructor(seed: number) {
    const mt = this.state;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.state;
    for (let i = 0; i < N; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % N] & 0x7fffffff);
      let v = mt[(i + M) % N] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.index = 0;
  }

  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

/** A torch CPU generator: `new TorchGenerator(seed)` is `torch.Generator('cpu').manual_seed(seed)`. */
export class TorchGenerator {
  private readonly mt: MersenneTwister;
  /** torch keeps the second Box-Muller value of the small path in the generator (next_double_normal_sample). */
  private cachedNormal: number | null = null;

  constructor(seed: number | bigint) {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new Error(`seed must be a safe integer, got ${seed}`);
    }
    // manual_seed takes the seed as uint64; the MT state is initialised from its low 32 bits.
    this.mt = new MersenneTwister(Number(BigInt.asUintN(32, BigInt(seed))));
  }

  /** A float32 uniform in [0, 1): the low 24 bits of one output. */
  private uniformFloat32(): number {
    return (this.mt.nextUint32() & 0xffffff) * INV_2_24;
  }

  /** A float64 uniform in [0, 1): the low 53 bits of (a << 32 | b). */
  private uniformFloat64(): number {
    const a = this.mt.nextUint32();
    const b = this.mt.nextUint32();
    return ((a & 0x1fffff) * 4294967296 + b) * INV_2_53;
  }

  private normalFloat64(): number {
    if (this.cachedNormal !== null) {
      const v = this.cachedNormal;
      this.cachedNormal = null;
      return v;
    }
    const u1 = this.uniformFloat64();
    const u2 = this.uniformFloat64();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = TWO_PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** torch.randn(shape, generator=this, dtype=float32) on the CPU. */
  randn(shape: readonly number[]): Float32Array {
    let size = 1;
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0)
        throw new Error(`randn shape must hold non-negative integers, got [${shape.join(', ')}]`);
      size *= d;
    }
    const out = new Float32Array(size);
    if (size < 16) {
      for (let i = 0; i < size; i++) out[i] = this.normalFloat64();
      return out;
    }
    for (let i = 0; i < size; i++) out[i] = this.uniformFloat32();
    for (let i = 0; i + 16 <= size; i += 16) boxMuller16(out, i);
    if (size % 16 !== 0) {
      // torch refills the last 16 elements (overlapping the previous block) with fresh uniforms.
      const start = size - 16;
      for (let i = 0; i < 16; i++) out[start + i] = this.uniformFloat32();
      boxMuller16(out, start);
    }
    return out;
  }
}

const fround = Math.fround;
const TWO_PI_F32 = Math.fround(TWO_PI);

/**
 * torch's normal_fill_16: pairs element j with j+8 in a block of 16 float32 uniforms. torch does this in float32
 * with its own vectorized log/sin/cos; rounding every step to float32 matches it to a few ulps (83% bit-exact).
 */
function boxMuller16(data: Float32Array, offset: number): void {
  for (let j = offset; j < offset + 8; j++) {
    const u1 = fround(1 - data[j]);
    const radius = fround(Math.sqrt(fround(-2 * fround(Math.log(u1)))));
    const theta = fround(TWO_PI_F32 * data[j + 8]);
    data[j] = radius * fround(Math.cos(theta));
    data[j + 8] = radius * fround(Math.sin(theta));
  }
}

/**
 * Noise for a batch the way diffusers draws it: with one generator, one draw of the full shape; with a list of
 * generators (one per image), image i's slice [1, ...] comes from generator i, so each image is reproducible alone.
 */
export class GeneratorNoise implements NoiseSource {
  constructor(private readonly generators: readonly TorchGenerator[]) {
    if (generators.length === 0) throw new Error('GeneratorNoise needs at least one generator, got 0');
  }

  /** One generator per seed: seeds [s, s+1, ...] for num_outputs images. */
  static fromSeeds(seeds: readonly (number | bigint)[]): GeneratorNoise {
    return new GeneratorNoise(seeds.map((s) => new TorchGenerator(s)));
  }

  randn(shape: readonly number[]): Float32Array {
    if (this.generators.length === 1) return this.generators[0].randn(shape);
    const batch = shape[0];
    if (batch !== this.generators.length) {
      throw new Error(`noise shape batch must equal the number of generators (${this.generators.length}), got ${batch}`);
    }
    const itemShape = [1, ...shape.slice(1)];
    const itemSize = itemShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(itemSize * batch);
    for (let b = 0; b < batch; b++) out.set(this.generators[b].randn(itemShape), b * itemSize);
    return out;
  }
}
