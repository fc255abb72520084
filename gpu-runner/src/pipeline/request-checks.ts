// The pipeline's own input checks, before any work (diffusers' check_inputs): every message names the field,
// the limit and the value. The HTTP layer validates the public schema first; these guard direct callers too.
import type { Float32Tensor, GenerateRequest, LatentShape } from './types.ts';
import { InvalidRequestError } from './types.ts';

/** The VAE's factor: every width and height is a multiple of it. */
const VAE_SIDE_MULTIPLE = 8;

/**
 * What width and height must be multiples of for this U-Net (unet/config.json): the VAE's 8 times 2 per upsampler
 * (one fewer than its up blocks). An ONNX export traces diffusers' U-Net at one size, so its upsamplers always double
 * instead of matching the skip connection's size: a latent side they cannot halve evenly breaks the skip's Concat.
 * 16 for the embedded model, 64 for SD 1.x/2.x; 8 when the export has no config to tell.
 */
export function sideMultipleOf(unetConfig: Record<string, unknown> | null): number {
  const blocks = unetConfig?.up_block_types ?? unetConfig?.block_out_channels;
  if (!Array.isArray(blocks) || blocks.length < 1) return VAE_SIDE_MULTIPLE;
  return VAE_SIDE_MULTIPLE * 2 ** (blocks.length - 1);
}

/** Why a width or height is refused (not an integer multiple of `multiple` in 64..2048), or null. */
export function sideProblem(name: string, value: number, multiple = VAE_SIDE_MULTIPLE): string | null {
  if (Number.isInteger(value) && value % multiple === 0 && value >= 64 && value <= 2048) return null;
  const forModel = multiple === VAE_SIDE_MULTIPLE ? '' : ' for this model (its U-Net needs it)';
  return `${name} must be a multiple of ${multiple} between 64 and 2048${forModel}, got ${value}`;
}

export function checkRequest(request: GenerateRequest, numOutputs: number, sideMultiple = VAE_SIDE_MULTIPLE): void {
  for (const [name, value] of [
    ['width', request.width],
    ['height', request.height],
  ] as const) {
    const problem = sideProblem(name, value, sideMultiple);
    if (problem) refuse(problem);
  }
  if (!Number.isInteger(request.steps) || request.steps < 1 || request.steps > 500)
    refuse(`steps must be an integer between 1 and 500, got ${request.steps}`);
  if (!Number.isFinite(request.guidanceScale) || request.guidanceScale < 0)
    refuse(`guidanceScale must be a finite number >= 0, got ${request.guidanceScale}`);
  if (request.guidanceEnd !== undefined && !(request.guidanceEnd >= 0 && request.guidanceEnd <= 1))
    refuse(`guidanceEnd must be between 0 and 1, got ${request.guidanceEnd}`);
  if (!Number.isSafeInteger(request.seed) || request.seed < 0) refuse(`seed must be a non-negative integer, got ${request.seed}`);
  if (!Number.isInteger(numOutputs) || numOutputs < 1 || numOutputs > 16)
    refuse(`numOutputs must be an integer between 1 and 16, got ${numOutputs}`);
  if (request.strength !== undefined && !(request.strength >= 0 && request.strength <= 1))
    refuse(`strength must be between 0 and 1, got ${request.strength}`);
  if (request.mask && !request.image) refuse('mask needs an image to inpaint');
}

/** The caller's own start noise must have the latents' shape. */
export function checkInitLatents(initLatents: Float32Array, shape: LatentShape): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (initLatents.length !== size)
    refuse(`initLatents must hold [${shape.join(', ')}] = ${size} values, got ${initLatents.length}`);
}

/** Given embeddings (the edge's cache) must fit this text encoder: [1, tokens, hidden], cond and uncond alike. */
export function checkGivenEmbeddings(
  given: { cond: Float32Tensor; uncond?: Float32Tensor },
  guided: boolean,
  hidden: number | null,
): void {
  if (guided && !given.uncond) refuse('embeddings.uncond is required when guidance_scale > 1');
  checkEmbedding('embeddings.cond', given.cond, hidden);
  if (given.uncond) checkEmbedding('embeddings.uncond', given.uncond, hidden);
  if (guided && given.uncond && given.uncond.shape[1] !== given.cond.shape[1]) {
    refuse(`embeddings.uncond has ${given.uncond.shape[1]} tokens, embeddings.cond ${given.cond.shape[1]}; they must match`);
  }
}

function checkEmbedding(name: string, tensor: Float32Tensor, hidden: number | null): void {
  const [batch, tokens, width] = tensor.shape;
  const fits =
    tensor.shape.length === 3 &&
    batch === 1 &&
    tokens > 0 &&
    (hidden === null || width === hidden) &&
    tensor.data.length === batch * tokens * width;
  if (!fits) {
    refuse(
      `${name} must be float32 [1, tokens, ${hidden ?? 'hidden'}] with matching data, got shape [${tensor.shape.join(', ')}] and ${tensor.data.length} values`,
    );
  }
}

function refuse(message: string): never {
  throw new InvalidRequestError(message);
}
