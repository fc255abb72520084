// The output size of an image-to-image request from its input image, as both sides compute it: the image's own size
// in multiples of 8, scaled down into the side limits and the pixel budget (diffusers takes the image's size when
// width and height are not given; OpenAI's edits default to the input's size).

export interface SizeLimits {
  minSide: number;
  maxSide: number;
  maxPixels: number;
}

export interface Size {
  width: number;
  height: number;
}

const floor8 = (v: number) => Math.floor(v / 8) * 8;

/** An image's own size made one any model takes: multiples of 8, inside the side limits and the pixel budget. */
export function fitSize(dims: Size, limits: SizeLimits): Size {
  const scale = Math.min(
    1,
    Math.sqrt(limits.maxPixels / (dims.width * dims.height)),
    limits.maxSide / Math.max(dims.width, dims.height),
  );
  let width = Math.max(limits.minSide, floor8(dims.width * scale));
  let height = Math.max(limits.minSide, floor8(dims.height * scale));
  // A short side raised to minSide adds pixels the scale did not count: the long side gives them back.
  if (width * height > limits.maxPixels) {
    if (height === limits.minSide) width = Math.max(limits.minSide, floor8(limits.maxPixels / height));
    else height = Math.max(limits.minSide, floor8(limits.maxPixels / width));
  }
  return { width, height };
}

/**
 * The width and height of an img2img output: what the request gave; a side it left out comes from the image (both
 * out: the image's size, fitted; one out: the image's aspect ratio against the given side, within the budget).
 */
export function sizeFromImage(image: Size, requested: Partial<Size>, limits: SizeLimits): Size {
  const { width, height } = requested;
  if (width !== undefined && height !== undefined) return { width, height };
  if (width === undefined && height === undefined) return fitSize(image, limits);
  const other = (given: number, ratio: number): number =>
    Math.min(limits.maxSide, Math.max(limits.minSide, floor8(Math.min(given * ratio, limits.maxPixels / given))));
  return width !== undefined
    ? { width, height: other(width, image.height / image.width) }
    : { width: other(height as number, image.width / image.height), height: height as number };
}
