// Where random noise comes from: the interface the schedulers and the pipeline draw through (torch-generator.ts
// draws it exactly as torch.randn does; tests may inject stored noise instead).

/** A source of standard-normal noise, drawn the way torch.randn draws it from one or more CPU generators. */
export interface NoiseSource {
  /** Draws a fresh tensor of this shape (the latents' shape, [batch, C, h, w]). */
  randn(shape: readonly number[]): Float32Array;
}
