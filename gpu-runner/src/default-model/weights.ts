// Deterministic weights for the embedded default model: one seeded normal stream per tensor name,
// so adding or reordering a layer never changes the values of the others.

/** FNV-1a over the UTF-16 code units of `name`, mixed with the model seed. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: a tiny 32-bit generator; plenty for weights that only need to look random. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export class WeightGenerator {
  constructor(readonly seed: number) {}

  /** `count` values from N(0, std²), drawn with Box-Muller from the stream named `name`. */
  normal(name: string, count: number, std: number): Float32Array {
    const next = mulberry32(streamSeed(this.seed, name));
    const out = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {
      // (x + 1) / 2^32 lies in (0, 1], so the log is finite.
      const u1 = (next() + 1) / 4294967296;
      const u2 = next() / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u1)) * std;
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }

  /** Weights for a layer with `fanIn` inputs per output: N(0, gain²/fanIn) keeps activations near unit scale. */
  fanIn(name: string, count: number, fanIn: number, gain = 1): Float32Array {
    return this.normal(name, count, gain / Math.sqrt(fanIn));
  }
}

export function filled(count: number, value: number): Float32Array {
  return new Float32Array(count).fill(value);
}
