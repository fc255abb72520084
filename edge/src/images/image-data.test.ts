import { DomainError } from '@sd/shared/domain-error';
import { describe, expect, it } from 'vitest';
import { imageDimensions, normalizeImageString, sniffImageType, withImageSize } from './image-data.ts';

const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/** A JPEG's first segments: SOI, an APP0 of 16 bytes, then SOF0 with height 300 and width 200. */
const JPEG_HEAD = new Uint8Array([
  0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff,
  0xc0, 0x00, 0x11, 0x08, 0x01, 0x2c, 0x00, 0xc8, 0x03, 0x01, 0x22, 0x00,
]);

/** A lossy WebP header ('VP8 ') for 320x240. */
function webpHead(): Uint8Array {
  const b = new Uint8Array(30);
  b.set(
    [...'RIFF'].map((c) => c.charCodeAt(0)),
    0,
  );
  b.set(
    [...'WEBP'].map((c) => c.charCodeAt(0)),
    8,
  );
  b.set(
    [...'VP8 '].map((c) => c.charCodeAt(0)),
    12,
  );
  b.set([0x9d, 0x01, 0x2a], 23);
  b.set([320 & 255, 320 >> 8, 240 & 255, 240 >> 8], 26);
  return b;
}

describe('image bytes', () => {
  it('sniffs PNG, JPEG and WebP and reads their sizes from the header', () => {
    expect(sniffImageType(bytes(PNG_1X1))).toBe('image/png');
    expect(imageDimensions(bytes(PNG_1X1))).toEqual({ width: 1, height: 1 });
    expect(sniffImageType(JPEG_HEAD)).toBe('image/jpeg');
    expect(imageDimensions(JPEG_HEAD)).toEqual({ width: 200, height: 300 });
    expect(sniffImageType(webpHead())).toBe('image/webp');
    expect(imageDimensions(webpHead())).toEqual({ width: 320, height: 240 });
    expect(sniffImageType(new TextEncoder().encode('GIF89a......'))).toBeNull();
  });

  it('gives raw base64 and generic data URIs their real type; leaves URLs alone; refuses non-images by field', () => {
    expect(normalizeImageString(PNG_1X1, 'init_images')).toBe(`data:image/png;base64,${PNG_1X1}`);
    expect(normalizeImageString(`data:application/octet-stream;base64,${PNG_1X1}`, 'image')).toBe(
      `data:image/png;base64,${PNG_1X1}`,
    );
    expect(normalizeImageString('https://example.com/a.png', 'image')).toBe('https://example.com/a.png');
    try {
      normalizeImageString('data:text/plain,hello', 'mask');
      throw new Error('expected a refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).issues?.[0]).toEqual({
        field: 'mask',
        message: 'mask must be a base64 data URI, got a data URI without ;base64',
      });
    }
  });
});

describe('img2img size from a data URI image', () => {
  const limits = { minSide: 64, maxSide: 2048, maxPixels: 1024 * 1024 };
  const toB64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  const jpeg = `data:image/jpeg;base64,${toB64(JPEG_HEAD)}`;
  const webp = `data:image/webp;base64,${toB64(webpHead())}`;

  it("gives an input without width and height the image's own size, in multiples of 8", () => {
    expect(withImageSize({ prompt: 'x', image: webp }, limits)).toMatchObject({ width: 320, height: 240 });
    expect(withImageSize({ prompt: 'x', image: jpeg }, limits)).toMatchObject({ width: 200, height: 296 });
  });

  it("fits the image into the caller's pixel budget and keeps a side the caller gave", () => {
    const small = { ...limits, maxPixels: 160 * 120 };
    expect(withImageSize({ image: webp }, small)).toMatchObject({ width: 160, height: 120 });
    // 64 wide at 4:3 would be 48 high: raised to the smallest side.
    expect(withImageSize({ image: webp, width: 64 }, limits)).toMatchObject({ width: 64, height: 64 });
    expect(withImageSize({ image: webp, width: 128, height: 128 }, limits)).toMatchObject({ width: 128, height: 128 });
  });

  it("gives sides the model's U-Net takes (sideMultiple), not just multiples of 8", () => {
    // 200x296 in multiples of 16 (the embedded model's): 192x288.
    expect(withImageSize({ image: jpeg }, { ...limits, sideMultiple: 16 })).toMatchObject({ width: 192, height: 288 });
    expect(withImageSize({ image: jpeg }, { ...limits, sideMultiple: 64 })).toMatchObject({ width: 192, height: 256 });
  });

  it('leaves URLs, unreadable images, inputs without an image and malformed sides to the runner and the schema', () => {
    const url = { image: 'https://images.example/a.png' };
    expect(withImageSize(url, limits)).toBe(url);
    const garbage = { image: 'data:image/png;base64,AAAA' };
    expect(withImageSize(garbage, limits)).toBe(garbage);
    const none = { prompt: 'x' };
    expect(withImageSize(none, limits)).toBe(none);
    const malformed = { image: webp, width: '320' };
    expect(withImageSize(malformed, limits)).toBe(malformed);
  });
});
