// The inpainting overlay: the input's own pixels outside the mask, the generated ones inside, a soft edge between.
import { describe, expect, it } from 'vitest';
import { overlayInput, overlayWeights } from './inpaint.ts';

const SIZE = 64;
/** White (repaint) on the right half. */
const RIGHT_HALF = new Uint8Array(SIZE * SIZE).map((_, i) => (i % SIZE >= SIZE / 2 ? 255 : 0));

describe('inpainting overlay', () => {
  it('keeps the input exactly beyond 3 sigma of the mask, repaints fully inside it, and softens the edge', () => {
    const weights = overlayWeights(RIGHT_HALF, SIZE, SIZE);
    const row = Array.from(weights.subarray(10 * SIZE, 11 * SIZE));
    // sigma 1 px at 64x64: the kernel reaches 3 px.
    expect(row.slice(0, SIZE / 2 - 3)).toEqual(new Array(SIZE / 2 - 3).fill(0));
    expect(row.slice(SIZE / 2 + 3).every((w) => Math.abs(w - 1) < 1e-6)).toBe(true);
    const edge = row.slice(SIZE / 2 - 3, SIZE / 2 + 3);
    expect(edge.every((w) => w > 0 && w < 1)).toBe(true);
    expect(edge.every((w, i) => i === 0 || w > edge[i - 1])).toBe(true);
  });

  it('scales the softening with the image (4 px sigma at 512, as mask_blur)', () => {
    const side = 512;
    const mask = new Uint8Array(side * side).map((_, i) => (i % side >= side / 2 ? 255 : 0));
    const row = overlayWeights(mask, side, side).subarray(0, side);
    // The kernel reaches 12 px: the 13th pixel left of the mask is the first one kept exactly.
    expect(row[side / 2 - 13]).toBe(0);
    expect(row[side / 2 - 12]).toBeGreaterThan(0);
    expect(row[side / 2 - 4]).toBeGreaterThan(0.01);
  });

  it('takes the input where the weight is 0, the generated image where it is 1, a rounded mix between', () => {
    const generated = Uint8Array.from([200, 200, 200, 200, 200, 200, 200, 200, 200]);
    const input = Uint8Array.from([10, 20, 30, 10, 20, 30, 10, 20, 30]);
    const out = overlayInput(generated, input, Float32Array.from([0, 1, 0.5]));
    expect(Array.from(out)).toEqual([10, 20, 30, 200, 200, 200, 105, 110, 115]);
  });
});
