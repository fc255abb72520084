import { describe, expect, it } from 'vitest';
import { fitSize, sizeFromImage } from './image-size.ts';

const limits = { minSide: 64, maxSide: 2048, maxPixels: 1024 * 1024 };

describe('output size from an input image', () => {
  it("keeps an image's own size when it fits, in multiples of 8", () => {
    expect(sizeFromImage({ width: 256, height: 256 }, {}, limits)).toEqual({ width: 256, height: 256 });
    expect(sizeFromImage({ width: 300, height: 203 }, {}, limits)).toEqual({ width: 296, height: 200 });
  });

  it('scales a large image into the pixel budget and a tiny one up to the smallest side', () => {
    expect(fitSize({ width: 1024, height: 1024 }, limits)).toEqual({ width: 1024, height: 1024 });
    expect(fitSize({ width: 2000, height: 1000 }, limits)).toEqual({ width: 1448, height: 720 });
    expect(fitSize({ width: 30, height: 30 }, limits)).toEqual({ width: 64, height: 64 });
  });

  it('takes the given sides as they are, and the missing one from the aspect ratio within the budget', () => {
    expect(sizeFromImage({ width: 256, height: 256 }, { width: 128, height: 96 }, limits)).toEqual({ width: 128, height: 96 });
    expect(sizeFromImage({ width: 400, height: 200 }, { width: 128 }, limits)).toEqual({ width: 128, height: 64 });
    expect(sizeFromImage({ width: 200, height: 400 }, { height: 256 }, limits)).toEqual({ width: 128, height: 256 });
    const tall = sizeFromImage({ width: 100, height: 4000 }, { width: 2048 }, limits);
    expect(tall.width * tall.height).toBeLessThanOrEqual(limits.maxPixels);
  });

  it('keeps within the budget when the short side is raised to the smallest side (a wide image, a small budget)', () => {
    const small = { ...limits, maxPixels: 64 * 64 };
    // 256x128 scaled by sqrt(1/8) is 90x45: the short side goes up to 64, so the long one must come down to 64.
    expect(fitSize({ width: 256, height: 128 }, small)).toEqual({ width: 64, height: 64 });
    const budget = { ...limits, maxPixels: 128 * 64 };
    expect(fitSize({ width: 1000, height: 100 }, budget)).toEqual({ width: 128, height: 64 });
    expect(fitSize({ width: 100, height: 1000 }, budget)).toEqual({ width: 64, height: 128 });
    // A budget below the smallest image the model makes cannot be met: the smallest image, never more.
    expect(fitSize({ width: 256, height: 128 }, { ...limits, maxPixels: 1000 })).toEqual({ width: 64, height: 64 });
  });
});
