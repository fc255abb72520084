// The embedded default model: a small Stable Diffusion trained on generated scenes (gpu-runner/training/), shipped
// in the repository in the diffusers ONNX layout (gpu-runner/models/sd-embedded-v5, model card beside it).
// The seeded-random model the export-variant tests use is random-model.ts.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_MODEL_NAME = 'sd-embedded-v5';
/** The version string the edge serves it under (edge/wrangler.jsonc MODELS, the tokenizer's KV name). */
export const DEFAULT_MODEL_VERSION = 'embedded-v5';

/** gpu-runner/models/<name>; this file is gpu-runner/src/default-model/write-model.ts. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL(`../../models/${DEFAULT_MODEL_NAME}`, import.meta.url));

const REQUIRED = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'text_encoder/model.onnx',
  'unet/model.onnx',
  'unet/config.json',
  'vae_encoder/model.onnx',
  'vae_decoder/model.onnx',
];

/**
 * Returns the folder of the embedded default model. Nothing is written or downloaded: the model is part of the
 * repository; this only checks it is all there (a checkout without its weights fails here, naming the file).
 */
export async function ensureDefaultModel(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // A bundled runner (the container image) has no repository beside it: the image copies the folder and says where.
  const dir = env.SD_EMBEDDED_MODEL_DIR || DEFAULT_MODEL_DIR;
  for (const rel of REQUIRED) {
    try {
      await access(join(dir, rel));
    } catch {
      throw new Error(`the embedded model is incomplete: ${join(dir, rel)} is missing`);
    }
  }
  return dir;
}
