// Writes the seeded-random model (the SD 1.x architecture at small size, seeded weights, our own vocabulary) and its
// export variants in the diffusers ONNX layout, atomically into a cache. It draws noise: it exists so the loader and
// pipeline can be tested on every exporter's conventions with pinned bytes. The shipped model is in write-model.ts.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '@sd/shared/error-message';
import type { GraphBuilder, ModelOptions } from './graph-builder.ts';
import { buildTextEncoder, type TextEncoderSpec } from './text-encoder.ts';
import { buildUNet, type UNetSpec } from './unet.ts';
import { buildVaeDecoder, buildVaeEncoder, type VaeSpec } from './vae.ts';
import { buildDefaultVocabulary, EOS_TOKEN, tokenizerFiles } from './vocabulary.ts';
import { WeightGenerator } from './weights.ts';

export const RANDOM_MODEL_NAME = 'sd-random-v1';
/** Bump whenever the generator's output changes, so caches written by older code are rewritten (2: text hidden states). */
export const RANDOM_MODEL_GENERATOR_VERSION = 2;
export const RANDOM_MODEL_SEED = 20240601;
/** Written last; its presence (with the right version) means the folder is complete. */
export const COMPLETE_MARKER = '.embedded-model-complete.json';

const ONNX_OPTIONS: ModelOptions = {
  opset: 17,
  irVersion: 8,
  producerName: 'sd-embedded',
  producerVersion: String(RANDOM_MODEL_GENERATOR_VERSION),
};

const TEXT_HIDDEN = 64;
const UNET: UNetSpec = {
  inChannels: 4,
  outChannels: 4,
  blockOutChannels: [32, 64],
  // Attention only at the half-resolution level: at 512×512 the full level has 4096 tokens per image.
  attention: [false, true],
  layersPerBlock: 1,
  heads: 4,
  crossAttentionDim: TEXT_HIDDEN,
  normGroups: 8,
  normEps: 1e-5,
  outGain: 2,
};
const VAE: VaeSpec = {
  blockOutChannels: [32, 32, 64, 64],
  layersPerBlock: 1,
  latentChannels: 4,
  normGroups: 8,
  normEps: 1e-6,
  midBlockAttention: true,
  encoderOutGain: 5,
  decoderOutGain: 0.8,
};
const VAE_SCALING_FACTOR = 0.18215;

/** The repository root: this file is gpu-runner/src/default-model/random-model.ts. */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Where the model is cached unless the caller says otherwise: $SD_MODEL_CACHE, else <repo>/.cache/models. */
export function randomModelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SD_MODEL_CACHE || join(REPO_ROOT, '.cache', 'models');
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

function modelIndex(schedulerClass: string, inpainting: boolean) {
  const onnxModel = ['diffusers', 'OnnxRuntimeModel'];
  return {
    _class_name: inpainting ? 'OnnxStableDiffusionInpaintPipeline' : 'OnnxStableDiffusionPipeline',
    _diffusers_version: '0.31.0',
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', schedulerClass],
    text_encoder: onnxModel,
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: onnxModel,
    vae_decoder: onnxModel,
    vae_encoder: onnxModel,
  };
}

/** SD 1.x's own scheduler config (PNDM/PLMS; no timestep_spacing key, so each class keeps its default). */
const SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.31.0',
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  skip_prk_steps: true,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  steps_offset: 1,
  clip_sample: false,
};

function textEncoderConfig(spec: TextEncoderSpec, padTokenId: number) {
  return {
    architectures: ['CLIPTextModel'],
    model_type: 'clip_text_model',
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    max_position_embeddings: spec.maxPositions,
    hidden_act: 'quick_gelu',
    layer_norm_eps: spec.layerNormEps,
    bos_token_id: spec.bosTokenId,
    eos_token_id: spec.eosTokenId,
    pad_token_id: padTokenId,
    projection_dim: spec.hiddenSize,
  };
}

function unetConfig(spec: UNetSpec) {
  return {
    _class_name: 'UNet2DConditionModel',
    sample_size: 64,
    in_channels: spec.inChannels,
    out_channels: spec.outChannels,
    flip_sin_to_cos: true,
    freq_shift: 0,
    down_block_types: spec.attention.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    mid_block_type: 'UNetMidBlock2DCrossAttn',
    up_block_types: [...spec.attention].reverse().map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    block_out_channels: spec.blockOutChannels,
    layers_per_block: spec.layersPerBlock,
    downsample_padding: 1,
    act_fn: 'silu',
    norm_num_groups: spec.normGroups,
    norm_eps: spec.normEps,
    cross_attention_dim: spec.crossAttentionDim,
    // diffusers' SD 1.x naming quirk: attention_head_dim holds the number of heads.
    attention_head_dim: spec.heads,
    use_linear_projection: true,
    time_embedding_type: 'positional',
  };
}

function vaeConfig(spec: VaeSpec, encoderOutput: 'mean' | 'parameters') {
  const levels = spec.blockOutChannels.length;
  return {
    _class_name: 'AutoencoderKL',
    in_channels: 3,
    out_channels: 3,
    down_block_types: Array(levels).fill('DownEncoderBlock2D'),
    up_block_types: Array(levels).fill('UpDecoderBlock2D'),
    block_out_channels: spec.blockOutChannels,
    layers_per_block: spec.layersPerBlock,
    act_fn: 'silu',
    latent_channels: spec.latentChannels,
    norm_num_groups: spec.normGroups,
    sample_size: 512,
    scaling_factor: VAE_SCALING_FACTOR,
    use_quant_conv: true,
    use_post_quant_conv: true,
    mid_block_add_attention: spec.midBlockAttention,
    // Not part of the diffusers config: says this encoder outputs the posterior mean (or mean and logvar), not a sample.
    encoder_output: encoderOutput,
  };
}

export interface ModelFile {
  /** Path inside the model folder, '/'-separated. */
  path: string;
  data: Uint8Array;
}

/**
 * Export variants of the embedded model, for testing the loader and the pipeline on the conventions of other
 * exporters and model families. Every option left out keeps the default model's value, so no options at all
 * give exactly the default model's bytes; the same options always give the same bytes, and options that only
 * change an interface (dtypes, output form) leave every weight as it was.
 */
export interface ModelVariantOptions {
  /** 9 = an inpainting U-Net (latents + mask + masked-image latents). Default 4. */
  unetInChannels?: 4 | 9;
  /** float32 (diffusers script export) or int64 (optimum 1.x). Default float32. */
  timestepDtype?: 'float32' | 'int64';
  /** 'batch' = [batch] (default); 'scalar' = rank 0, as newer optimum declares it (`timestep: {}`). */
  timestepShape?: 'batch' | 'scalar';
  /** int32 (diffusers script, optimum 1.x) or int64 (newer optimum). Default int32. */
  inputIdsDtype?: 'int32' | 'int64';
  /** Text hidden size = the U-Net's cross_attention_dim (768 in SD 1.x, 1024 in SD 2.x). Default 64; a multiple of 4. */
  hiddenSize?: number;
  /** 'eos' as SD 1.x pads; '!' (id 0) as SD 2.x's tokenizer configs say. Default 'eos'. */
  padToken?: 'eos' | '!';
  /** 'latent_sample' = the posterior mean (default); 'latent_parameters' = mean and logvar, 2C channels (newer optimum). */
  vaeEncoderOutput?: 'latent_sample' | 'latent_parameters';
  /** false: the text encoder outputs only last_hidden_state and pooler_output (the diffusers script's export). Default true. */
  textHiddenStates?: boolean;
  /** Written as scheduler/scheduler_config.json instead of SD 1.x's own (whole, not merged); needs `_class_name`. */
  schedulerConfig?: Record<string, unknown>;
}

function checkVariant(o: ModelVariantOptions): void {
  if (o.unetInChannels !== undefined && o.unetInChannels !== 4 && o.unetInChannels !== 9) {
    throw new Error(`unetInChannels must be 4 or 9, got ${o.unetInChannels}`);
  }
  if (
    o.hiddenSize !== undefined &&
    !(Number.isInteger(o.hiddenSize) && o.hiddenSize >= 8 && o.hiddenSize <= 1024 && o.hiddenSize % 4 === 0)
  ) {
    throw new Error(`hiddenSize must be a multiple of 4 (the text encoder's heads) between 8 and 1024, got ${o.hiddenSize}`);
  }
  if (o.schedulerConfig !== undefined && typeof o.schedulerConfig._class_name !== 'string') {
    throw new Error(
      `schedulerConfig._class_name must be a scheduler class name, got ${JSON.stringify(o.schedulerConfig._class_name)}`,
    );
  }
}

/** Builds every file of the embedded model (or of one of its export variants) in memory (pure and deterministic). */
export function buildRandomModelFiles(options: ModelVariantOptions = {}): ModelFile[] {
  checkVariant(options);
  const vocab = buildDefaultVocabulary();
  const hidden = options.hiddenSize ?? TEXT_HIDDEN;
  const padToken = options.padToken === '!' ? '!' : EOS_TOKEN;
  const text: TextEncoderSpec = {
    vocabSize: vocab.tokens.length,
    hiddenSize: hidden,
    intermediateSize: hidden * 4,
    layers: 3,
    heads: 4,
    maxPositions: 77,
    layerNormEps: 1e-5,
    bosTokenId: vocab.bosTokenId,
    eosTokenId: vocab.eosTokenId,
    ...(options.inputIdsDtype ? { inputIdsDtype: options.inputIdsDtype } : {}),
    ...(options.textHiddenStates === false ? { hiddenStates: false } : {}),
  };
  const unet: UNetSpec = {
    ...UNET,
    inChannels: options.unetInChannels ?? UNET.inChannels,
    crossAttentionDim: hidden,
    ...(options.timestepDtype || options.timestepShape
      ? { timestep: { dtype: options.timestepDtype ?? 'float32', shape: options.timestepShape ?? 'batch' } }
      : {}),
  };
  const vae: VaeSpec = options.vaeEncoderOutput ? { ...VAE, encoderOutput: options.vaeEncoderOutput } : VAE;
  const encoderOutput = options.vaeEncoderOutput === 'latent_parameters' ? 'parameters' : 'mean';
  const scheduler = options.schedulerConfig ?? SCHEDULER_CONFIG;
  // Each network draws from its own seed, so changing one leaves the others' weights as they were.
  const graph = (b: GraphBuilder) => b.toBytes(ONNX_OPTIONS);
  const enc = new TextEncoder();
  const files: [string, Uint8Array | string][] = [
    ['model_index.json', json(modelIndex(scheduler._class_name as string, unet.inChannels !== unet.outChannels))],
    ['scheduler/scheduler_config.json', json(scheduler)],
    ...Object.entries(tokenizerFiles(vocab, { padToken })).map(([name, content]): [string, string] => [
      `tokenizer/${name}`,
      content,
    ]),
    ['text_encoder/config.json', json(textEncoderConfig(text, vocab.tokens.indexOf(padToken)))],
    ['text_encoder/model.onnx', graph(buildTextEncoder(text, new WeightGenerator(RANDOM_MODEL_SEED + 1)))],
    ['unet/config.json', json(unetConfig(unet))],
    ['unet/model.onnx', graph(buildUNet(unet, new WeightGenerator(RANDOM_MODEL_SEED + 2)))],
    ['vae_encoder/config.json', json(vaeConfig(vae, encoderOutput))],
    ['vae_encoder/model.onnx', graph(buildVaeEncoder(vae, new WeightGenerator(RANDOM_MODEL_SEED + 3)))],
    ['vae_decoder/config.json', json(vaeConfig(vae, encoderOutput))],
    ['vae_decoder/model.onnx', graph(buildVaeDecoder(vae, new WeightGenerator(RANDOM_MODEL_SEED + 4)))],
  ];
  return files.map(([path, data]) => ({ path, data: typeof data === 'string' ? enc.encode(data) : data }));
}

interface Marker {
  name: string;
  generatorVersion: number;
  sha256: string;
  /** Present only on a variant's folder, so ensureRandomModel never takes a variant for the default. */
  variant?: ModelVariantOptions;
}

async function readMarker(dir: string): Promise<Marker | null> {
  try {
    return JSON.parse(await readFile(join(dir, COMPLETE_MARKER), 'utf8')) as Marker;
  } catch {
    return null;
  }
}

function isCurrent(marker: Marker | null): boolean {
  return marker?.name === RANDOM_MODEL_NAME && marker.generatorVersion === RANDOM_MODEL_GENERATOR_VERSION && !marker.variant;
}

/**
 * Writes the model files (of the default model, or of a variant) into `dir` (created if needed), the completion
 * marker last. ensureRandomModel caches only the default; variants are for tests that write to their own folders.
 */
export async function writeRandomModel(dir: string, options: ModelVariantOptions = {}): Promise<void> {
  const hash = createHash('sha256');
  for (const file of buildRandomModelFiles(options)) {
    const target = join(dir, ...file.path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.data);
    hash.update(file.path).update(file.data);
  }
  const marker: Marker = {
    name: RANDOM_MODEL_NAME,
    generatorVersion: RANDOM_MODEL_GENERATOR_VERSION,
    sha256: hash.digest('hex'),
    ...(Object.keys(options).length > 0 ? { variant: options } : {}),
  };
  await writeFile(join(dir, COMPLETE_MARKER), json(marker));
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Returns the folder of the embedded default model under `cacheDir`, writing it first if it is missing or
 * was written by another generator version. The model is written into a temporary sibling and renamed
 * into place, so a concurrent reader (another process, too) never sees a half-written model.
 */
export function ensureRandomModel(cacheDir: string = randomModelCacheDir()): Promise<string> {
  const modelDir = join(cacheDir, RANDOM_MODEL_NAME);
  let pending = inFlight.get(modelDir);
  if (!pending) {
    pending = ensureAt(cacheDir, modelDir).finally(() => inFlight.delete(modelDir));
    inFlight.set(modelDir, pending);
  }
  return pending;
}

async function ensureAt(cacheDir: string, modelDir: string): Promise<string> {
  if (isCurrent(await readMarker(modelDir))) return modelDir;
  await mkdir(cacheDir, { recursive: true });
  const suffix = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(cacheDir, `.${RANDOM_MODEL_NAME}.tmp-${suffix()}`);
  try {
    await writeRandomModel(tmp);
    // Two attempts: the second after moving an outdated or broken folder out of the way.
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(tmp, modelDir);
        return modelDir;
      } catch (err) {
        // Another writer (maybe another process) won the race: use its model if it is complete.
        if (isCurrent(await readMarker(modelDir))) return modelDir;
        if (attempt > 0) throw new Error(`cannot write the embedded model to ${modelDir}: ${errorMessage(err)}`);
        const stale = `${modelDir}.stale-${suffix()}`;
        await rename(modelDir, stale).then(
          () => rm(stale, { recursive: true, force: true }),
          () => undefined, // already gone: the retry will tell
        );
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
