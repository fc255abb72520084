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

/**
 * How much of the generated image shows at each output pixel (1 = repaint, 0 = keep the input): the binarized mask
 * with its edge softened by a Gaussian blur, as AUTOMATIC1111's mask_blur (4 px at 512x512, scaled with the image)
 * before it overlays the input. The kernel stops at 3 sigma, so pixels farther than that from the mask are exactly 0.
 */
export function overlayWeights(mask: Uint8Array, width: number, height: number): Float32Array {
  const sigma = Math.max(1, Math.min(width, height) / 128);
  const radius = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const sum = kernel.reduce((a, b) => a + b, 0);
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  const binary = new Float32Array(width * height);
  for (let p = 0; p < binary.length; p++) binary[p] = mask[p] / 255 >= 0.5 ? 1 : 0;
  // Separable: rows, then columns; edges clamp (a mask touching the border stays full there).
  const rows = new Float32Array(binary.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++)
        acc += kernel[k + radius] * binary[y * width + Math.min(width - 1, Math.max(0, x + k))];
      rows[y * width + x] = acc;
    }
  }
  const out = new Float32Array(binary.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++)
        acc += kernel[k + radius] * rows[Math.min(height - 1, Math.max(0, y + k)) * width + x];
      out[y * width + x] = Math.min(1, acc);
    }
  }
  return out;
}

/** The input's pixels over the generated ones where the mask keeps them (uint8 HWC RGB, same size): the final image. */
export function overlayInput(generated: Uint8Array, input: Uint8Array, weights: Float32Array): Uint8Array {
  const out = new Uint8Array(generated.length);
  for (let p = 0; p < weights.length; p++) {
    const repaint = weights[p];
    for (let ch = 0; ch < 3; ch++) {
      const i = p * 3 + ch;
      out[i] = Math.round(repaint * generated[i] + (1 - repaint) * input[i]);
    }
  }
  return out;
}
