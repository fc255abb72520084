// VAE: decode latents to images (one at a time by default, as the reference does) and encode images to
// scaled latents for img2img/inpainting. Arithmetic mirrors numpy float32 so the goldens match bit for bit.
import type { SdModel } from '../model/sd-model.ts';

/** latents [n, C, h, w] → decoded float32 [n, 3, 8h, 8w], unclipped. Scaling by 1/scaling_factor happens here. */
export async function decodeLatents(
  model: SdModel,
  latents: Float32Array,
  shape: readonly [number, number, number, number],
  options: { batched?: boolean } = {},
): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  const [numImages, channels, latentHeight, latentWidth] = shape;
  // The ONNX pipeline computes `1 / 0.18215 * latents` in numpy: the reciprocal rounded to float32, then a product.
  const inverseScale = Math.fround(1 / model.io.vaeScalingFactor);
  const input = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) input[i] = latents[i] * inverseScale;
  const itemSize = channels * latentHeight * latentWidth;
  const chunk = options.batched ? numImages : 1;
  const parts: Float32Array[] = [];
  let outShape: number[] = [];
  for (let b = 0; b < numImages; b += chunk) {
    const count = Math.min(chunk, numImages - b);
    const feed = {
      data: input.subarray(b * itemSize, (b + count) * itemSize),
      dims: [count, channels, latentHeight, latentWidth],
    };
    const out = (await model.vaeDecoder.run({ [model.io.vaeDecoder.input]: feed }, [model.io.vaeDecoder.output]))[
      model.io.vaeDecoder.output
    ];
    parts.push(out.data);
    outShape = out.dims;
  }
  if (outShape[1] !== 3)
    throw new Error(`${model.vaeDecoder.path}: decoder returned [${outShape.join(', ')}], expected 3 channels`);
  const data = parts.length === 1 ? parts[0] : concat(parts);
  return { data, shape: [numImages, 3, outShape[2], outShape[3]] };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * pixels [n, 3, H, W] in [-1, 1] → scaling_factor * posterior mean, [n, C, H/8, W/8].
 * The diffusers script's encoder returns a posterior sample (C channels); optimum's returns the
 * posterior parameters (2C channels: mean, logvar), of which the mean is taken.
 */
export async function encodeImage(
  model: SdModel,
  pixels: Float32Array,
  shape: readonly [number, number, number, number],
): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  const encoder = model.vaeEncoder;
  const io = model.io.vaeEncoder;
  if (!encoder || !io)
    throw new Error(`img2img and inpainting need ${model.files.dir}/vae_encoder/model.onnx, which this model lacks`);
  const out = (await encoder.run({ [io.input]: { data: pixels, dims: [...shape] } }, [io.output]))[io.output];
  const [n, channels, h, w] = out.dims;
  const c = model.io.latentChannels;
  if (channels !== c && channels !== 2 * c)
    throw new Error(`${encoder.path}: encoder returned ${channels} channels, expected ${c} or ${2 * c}`);
  const sf = Math.fround(model.io.vaeScalingFactor);
  const plane = h * w;
  const data = new Float32Array(n * c * plane);
  for (let b = 0; b < n; b++) {
    const src = b * channels * plane;
    for (let k = 0; k < c * plane; k++) data[b * c * plane + k] = out.data[src + k] * sf;
  }
  return { data, shape: [n, c, h, w] };
}

/** uint8 HWC RGB → float32 CHW in [-1, 1], as `2 * (x / 255) - 1` in float32. */
export function rgbToUnitRange(rgb: Uint8Array, width: number, height: number, out: Float32Array, offset = 0): void {
  const plane = width * height;
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) out[offset + ch * plane + p] = Math.fround(2 * Math.fround(rgb[p * 3 + ch] / 255)) - 1;
  }
}

/** Decoder output [3, H, W] → uint8 HWC: clip(x / 2 + 0.5, 0, 1) * 255, rounded half to even (numpy's round). */
export function toUint8Rgb(decoded: Float32Array, width: number, height: number, offset = 0): Uint8Array {
  const plane = width * height;
  const out = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) {
      let v = Math.fround(Math.fround(decoded[offset + ch * plane + p] / 2) + 0.5);
      v = Math.min(Math.max(v, 0), 1);
      out[p * 3 + ch] = roundHalfEven(Math.fround(v * 255));
    }
  }
  return out;
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
