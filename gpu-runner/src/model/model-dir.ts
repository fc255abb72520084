// Reads and validates a model directory in the diffusers ONNX layout (optimum-cli / diffusers export script):
// every missing or malformed file fails here, at load, with an error naming the file.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errorMessage } from '@sd/shared/error-message';
import type { SchedulerConfig } from '../schedulers/scheduler.ts';

export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`model file ${file}: ${detail}`);
  }
}

export interface TokenizerFiles {
  vocab: string;
  merges: string;
  tokenizerConfig?: string;
  specialTokensMap?: string;
}

export interface ModelDirectory {
  dir: string;
  modelIndex: Record<string, unknown>;
  schedulerConfig: SchedulerConfig;
  graphs: { textEncoder: string; unet: string; vaeDecoder: string; vaeEncoder: string | null };
  tokenizer: TokenizerFiles;
  /** From vae_decoder/config.json or vae/config.json when present, else SD 1.x's 0.18215. */
  vaeScalingFactor: number;
  /** unet/config.json when present (architecture hints only; the graph's metadata wins). */
  unetConfig: Record<string, unknown> | null;
  /** pipeline_defaults.json: how this model is best sampled when a request does not say (see readPipelineDefaults). */
  pipelineDefaults: PipelineDefaults;
}

/** The tasks a default can differ by: text to image, image to image, inpainting (the pipeline's task kinds). */
export const PIPELINE_TASKS = ['txt2img', 'img2img', 'inpaint'] as const;
export type PipelineTask = (typeof PIPELINE_TASKS)[number];

/**
 * Sampling defaults a model ships with, beside diffusers' own files (diffusers ignores the file): what its trainer
 * measured works best for it. Each applies only when a request leaves the setting out.
 */
export interface PipelineDefaults {
  /** Fraction of the denoising steps, from the first, that run with classifier-free guidance, per task (absent: 1). */
  guidanceEnd?: Partial<Record<PipelineTask, number>>;
}

export const DEFAULT_VAE_SCALING_FACTOR = 0.18215;

function requireFile(dir: string, rel: string): string {
  const path = join(dir, rel);
  if (!existsSync(path)) throw new ModelLoadError(path, 'is missing');
  const st = statSync(path);
  if (!st.isFile()) throw new ModelLoadError(path, 'is not a file');
  if (st.size === 0) throw new ModelLoadError(path, 'is empty');
  return path;
}

function readText(dir: string, rel: string): string {
  return readFileSync(requireFile(dir, rel), 'utf8');
}

function readJsonObject(dir: string, rel: string): Record<string, unknown> {
  const path = join(dir, rel);
  let value: unknown;
  try {
    value = JSON.parse(readText(dir, rel));
  } catch (err) {
    if (err instanceof ModelLoadError) throw err;
    throw new ModelLoadError(path, `is not valid JSON (${errorMessage(err)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ModelLoadError(path, 'must hold a JSON object');
  return value as Record<string, unknown>;
}

function optionalJsonObject(dir: string, rel: string): Record<string, unknown> | null {
  return existsSync(join(dir, rel)) ? readJsonObject(dir, rel) : null;
}

function optionalText(dir: string, rel: string): string | undefined {
  return existsSync(join(dir, rel)) ? readText(dir, rel) : undefined;
}

/** Reads everything except the graphs themselves (those are loaded by onnx-session.ts). */
export function readModelDirectory(dirArg: string): ModelDirectory {
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelLoadError(dir, 'model directory does not exist');

  const modelIndex = readJsonObject(dir, 'model_index.json');
  const schedulerConfig = readJsonObject(dir, 'scheduler/scheduler_config.json');
  if (typeof schedulerConfig.num_train_timesteps !== 'undefined' && typeof schedulerConfig.num_train_timesteps !== 'number') {
    throw new ModelLoadError(
      join(dir, 'scheduler/scheduler_config.json'),
      `num_train_timesteps must be a number, got ${JSON.stringify(schedulerConfig.num_train_timesteps)}`,
    );
  }

  const graphs = {
    textEncoder: requireFile(dir, 'text_encoder/model.onnx'),
    unet: requireFile(dir, 'unet/model.onnx'),
    vaeDecoder: requireFile(dir, 'vae_decoder/model.onnx'),
    // Optional: txt2img works without it; img2img and inpainting fail with a message naming it.
    vaeEncoder: existsSync(join(dir, 'vae_encoder/model.onnx')) ? requireFile(dir, 'vae_encoder/model.onnx') : null,
  };

  const vocab = readText(dir, 'tokenizer/vocab.json');
  try {
    const parsed: unknown = JSON.parse(vocab);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  } catch (err) {
    throw new ModelLoadError(join(dir, 'tokenizer/vocab.json'), `must be a JSON object of token -> id (${errorMessage(err)})`);
  }
  const merges = readText(dir, 'tokenizer/merges.txt');
  const tokenizer: TokenizerFiles = { vocab, merges };
  const tokenizerConfig = optionalText(dir, 'tokenizer/tokenizer_config.json');
  const specialTokensMap = optionalText(dir, 'tokenizer/special_tokens_map.json');
  if (tokenizerConfig !== undefined) {
    optionalJsonObject(dir, 'tokenizer/tokenizer_config.json');
    tokenizer.tokenizerConfig = tokenizerConfig;
  }
  if (specialTokensMap !== undefined) {
    optionalJsonObject(dir, 'tokenizer/special_tokens_map.json');
    tokenizer.specialTokensMap = specialTokensMap;
  }

  let vaeScalingFactor = DEFAULT_VAE_SCALING_FACTOR;
  for (const rel of ['vae_decoder/config.json', 'vae/config.json']) {
    const cfg = optionalJsonObject(dir, rel);
    if (cfg && cfg.scaling_factor !== undefined && cfg.scaling_factor !== null) {
      if (typeof cfg.scaling_factor !== 'number' || !(cfg.scaling_factor > 0)) {
        throw new ModelLoadError(
          join(dir, rel),
          `scaling_factor must be a positive number, got ${JSON.stringify(cfg.scaling_factor)}`,
        );
      }
      vaeScalingFactor = cfg.scaling_factor;
      break;
    }
  }

  return {
    dir,
    modelIndex,
    schedulerConfig,
    graphs,
    tokenizer,
    vaeScalingFactor,
    unetConfig: optionalJsonObject(dir, 'unet/config.json'),
    pipelineDefaults: readPipelineDefaults(dir),
  };
}

/**
 * pipeline_defaults.json: `{"guidance_end": 0.5}` for every task, or per task, e.g.
 * `{"guidance_end": {"txt2img": 0.5, "img2img": 0.5, "inpaint": 1}}` (a task left out: 1).
 */
function readPipelineDefaults(dir: string): PipelineDefaults {
  const file = optionalJsonObject(dir, 'pipeline_defaults.json');
  if (!file) return {};
  const path = join(dir, 'pipeline_defaults.json');
  const known = new Set(['guidance_end']);
  const unknown = Object.keys(file).filter((k) => !known.has(k) && !k.startsWith('_'));
  if (unknown.length > 0) throw new ModelLoadError(path, `unknown key(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
  const end = file.guidance_end;
  if (end === undefined) return {};
  const fraction = (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1))
      throw new ModelLoadError(path, `${name} must be a number between 0 and 1, got ${JSON.stringify(value)}`);
    return value;
  };
  if (typeof end !== 'object' || end === null || Array.isArray(end)) {
    const all = fraction(end, 'guidance_end');
    return { guidanceEnd: Object.fromEntries(PIPELINE_TASKS.map((task) => [task, all])) };
  }
  const perTask: Partial<Record<PipelineTask, number>> = {};
  for (const [task, value] of Object.entries(end)) {
    if (!(PIPELINE_TASKS as readonly string[]).includes(task))
      throw new ModelLoadError(path, `guidance_end has an unknown task ${task}; tasks: ${PIPELINE_TASKS.join(', ')}`);
    perTask[task as PipelineTask] = fraction(value, `guidance_end.${task}`);
  }
  return { guidanceEnd: perTask };
}
