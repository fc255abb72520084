// The output size of an image-to-image request from its input image, as both sides compute it: the image's own size
// in multiples of 8 (or of what the model's U-Net needs), scaled down into the side limits and the pixel budget
// (diffusers takes the image's size when width and height are not given; OpenAI's edits default to the input's size).

import { DEFAULT_SIDE_MULTIPLE } from './schemas/limits.ts';

export interface SizeLimits {
  minSide: number;
  maxSide: number;
  maxPixels: number;
  /** What each side is a multiple of: 8 (the VAE's factor) unless the model's U-Net needs more (limits.ts). */
  sideMultiple?: number;
}

export interface Size {
  width: number;
  height: number;
}

/** Rounding down to a multiple of `multiple` (8 unless the limits say otherwise). */
const floorTo =
  (multiple = DEFAULT_SIDE_MULTIPLE) =>
  (v: number): number =>
    Math.floor(v / multiple) * multiple;

/** An image's own size made one the model takes: multiples of 8 (or `sideMultiple`), inside the side limits and the pixel budget. */
export function fitSize(dims: Size, limits: SizeLimits): Size {
  const floor = floorTo(limits.sideMultiple);
  const scale = Math.min(
    1,
    Math.sqrt(limits.maxPixels / (dims.width * dims.height)),
    limits.maxSide / Math.max(dims.width, dims.height),
  );
  let width = Math.max(limits.minSide, floor(dims.width * scale));
  let height = Math.max(limits.minSide, floor(dims.height * scale));
  // A short side raised to minSide adds pixels the scale did not count: the long side gives them back.
  if (width * height > limits.maxPixels) {
    if (height === limits.minSide) width = Math.max(limits.minSide, floor(limits.maxPixels / height));
    else height = Math.max(limits.minSide, floor(limits.maxPixels / width));
  }
  return { width, height };
}

/**
 * The width and height of an img2img output: what the request gave; a side it left out comes from the image (both
 * out: the image's size, fitted; one out: the image's aspect ratio against the given side, within the budget).
 */
export function sizeFromImage(image: Size, requested: Partial<Size>, limits: SizeLimits): Size {
  const floor = floorTo(limits.sideMultiple);
  const { width, height } = requested;
  if (width !== undefined && height !== undefined) return { width, height };
  if (width === undefined && height === undefined) return fitSize(image, limits);
  const other = (given: number, ratio: number): number =>
    Math.min(limits.maxSide, Math.max(limits.minSide, floor(Math.min(given * ratio, limits.maxPixels / given))));
  return width !== undefined
    ? { width, height: other(width, image.height / image.width) }
    : { width: other(height as number, image.width / image.height), height: height as number };
}
