// OpenAI image requests as prediction inputs: any model name runs a configured model (the configured one when named,
// else the default), quality -> steps, style -> guidance, input_fidelity -> strength, output_compression ->
// output_quality; what cannot be honoured (transparent background, streaming) is refused by name. Pure.

import { invalidInput } from '@sd/shared/domain-error';
import type { ErrorIssue } from '@sd/shared/schemas/errors';
import type { OpenAIImageEditRequest, OpenAIImageRequest } from '@sd/shared/schemas/openai';
import { type EdgeConfig, type ModelConfig, resolveModel } from '../config.ts';

/** quality -> num_inference_steps; the ones not listed keep the input schema's default. */
export const QUALITY_STEPS: Readonly<Record<string, number>> = { low: 15, hd: 50, high: 50 };
/** style -> guidance_scale: vivid pushes the prompt harder (more saturated, more contrast); natural keeps the default. */
export const STYLE_GUIDANCE: Readonly<Record<string, number>> = { vivid: 9 };
/** input_fidelity -> strength for edits: high stays close to the input image. */
export const FIDELITY_STRENGTH: Readonly<Record<string, number>> = { high: 0.5 };

/** The model that runs: the configured one the request names, otherwise the default (OpenAI names map to it). */
export function modelFor(config: EdgeConfig, requested: string | undefined): { model: ModelConfig; mapped: boolean } {
  const named = requested ? resolveModel(config, requested) : null;
  return named ? { model: named, mapped: false } : { model: config.models[0], mapped: requested !== undefined };
}

// Prediction-input fields as the OpenAI request names them, so an error points at what the caller sent.
const FIELD_NAMES: Record<string, string> = {
  'input.num_outputs': 'n',
  'input.width': 'size',
  'input.height': 'size',
  'input.prompt': 'prompt',
  'input.image': 'image',
  'input.mask': 'mask',
  'input.output_quality': 'output_compression',
};

export function toOpenAIIssue(i: ErrorIssue): ErrorIssue {
  const field = FIELD_NAMES[i.field] ?? i.field.replace(/^input\./, '');
  const renamed = i.field === 'input.num_outputs' ? i.message.replace(/^num_outputs/, 'n') : i.message;
  // "width must be ..." alone would not say which request field to fix when the caller sent `size`.
  return { field, message: renamed.includes(field) ? renamed : `${field}: ${renamed}` };
}

function refuseUnsupported(req: OpenAIImageRequest | OpenAIImageEditRequest): void {
  if (req.background === 'transparent')
    throw invalidInput('background', 'background must be opaque or auto: transparent backgrounds are not supported');
  if (req.stream) throw invalidInput('stream', 'stream must be false: image responses are not streamed');
  if (req.partial_images)
    throw invalidInput('partial_images', `partial_images must be 0 (no streaming), got ${req.partial_images}`);
}

/** width and height from `size`; `auto` or absent = `fallback`. */
export function sizeOf(size: string | undefined, fallback: { width: number; height: number }): { width: number; height: number } {
  if (!size || size === 'auto') return fallback;
  const [width, height] = size.split('x').map(Number);
  return { width, height };
}

/** The prediction input for images.generate. */
export function generationInput(req: OpenAIImageRequest): Record<string, unknown> {
  refuseUnsupported(req);
  const { width, height } = sizeOf(req.size, { width: 512, height: 512 });
  const input: Record<string, unknown> = { prompt: req.prompt, num_outputs: req.n, width, height };
  applyCommon(req, input);
  const guidance = req.style ? STYLE_GUIDANCE[req.style] : undefined;
  if (req.guidance_scale === undefined && guidance !== undefined) input.guidance_scale = guidance;
  return input;
}

/** The prediction input for images.edit: image (and mask) already as data URIs, size defaulting to the image's. */
export function editInput(
  req: OpenAIImageEditRequest,
  images: { image: string; mask?: string; imageSize: { width: number; height: number } },
): Record<string, unknown> {
  refuseUnsupported(req);
  const { width, height } = sizeOf(req.size, images.imageSize);
  const input: Record<string, unknown> = { prompt: req.prompt, num_outputs: req.n, width, height, image: images.image };
  if (images.mask) input.mask = images.mask;
  applyCommon(req, input);
  const strength = req.strength ?? (req.input_fidelity ? FIDELITY_STRENGTH[req.input_fidelity] : undefined);
  if (strength !== undefined) input.strength = strength;
  return input;
}

function applyCommon(req: OpenAIImageRequest | OpenAIImageEditRequest, input: Record<string, unknown>): void {
  for (const key of ['negative_prompt', 'seed', 'num_inference_steps', 'guidance_scale', 'output_format'] as const) {
    if (req[key] !== undefined) input[key] = req[key];
  }
  const steps = req.quality ? QUALITY_STEPS[req.quality] : undefined;
  if (req.num_inference_steps === undefined && steps !== undefined) input.num_inference_steps = steps;
  if (req.output_compression !== undefined) input.output_quality = Math.max(1, req.output_compression);
}
