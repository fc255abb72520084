// Test support: reads the pipeline goldens in ../shared/reference/pipeline (format in that folder's README).
import type { RefTensor } from '../../../test/support/reference.ts';

export interface GoldenStep {
  i: number;
  t: number;
  unet_timestep: number;
  latent_model_input: RefTensor;
  unet_output: RefTensor;
  noise_pred: RefTensor;
  latents: RefTensor;
  noise: RefTensor | null;
}

export interface GoldenCase {
  name: string;
  kind: 'txt2img' | 'img2img';
  prompts: string[];
  negative_prompt: string | null;
  height: number;
  width: number;
  guidance_scale: number;
  num_inference_steps: number;
  scheduler_class: string;
  scheduler_config: Record<string, unknown>;
  text: { input_ids: RefTensor; prompt_embeds: RefTensor; negative_input_ids?: RefTensor; negative_prompt_embeds?: RefTensor };
  encoder_hidden_states: RefTensor;
  timesteps: RefTensor;
  initial_noise?: RefTensor;
  initial_latents?: RefTensor;
  init_image_png?: string;
  init_image_uint8_hwc?: RefTensor;
  strength?: number;
  noise?: RefTensor;
  noisy_latents?: RefTensor;
  init_latents_scaled?: RefTensor;
  steps: GoldenStep[];
  final_latents: RefTensor;
  decoded_image: RefTensor;
  image_uint8_nhwc: RefTensor;
}

export interface GoldenIndexEntry {
  name: string;
  kind: string;
  scheduler: string;
  steps: number;
  guidance_scale: number;
  seed: number;
}
