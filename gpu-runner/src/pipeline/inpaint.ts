// Inpainting inputs: the mask at latent resolution (binarized; white = repaint) and the masked image,
// as diffusers' StableDiffusionInpaintPipeline prepares them.

/** Grayscale mask [H, W] (0..255) → binary float mask [h, w] at latent size, nearest-neighbour like F.interpolate. */
export function maskToLatent(mask: Uint8Array, width: number, height: number, factor: number): Float32Array {
  const h = height / factor;
  const w = width / factor;
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    // torch's 'nearest' picks floor(dst * scale) of the source.
    const sy = Math.floor(y * factor);
    for (let x = 0; x < w; x++) out[y * w + x] = mask[sy * width + Math.floor(x * factor)] / 255 >= 0.5 ? 1 : 0;
  }
  return out;
}

/** Pixels [3, H, W] in [-1, 1] with the repaint region (mask >= 0.5) set to 0, as diffusers' `image * (mask < 0.5)`. */
export function maskImage(pixels: Float32Array, mask: Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(pixels.length);
  for (let ch = 0; ch < 3; ch++) {
    for (let p = 0; p < plane; p++) out[ch * plane + p] = mask[p] / 255 >= 0.5 ? 0 : pixels[ch * plane + p];
  }
  return out;
}
