// The explicit limits of the public API. Deployments may tighten them (e.g. a smaller pixel budget).

export interface InputLimits {
  /** Smallest and largest width/height in pixels (both multiples of 8). */
  minSide: number;
  maxSide: number;
  /** Largest width * height. */
  maxPixels: number;
  maxSteps: number;
  maxOutputs: number;
  maxGuidance: number;
  /** Largest decoded size of an image or mask given as a data URI. */
  maxImageBytes: number;
  /** Longest prompt or negative prompt, in characters. */
  maxPromptChars: number;
  /** The model's native width and height, which an input without width/height gets (counted in maxPixels). */
  nativeSide?: number;
  /**
   * What width and height must be multiples of (default 8, the VAE's factor): more when the model's U-Net needs it,
   * 8 x 2 per upsampler (16 for the embedded model, 64 for SD 1.x/2.x), which its runner refuses otherwise.
   */
  sideMultiple?: number;
}

/** What width and height must be multiples of when a model says nothing (the VAE's factor). */
export const DEFAULT_SIDE_MULTIPLE = 8;

/** What an unknown model's native side is taken to be (SD 1.x's 512). */
export const DEFAULT_NATIVE_SIDE = 512;

export const DEFAULT_LIMITS: Readonly<InputLimits> = Object.freeze({
  minSide: 64,
  maxSide: 2048,
  maxPixels: 1024 * 1024,
  maxSteps: 150,
  maxOutputs: 4,
  maxGuidance: 30,
  maxImageBytes: 10 * 1024 * 1024,
  maxPromptChars: 10_000,
});

export const MAX_SEED = 4_294_967_295;
