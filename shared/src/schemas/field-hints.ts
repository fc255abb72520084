// What to send instead of a field name other APIs use (AUTOMATIC1111, diffusers, OpenAI), for unknown-field errors.

export interface FieldHint {
  /** Our field, or a short instruction when there is no one-to-one field. */
  use: string;
  /** Whose name it is. */
  from: string;
}

/** Keyed by the foreign name; matched exactly (these names are case-sensitive in their own APIs too). */
export const FIELD_HINTS: Readonly<Record<string, FieldHint>> = {
  steps: { use: 'num_inference_steps', from: 'AUTOMATIC1111' },
  cfg_scale: { use: 'guidance_scale', from: 'AUTOMATIC1111' },
  sampler_name: { use: 'scheduler (e.g. "DPM++ 2M Karras")', from: 'AUTOMATIC1111' },
  sampler_index: { use: 'scheduler (e.g. "Euler a")', from: 'AUTOMATIC1111' },
  batch_size: { use: 'num_outputs', from: 'AUTOMATIC1111' },
  n_iter: { use: 'num_outputs (or POST /sdapi/v1/txt2img, which takes batch_size and n_iter)', from: 'AUTOMATIC1111' },
  denoising_strength: { use: 'strength', from: 'AUTOMATIC1111' },
  init_images: { use: 'image (one image: an https URL or a data URI)', from: 'AUTOMATIC1111' },
  override_settings: { use: 'clip_skip for CLIP_stop_at_last_layers, or POST /sdapi/v1/txt2img', from: 'AUTOMATIC1111' },
  num_images_per_prompt: { use: 'num_outputs', from: 'diffusers' },
  n: { use: 'num_outputs', from: 'OpenAI' },
  size: { use: 'width and height', from: 'OpenAI' },
};

/** "; use input.num_inference_steps (steps is AUTOMATIC1111's name)", or '' without a hint. */
export function unknownFieldHint(key: string, base: string): string {
  const hint = Object.hasOwn(FIELD_HINTS, key) ? FIELD_HINTS[key] : undefined;
  if (!hint) return '';
  const target = /^[a-z_]+$/.test(hint.use) && base ? `${base}.${hint.use}` : hint.use;
  return `; use ${target} (${key} is ${hint.from}'s name)`;
}
