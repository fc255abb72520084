import { describe, expect, it } from 'vitest';
import { decodePngAlpha, encodeGrayPng, PngError, repaintMaskFromAlpha } from './png-alpha-mask.ts';

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A PNG built by hand: chunk CRCs are not checked by the decoder, so they are left zero here. */
async function png(width: number, height: number, colorType: number, rows: number[][], extra: [string, number[]][] = []) {
  const chunks: number[] = [...SIG];
  const add = (type: string, body: number[] | Uint8Array) => {
    const len = body.length;
    chunks.push((len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
    for (const ch of type) chunks.push(ch.charCodeAt(0));
    chunks.push(...body, 0, 0, 0, 0);
  };
  const ihdr = [0, 0, 0, width, 0, 0, 0, height, 8, colorType, 0, 0, 0];
  add('IHDR', ihdr);
  for (const [type, body] of extra) add(type, body);
  add('IDAT', await deflate(new Uint8Array(rows.flat())));
  add('IEND', []);
  return new Uint8Array(chunks);
}

describe('PNG alpha masks', () => {
  it('reads RGBA alpha through every row filter (none, sub, up, average, paeth)', async () => {
    // 2x5 RGBA; each row's filter byte differs; raw alpha per row is [255, 0]. Filtered bytes computed by hand.
    const raw = [
      [10, 20, 30, 255, 40, 50, 60, 0],
      [10, 20, 30, 255, 40, 50, 60, 0],
      [10, 20, 30, 255, 40, 50, 60, 0],
      [10, 20, 30, 255, 40, 50, 60, 0],
      [10, 20, 30, 255, 40, 50, 60, 0],
    ];
    const sub = (r: number[]) => r.map((v, i) => (i >= 4 ? (v - r[i - 4]) & 255 : v));
    const up = (r: number[], p: number[]) => r.map((v, i) => (v - p[i]) & 255);
    const avg = (r: number[], p: number[]) => r.map((v, i) => (v - (((i >= 4 ? r[i - 4] : 0) + p[i]) >> 1)) & 255);
    const paeth = (r: number[], p: number[]) =>
      r.map((v, i) => {
        const a = i >= 4 ? r[i - 4] : 0;
        const b = p[i];
        const c = i >= 4 ? p[i - 4] : 0;
        const q = a + b - c;
        const pr =
          Math.abs(q - a) <= Math.abs(q - b) && Math.abs(q - a) <= Math.abs(q - c)
            ? a
            : Math.abs(q - b) <= Math.abs(q - c)
              ? b
              : c;
        return (v - pr) & 255;
      });
    const rows = [
      [0, ...raw[0]],
      [1, ...sub(raw[1])],
      [2, ...up(raw[2], raw[1])],
      [3, ...avg(raw[3], raw[2])],
      [4, ...paeth(raw[4], raw[3])],
    ];
    const decoded = await decodePngAlpha(await png(2, 5, 6, rows));
    expect(decoded).toMatchObject({ width: 2, height: 5 });
    expect([...(decoded.alpha ?? [])]).toEqual([255, 0, 255, 0, 255, 0, 255, 0, 255, 0]);
  });

  it('turns transparent pixels white (repaint) and opaque ones black, as a grayscale PNG', async () => {
    const rows = [
      [0, 0, 0, 0, 0, 0, 0, 0, 255],
      [0, 0, 0, 0, 100, 0, 0, 0, 200],
    ];
    const mask = await repaintMaskFromAlpha(await png(2, 2, 6, rows));
    expect(mask).not.toBeNull();
    // Read back: IHDR says 8-bit grayscale; the inflated IDAT is one filter byte and two pixels per row.
    const view = new DataView(mask!.buffer);
    expect([view.getUint32(16), view.getUint32(20), mask![24], mask![25]]).toEqual([2, 2, 8, 0]);
    const idatLength = view.getUint32(33);
    const pixels = await inflate(mask!.subarray(41, 41 + idatLength));
    expect([...pixels]).toEqual([0, 255, 0, 0, 255, 0]);
  });

  it('palette transparency (tRNS) counts; an image without alpha gives null; an opaque one with the flag gives null', async () => {
    const palette: [string, number[]][] = [
      ['PLTE', [0, 0, 0, 255, 255, 255]],
      ['tRNS', [0]],
    ];
    const withTrns = await repaintMaskFromAlpha(await png(2, 1, 3, [[0, 0, 1]], palette));
    expect(withTrns).not.toBeNull();
    expect(await repaintMaskFromAlpha(await png(1, 1, 2, [[0, 1, 2, 3]]))).toBeNull();
    expect(await repaintMaskFromAlpha(await png(1, 1, 6, [[0, 1, 2, 3, 255]]), true)).toBeNull();
  });

  it('refuses what it cannot read', async () => {
    await expect(decodePngAlpha(new Uint8Array(40))).rejects.toBeInstanceOf(PngError);
    const interlaced = await png(1, 1, 6, [[0, 0, 0, 0, 0]]);
    interlaced[28] = 1;
    await expect(decodePngAlpha(interlaced)).rejects.toThrow(/interlaced/);
    expect((await encodeGrayPng(1, 1, new Uint8Array([7]))).subarray(0, 8)).toEqual(new Uint8Array(SIG));
  });
});
