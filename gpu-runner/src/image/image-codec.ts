// Image bytes in and out (the only module that uses sharp): encode 8-bit RGB to PNG/WebP/JPEG with a quality,
// decode PNG/JPEG/WebP (or raw pixels) to RGB or grayscale at the requested size.
import { errorMessage } from '@sd/shared/error-message';
import sharp, { type Sharp } from 'sharp';

export type OutputFormat = 'png' | 'webp' | 'jpeg';

export const MIME_TYPES: Record<OutputFormat, string> = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' };

/** uint8 HWC RGB → encoded bytes. quality (1..100) applies to webp and jpeg; png is lossless. */
export async function encodeImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  format: OutputFormat,
  quality = 80,
): Promise<Uint8Array> {
  if (rgb.length !== width * height * 3)
    throw new Error(`RGB buffer has ${rgb.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100)
    throw new Error(`quality must be an integer between 1 and 100, got ${quality}`);
  const img = sharp(rgb, { raw: { width, height, channels: 3 } });
  const out =
    format === 'png'
      ? img.png({ compressionLevel: 6 })
      : format === 'webp'
        ? img.webp({ quality })
        : format === 'jpeg'
          ? img.jpeg({ quality, mozjpeg: false })
          : null;
  if (!out) throw new Error(`output format must be png, webp or jpeg, got ${String(format)}`);
  return new Uint8Array(await out.toBuffer());
}

/**
 * Largest input image decoded (img2img source, mask). A few KB of PNG can declare gigapixels (a decompression
 * bomb); inputs are resized to at most the output's 1 Mpx budget anyway, so 4096 x 4096 is plenty.
 */
export const MAX_INPUT_PIXELS = 4096 * 4096;

/**
 * Reads only the header of an input image: refuses what is not PNG, JPEG or WebP and what declares more than
 * maxPixels, before anything is decoded. Messages name the input field.
 */
export async function checkInputImage(
  field: string,
  bytes: Uint8Array,
  maxPixels = MAX_INPUT_PIXELS,
): Promise<{ width: number; height: number }> {
  let meta: Awaited<ReturnType<Sharp['metadata']>>;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new Error(`${field} is not a readable PNG, JPEG or WebP image: ${errorMessage(err).trim()}`);
  }
  if (!['png', 'jpeg', 'webp'].includes(meta.format ?? '')) {
    throw new Error(`${field} must be a PNG, JPEG or WebP image, got ${meta.format ?? 'unknown data'}`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > maxPixels || width < 1 || height < 1) {
    throw new Error(`${field} must have between 1 and ${maxPixels} pixels, got ${width} x ${height} = ${width * height}`);
  }
  return { width, height };
}

export interface DecodedPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

export type PixelSource =
  | { kind: 'pixels'; data: Uint8Array; width: number; height: number; channels: 1 | 3 | 4 }
  | { kind: 'encoded'; bytes: Uint8Array };

/**
 * Decodes an input image to `channels` (3 = RGB, alpha flattened onto black; 1 = grayscale, for masks) at
 * width x height. A different-sized image is resized with Lanczos (PIL's filter in diffusers' image processor),
 * stretching rather than cropping, as diffusers' default resize does.
 */
export async function decodeToSize(src: PixelSource, width: number, height: number, channels: 1 | 3): Promise<DecodedPixels> {
  if (src.kind === 'pixels' && src.width === width && src.height === height && src.channels === channels) {
    if (src.data.length !== width * height * channels)
      throw new Error(`pixel buffer has ${src.data.length} bytes, expected ${width * height * channels}`);
    return { data: src.data, width, height, channels };
  }
  let img: Sharp;
  try {
    img =
      src.kind === 'pixels'
        ? sharp(src.data, { raw: { width: src.width, height: src.height, channels: src.channels } })
        : sharp(src.bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS });
    const meta = await img.metadata();
    if (src.kind === 'encoded' && !['png', 'jpeg', 'webp'].includes(meta.format ?? '')) {
      throw new Error(`image must be PNG, JPEG or WebP, got ${meta.format ?? 'unknown data'}`);
    }
    img = img.flatten({ background: { r: 0, g: 0, b: 0 } });
    if (channels === 1) img = img.grayscale();
    else img = img.toColourspace('srgb');
    const { data, info } = await img
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const out = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (info.channels === channels) return { data: out, width, height, channels };
    // sharp keeps 3 channels for a grayscale pipeline on some inputs; take the first.
    const picked = new Uint8Array(width * height * channels);
    for (let p = 0; p < width * height; p++)
      for (let c = 0; c < channels; c++) picked[p * channels + c] = out[p * info.channels + c];
    return { data: picked, width, height, channels };
  } catch (err) {
    throw new Error(`cannot decode input image: ${errorMessage(err)}`);
  }
}
