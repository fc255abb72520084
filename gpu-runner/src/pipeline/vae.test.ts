import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff, readReferenceJson, referenceDir, referenceSkipReason, toFloat32 } from '../../../test/support/reference.ts';
import { loadSdModel, type SdModel } from '../model/sd-model.ts';
import type { GoldenCase } from './golden-cases.ts';
import { decodeLatents, encodeImage, rgbToUnitRange, toUint8Rgb } from './vae.ts';

// Golden: ../shared/reference/pipeline/*.json (diffusers ONNX pipeline); tolerances from its README:
// decoded image abs 1e-4, uint8 ±1, VAE encoder output abs 1e-4.
describe.skipIf(!referenceDir)(`VAE decode/encode and post-processing vs goldens${referenceSkipReason}`, () => {
  let model: SdModel;
  let txt: GoldenCase;
  let img: GoldenCase;
  beforeAll(async () => {
    model = await loadSdModel(join(referenceDir!, 'tiny-sd'), { intraOpNumThreads: 1 });
    txt = readReferenceJson<GoldenCase>('pipeline', 'txt2img_ddim10_redcube.json');
    img = readReferenceJson<GoldenCase>('pipeline', 'img2img_ddim10_s0.6_redcube.json');
  });
  afterAll(() => model?.release());

  it('decodes the final latents and quantizes like numpy', async () => {
    const dec = await decodeLatents(model, toFloat32(txt.final_latents), [1, 4, 8, 8]);
    expect(dec.shape).toEqual([1, 3, 64, 64]);
    expect(maxAbsDiff(dec.data, txt.decoded_image.data)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(toUint8Rgb(dec.data, 64, 64), txt.image_uint8_nhwc.data)).toBeLessThanOrEqual(1);
    // From the stored decoder output itself, quantization must be exact.
    expect(maxAbsDiff(toUint8Rgb(toFloat32(txt.decoded_image), 64, 64), txt.image_uint8_nhwc.data)).toBe(0);
  });

  it('decodes a batch one image at a time or in one call with the same result', async () => {
    const l = toFloat32(txt.final_latents);
    const two = new Float32Array(l.length * 2);
    two.set(l);
    two.set(l, l.length);
    const a = await decodeLatents(model, two, [2, 4, 8, 8]);
    const b = await decodeLatents(model, two, [2, 4, 8, 8], { batched: true });
    expect(a.shape).toEqual([2, 3, 64, 64]);
    expect(maxAbsDiff(a.data, b.data)).toBeLessThanOrEqual(1e-5);
  });

  it('encodes the init image to scaled latents', async () => {
    const px = new Float32Array(3 * 64 * 64);
    rgbToUnitRange(Uint8Array.from(img.init_image_uint8_hwc!.data), 64, 64, px);
    const enc = await encodeImage(model, px, [1, 3, 64, 64]);
    expect(enc.shape).toEqual([1, 4, 8, 8]);
    expect(maxAbsDiff(enc.data, img.init_latents_scaled!.data)).toBeLessThanOrEqual(1e-4);
  });
});

describe('toUint8Rgb', () => {
  it('clips and rounds half to even', () => {
    // x/2+0.5 = 0.5 → 127.5 → 128 (even); values outside [-1,1] clip.
    const d = Float32Array.from([0, 3, -3]);
    expect(Array.from(toUint8Rgb(d, 1, 1))).toEqual([128, 255, 0]);
  });
});
