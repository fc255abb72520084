// Image bytes as the edge meets them from other APIs' clients: raw base64 (AUTOMATIC1111), data URIs with a generic
// type (the replicate client's Buffer fallback), uploaded files. Sniffs the real type and reads the size from the header.
import { base64ToBytes, bytesToBase64 } from '@sd/shared/base64';
import { invalidInput } from '@sd/shared/domain-error';
import { type SizeLimits, sizeFromImage } from '@sd/shared/image-size';

export type ImageType = 'image/png' | 'image/jpeg' | 'image/webp';

/** The type from the magic bytes, or null for anything that is not PNG, JPEG or WebP. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  return null;
}

/** Width and height from a PNG, JPEG or WebP header; null when the header cannot be read. */
export function imageDimensions(bytes: Uint8Array): { width: number; height: number } | null {
  const type = sniffImageType(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type === 'image/png' && bytes.length >= 24) return { width: view.getUint32(16), height: view.getUint32(20) };
  if (type === 'image/jpeg') {
    // Walk the segments to the first start-of-frame marker (SOF0..SOF15 except DHT, JPG and DAC).
    let i = 2;
    while (i + 9 < bytes.length) {
      if (bytes[i] !== 0xff) return null;
      const marker = bytes[i + 1];
      if (marker === 0xff) {
        i++;
        continue;
      }
      const length = view.getUint16(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { height: view.getUint16(i + 5), width: view.getUint16(i + 7) };
      }
      i += 2 + length;
    }
    return null;
  }
  if (type === 'image/webp' && bytes.length >= 30) {
    const chunk = String.fromCharCode(...bytes.subarray(12, 16));
    if (chunk === 'VP8 ') return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
    if (chunk === 'VP8L') {
      const b = view.getUint32(21, true);
      return { width: (b & 0x3fff) + 1, height: ((b >> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') {
      const w = bytes[24] | (bytes[25] << 8) | (bytes[26] << 16);
      const h = bytes[27] | (bytes[28] << 8) | (bytes[29] << 16);
      return { width: w + 1, height: h + 1 };
    }
  }
  return null;
}

export function dataUriOf(bytes: Uint8Array, type: ImageType): string {
  return `data:${type};base64,${bytesToBase64(bytes)}`;
}

const DATA_URI = /^data:([^;,]*)(;[^,]*)?,(.*)$/s;

/**
 * An image given as raw base64 or as a data URI of any declared type, as a data URI of its real type. Other
 * strings (URLs) are returned unchanged for the input schema to judge. `field` names the caller's field in errors.
 */
export function normalizeImageString(value: string, field: string): string {
  const m = DATA_URI.exec(value);
  if (!m && /^(?:https?:)?\/\//i.test(value)) return value;
  const payload = m ? m[3] : value;
  if (m && !/;base64/i.test(m[2] ?? '')) {
    throw invalidInput(field, `${field} must be a base64 data URI, got a data URI without ;base64`);
  }
  // Only the head is decoded to sniff the type; the input schema checks the size and the rest of the encoding.
  let head: Uint8Array;
  try {
    head = base64ToBytes(payload.replace(/\s+/g, '').slice(0, 64));
  } catch {
    throw invalidInput(field, `${field} must be base64 image data or a data URI, got ${JSON.stringify(value.slice(0, 40))}`);
  }
  const type = sniffImageType(head);
  if (!type) {
    throw invalidInput(
      field,
      `${field} must be a PNG, JPEG or WebP image, got ${m ? `a data URI of ${m[1] || 'no type'}` : 'base64 that is none of them'}`,
    );
  }
  return `data:${type};base64,${payload.replace(/\s+/g, '')}`;
}

/** The bytes of a data URI (or raw base64). */
export function imageBytesOf(value: string): Uint8Array {
  const m = DATA_URI.exec(value);
  return base64ToBytes(m ? m[3] : value);
}

/** Base64 characters decoded to find an image's size: a PNG or WebP header is in the first bytes, a JPEG's frame
 * header usually within the first 64 KiB (after EXIF and ICC segments); past that the runner sizes the image. */
const HEADER_BASE64_CHARS = 4 * Math.ceil((64 * 1024) / 3);

/**
 * An img2img input without width or height gets the image's own size (fitted into `limits`), as diffusers does, when
 * the image is a data URI whose header says it; so the caller's pixel budget applies to it. Anything else is left as
 * it is (URLs: the runner sizes the image it fetches; malformed values: the input schema refuses them).
 */
export function withImageSize(input: Record<string, unknown>, limits: SizeLimits): Record<string, unknown> {
  const { image, width, height } = input;
  if (typeof image !== 'string' || (width !== undefined && height !== undefined)) return input;
  if ((width !== undefined && typeof width !== 'number') || (height !== undefined && typeof height !== 'number')) return input;
  // Only the head is read: a data URI may be 13 MB of base64 and this runs on every img2img request.
  const comma = image.indexOf(',');
  if (!image.startsWith('data:') || comma < 0) return input;
  let head: Uint8Array;
  try {
    const chars = image.slice(comma + 1, comma + 1 + HEADER_BASE64_CHARS + 1024).replace(/\s+/g, '');
    head = base64ToBytes(chars.slice(0, Math.min(chars.length, HEADER_BASE64_CHARS)));
  } catch {
    return input;
  }
  const dims = imageDimensions(head);
  if (!dims || dims.width < 1 || dims.height < 1) return input;
  return { ...input, ...sizeFromImage(dims, { width, height }, limits) };
}
