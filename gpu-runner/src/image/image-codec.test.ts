import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeToSize, encodeImage } from './image-codec.ts';

function gradient(w: number, h: number): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) px.set([(x * 255) / (w - 1), (y * 255) / (h - 1), 128], (y * w + x) * 3);
  return px;
}

describe('image codec', () => {
  it('encodes png losslessly and decodes it back', async () => {
    const px = gradient(16, 8);
    const png = await encodeImage(px, 16, 8, 'png');
    expect(Array.from(png.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    const back = await decodeToSize({ kind: 'encoded', bytes: png }, 16, 8, 3);
    expect(Buffer.from(back.data).equals(Buffer.from(px))).toBe(true);
  });

  it('encodes webp and jpeg, smaller at lower quality', async () => {
    const px = gradient(64, 64);
    for (const format of ['webp', 'jpeg'] as const) {
      const hi = await encodeImage(px, 64, 64, format, 95);
      const lo = await encodeImage(px, 64, 64, format, 10);
      expect((await sharp(hi).metadata()).format).toBe(format);
      expect(lo.length).toBeLessThan(hi.length);
    }
    await expect(encodeImage(px, 64, 64, 'png', 0)).rejects.toThrow(/quality must be an integer between 1 and 100, got 0/);
  });

  it('resizes an input to the requested size and makes masks grayscale', async () => {
    const png = await encodeImage(gradient(32, 16), 32, 16, 'png');
    const rgb = await decodeToSize({ kind: 'encoded', bytes: png }, 64, 64, 3);
    expect(rgb.data.length).toBe(64 * 64 * 3);
    const gray = await decodeToSize({ kind: 'encoded', bytes: png }, 8, 8, 1);
    expect(gray.data.length).toBe(64);
  });

  it('rejects bytes that are not an image', async () => {
    await expect(decodeToSize({ kind: 'encoded', bytes: new Uint8Array([1, 2, 3]) }, 8, 8, 3)).rejects.toThrow(
      /cannot decode input image/,
    );
  });
});
