// OpenAI's edit masks say "repaint here" with transparency; our runner reads white = repaint. This turns a PNG's
// alpha channel into that black/white mask, with a small PNG decoder and encoder on the Compression Streams API
// (workerd has no image library). Non-interlaced PNGs of every colour type, 8 or 16 bits.

export class PngError extends Error {
  override name = 'PngError';
}

interface DecodedPng {
  width: number;
  height: number;
  /** Alpha per pixel (0..255), or null when the image has no transparency information at all. */
  alpha: Uint8Array | null;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes a PNG far enough to read each pixel's alpha. */
export async function decodePngAlpha(bytes: Uint8Array): Promise<DecodedPng> {
  if (bytes.length < 33 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new PngError('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = 0;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      depth = bytes[at + 16];
      colorType = bytes[at + 17];
      if (bytes[at + 20] !== 0) throw new PngError('interlaced PNGs are not supported; save the mask without interlacing');
    } else if (type === 'tRNS') trns = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  if (!width || !height || channels === undefined || ![1, 2, 4, 8, 16].includes(depth))
    throw new PngError('unsupported PNG header');
  if (width * height > 4096 * 4096) throw new PngError(`PNG of ${width}x${height} is too large`);
  const hasAlpha = colorType === 4 || colorType === 6 || trns !== null;
  if (!hasAlpha) return { width, height, alpha: null };

  const joined = new Uint8Array(idat.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of idat) {
    joined.set(c, o);
    o += c.length;
  }
  const raw = await inflate(joined);
  const bitsPerPixel = channels * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < height * (stride + 1)) throw new PngError('truncated PNG data');
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : null;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp] : 0;
      const b = prev ? prev[x] : 0;
      const c = prev && x >= bpp ? prev[x - bpp] : 0;
      const v = src[x];
      row[x] =
        (filter === 0
          ? v
          : filter === 1
            ? v + a
            : filter === 2
              ? v + b
              : filter === 3
                ? v + ((a + b) >> 1)
                : v + paeth(a, b, c)) & 0xff;
    }
  }
  const alpha = new Uint8Array(width * height);
  const sample = (y: number, index: number): number => {
    // index counts samples within the row; returns the sample scaled to 0..255 for depth 8/16, raw for < 8.
    const row = y * stride;
    if (depth === 8) return rows[row + index];
    if (depth === 16) return rows[row + index * 2];
    const bit = index * depth;
    return (rows[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (colorType === 6) alpha[i] = sample(y, x * 4 + 3);
      else if (colorType === 4) alpha[i] = sample(y, x * 2 + 1);
      else if (colorType === 3) {
        const idx = sample(y, x);
        alpha[i] = trns && idx < trns.length ? trns[idx] : 255;
      } else if (colorType === 0 && trns) {
        const key = (trns[0] << 8) | trns[1];
        const v = depth === 16 ? (rows[y * stride + x * 2] << 8) | rows[y * stride + x * 2 + 1] : sample(y, x);
        alpha[i] = v === key ? 0 : 255;
      } else if (colorType === 2 && trns) {
        const at = y * stride + x * 3 * (depth === 16 ? 2 : 1);
        const same =
          depth === 16
            ? [0, 1, 2].every(
                (ch) => ((rows[at + ch * 2] << 8) | rows[at + ch * 2 + 1]) === ((trns![ch * 2] << 8) | trns![ch * 2 + 1]),
              )
            : [0, 1, 2].every((ch) => rows[at + ch] === trns![ch * 2 + 1]);
        alpha[i] = same ? 0 : 255;
      } else alpha[i] = 255;
    }
  }
  return { width, height, alpha };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** An 8-bit grayscale PNG of `gray` (one byte per pixel, row-major). */
export async function encodeGrayPng(width: number, height: number, gray: Uint8Array): Promise<Uint8Array> {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(gray.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const parts = [
    new Uint8Array(SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('IDAT', await deflate(raw)),
    chunk('IEND', new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * OpenAI's mask semantics to ours: transparent pixels (alpha below half) become white (repaint), the rest black.
 * Null when the PNG carries no alpha at all, or (with `requireTransparentPixel`) when no pixel is transparent.
 */
export async function repaintMaskFromAlpha(png: Uint8Array, requireTransparentPixel = false): Promise<Uint8Array | null> {
  const { width, height, alpha } = await decodePngAlpha(png);
  if (!alpha) return null;
  const gray = new Uint8Array(width * height);
  let any = false;
  for (let i = 0; i < gray.length; i++) {
    if (alpha[i] < 128) {
      gray[i] = 255;
      any = true;
    }
  }
  if (requireTransparentPixel && !any) return null;
  return encodeGrayPng(width, height, gray);
}
