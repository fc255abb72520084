// AUTOMATIC1111's txt2img / img2img request bodies, mapped onto our prediction input: its names and defaults
// (steps 50, cfg_scale 7, sampler "Euler", seed -1 = random, batch_size x n_iter), one prediction per iteration.
// Pure: the routes add the I/O. Fields A1111 accepts that change nothing here (save_images, s_churn, ...) are ignored
// as A1111 ignores unknown ones; features we cannot render (hires fix, face restoration, scripts) are refused.

import { DomainError, invalidInput } from '@sd/shared/domain-error';
import { MAX_SEED } from '@sd/shared/schemas/limits';
import { z } from 'zod';
import { type EdgeConfig, type ModelConfig, resolveModel } from '../../config.ts';
import { normalizeImageString } from '../../images/image-data.ts';
import { chooseSampler } from './a1111-samplers.ts';

export type A1111Mode = 'txt2img' | 'img2img';

/** At most this many iterations (n_iter) per request: each is a prediction, run one after the other as A1111 does. */
export const MAX_ITERATIONS = 8;

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : (JSON.stringify(v) ?? String(v)));
const int = (field: string) =>
  z.number({ error: (iss) => `${field} must be an integer, got ${show(iss.input)}` }).int({
    error: (iss) => `${field} must be an integer, got ${show(iss.input)}`,
  });
const num = (field: string) => z.number({ error: (iss) => `${field} must be a number, got ${show(iss.input)}` });
const str = (field: string) => z.string({ error: (iss) => `${field} must be a string, got ${show(iss.input)}` });
const flag = (field: string) =>
  z.union([z.boolean(), z.literal(0), z.literal(1)], {
    error: (iss) => `${field} must be a boolean, got ${show(iss.input)}`,
  });

/** The fields we read, with A1111's types; every other field passes through untouched (and unused). */
const A1111Schema = z.looseObject({
  prompt: str('prompt').nullish(),
  negative_prompt: str('negative_prompt').nullish(),
  styles: z.array(z.string()).nullish(),
  seed: int('seed').nullish(),
  subseed: int('subseed').nullish(),
  subseed_strength: num('subseed_strength').nullish(),
  seed_resize_from_h: int('seed_resize_from_h').nullish(),
  seed_resize_from_w: int('seed_resize_from_w').nullish(),
  sampler_name: str('sampler_name').nullish(),
  sampler_index: str('sampler_index').nullish(),
  scheduler: str('scheduler').nullish(),
  batch_size: int('batch_size').nullish(),
  n_iter: int('n_iter').nullish(),
  steps: int('steps').nullish(),
  cfg_scale: num('cfg_scale').nullish(),
  width: int('width').nullish(),
  height: int('height').nullish(),
  restore_faces: flag('restore_faces').nullish(),
  tiling: flag('tiling').nullish(),
  enable_hr: flag('enable_hr').nullish(),
  denoising_strength: num('denoising_strength').nullish(),
  override_settings: z.record(z.string(), z.unknown(), { error: 'override_settings must be an object' }).nullish(),
  refiner_checkpoint: str('refiner_checkpoint').nullish(),
  script_name: str('script_name').nullish(),
  alwayson_scripts: z.record(z.string(), z.unknown(), { error: 'alwayson_scripts must be an object' }).nullish(),
  send_images: flag('send_images').nullish(),
  init_images: z.array(str('init_images[]'), { error: 'init_images must be a list of base64 images' }).nullish(),
  mask: str('mask').nullish(),
  inpainting_mask_invert: z.union([z.literal(0), z.literal(1), z.boolean()]).nullish(),
  include_init_images: flag('include_init_images').nullish(),
});
type A1111Body = z.infer<typeof A1111Schema>;

/** A1111's defaults for the fields it echoes in `parameters` (modules/api/models.py and StableDiffusionProcessing). */
const COMMON_DEFAULTS = {
  prompt: '',
  negative_prompt: '',
  styles: null,
  seed: -1,
  subseed: -1,
  subseed_strength: 0,
  seed_resize_from_h: -1,
  seed_resize_from_w: -1,
  sampler_name: null,
  scheduler: null,
  batch_size: 1,
  n_iter: 1,
  steps: 50,
  cfg_scale: 7,
  width: 512,
  height: 512,
  restore_faces: null,
  tiling: null,
  do_not_save_samples: false,
  do_not_save_grid: false,
  eta: null,
  denoising_strength: null,
  s_min_uncond: null,
  s_churn: null,
  s_tmax: null,
  s_tmin: null,
  s_noise: null,
  override_settings: null,
  override_settings_restore_afterwards: true,
  refiner_checkpoint: null,
  refiner_switch_at: null,
  disable_extra_networks: false,
  comments: null,
  sampler_index: 'Euler',
  script_name: null,
  script_args: [],
  send_images: true,
  save_images: false,
  alwayson_scripts: {},
} as const;

const TXT2IMG_DEFAULTS = {
  ...COMMON_DEFAULTS,
  enable_hr: false,
  firstphase_width: 0,
  firstphase_height: 0,
  hr_scale: 2,
  hr_upscaler: null,
  hr_second_pass_steps: 0,
  hr_resize_x: 0,
  hr_resize_y: 0,
  hr_checkpoint_name: null,
  hr_sampler_name: null,
  hr_scheduler: null,
  hr_prompt: '',
  hr_negative_prompt: '',
} as const;

const IMG2IMG_DEFAULTS = {
  ...COMMON_DEFAULTS,
  denoising_strength: 0.75,
  init_images: null,
  resize_mode: 0,
  image_cfg_scale: null,
  mask: null,
  mask_blur_x: 4,
  mask_blur_y: 4,
  mask_blur: null,
  inpainting_fill: 0,
  inpaint_full_res: true,
  inpaint_full_res_padding: 0,
  inpainting_mask_invert: 0,
  initial_noise_multiplier: null,
  latent_mask: null,
  include_init_images: false,
} as const;

/** Our input fields as A1111 names them, for errors that come back from the prediction input schema. */
export const A1111_FIELD_NAMES: Readonly<Record<string, string>> = {
  'input.prompt': 'prompt',
  'input.negative_prompt': 'negative_prompt',
  'input.num_inference_steps': 'steps',
  'input.guidance_scale': 'cfg_scale',
  'input.num_outputs': 'batch_size',
  'input.width': 'width',
  'input.height': 'height',
  'input.strength': 'denoising_strength',
  'input.image': 'init_images',
  'input.mask': 'mask',
  'input.seed': 'seed',
  'input.clip_skip': 'override_settings.CLIP_stop_at_last_layers',
  'input.scheduler': 'sampler_name',
};

const OUR_NAMES: Readonly<Record<string, string>> = {
  num_inference_steps: 'steps',
  guidance_scale: 'cfg_scale',
  num_outputs: 'batch_size',
  strength: 'denoising_strength',
  image: 'init_images',
  clip_skip: 'CLIP_stop_at_last_layers',
};

/** Renames a validation issue from our field names to A1111's, message included. */
export function toA1111Issue(issue: { field: string; message: string }): { field: string; message: string } {
  const field = A1111_FIELD_NAMES[issue.field] ?? issue.field.replace(/^input\./, '');
  let message = issue.message;
  for (const [ours, theirs] of Object.entries(OUR_NAMES)) message = message.replace(new RegExp(`\\b${ours}\\b`, 'g'), theirs);
  return { field, message: message.includes(field) ? message : `${field}: ${message}` };
}

/** Fields that are mapped, or checked and refused unless at their default; every other field is logged as ignored. */
const APPLIED = new Set([
  'prompt',
  'negative_prompt',
  'seed',
  'subseed',
  'sampler_name',
  'sampler_index',
  'scheduler',
  'batch_size',
  'n_iter',
  'steps',
  'cfg_scale',
  'width',
  'height',
  'denoising_strength',
  'override_settings',
  'init_images',
  'mask',
  'send_images',
  'include_init_images',
  'restore_faces',
  'tiling',
  'enable_hr',
  'subseed_strength',
  'seed_resize_from_h',
  'seed_resize_from_w',
  'styles',
  'script_name',
  'alwayson_scripts',
  'refiner_checkpoint',
  'inpainting_mask_invert',
]);

export interface A1111Plan {
  mode: A1111Mode;
  model: ModelConfig;
  /** One prediction input per iteration (n_iter), each with batch_size outputs and its own first seed. */
  iterations: Record<string, unknown>[];
  /** The seed of every image, in order (A1111's all_seeds: seed + i). */
  seeds: number[];
  subseeds: number[];
  /** The request with A1111's defaults filled in, as A1111 echoes it in `parameters`. */
  parameters: Record<string, unknown>;
  /** What the response's `info` reports. */
  summary: {
    prompt: string;
    negativePrompt: string;
    sampler: string;
    schedule: string | null;
    steps: number;
    cfgScale: number;
    width: number;
    height: number;
    batchSize: number;
    denoisingStrength: number | null;
    clipSkip: number;
  };
  sendImages: boolean;
  /** Fields accepted and not applied (for the logs). */
  ignored: string[];
}

/** A model named like A1111 names checkpoints: our "owner/name:version" title, "owner/name", the version or the name. */
export function findModel(config: EdgeConfig, name: string): ModelConfig | null {
  const trimmed = name.trim();
  return (
    resolveModel(config, trimmed) ??
    config.models.find((m) => m.name === trimmed || `${m.id} [${m.version}]` === trimmed || modelTitle(m) === trimmed) ??
    null
  );
}

/** A1111's checkpoint title for a model. */
export function modelTitle(model: ModelConfig): string {
  return `${model.id}:${model.version}`;
}

function isOn(v: boolean | 0 | 1 | null | undefined): boolean {
  return v === true || v === 1;
}

/** Refuses what would render something other than what the caller asked for. */
function refuseUnsupported(body: A1111Body, mode: A1111Mode): void {
  const refuse = (field: string, message: string) => {
    throw invalidInput(field, message);
  };
  if (isOn(body.enable_hr) && mode === 'txt2img')
    refuse('enable_hr', 'enable_hr (hires fix) is not supported: request the final width and height directly');
  if (isOn(body.restore_faces)) refuse('restore_faces', 'restore_faces is not supported: there is no face restoration model');
  if (isOn(body.tiling)) refuse('tiling', 'tiling is not supported');
  if ((body.subseed_strength ?? 0) !== 0)
    refuse('subseed_strength', `subseed_strength must be 0 (variation seeds are not supported), got ${body.subseed_strength}`);
  if ((body.seed_resize_from_h ?? -1) > 0 || (body.seed_resize_from_w ?? -1) > 0)
    refuse('seed_resize_from_w', 'seed_resize_from_w/h are not supported: leave them at -1');
  if (body.styles && body.styles.length > 0)
    refuse('styles', `styles must be empty (there are no saved prompt styles), got ${JSON.stringify(body.styles)}`);
  if (body.script_name)
    refuse('script_name', `script_name must be empty (scripts are not supported), got ${show(body.script_name)}`);
  if (body.alwayson_scripts && Object.keys(body.alwayson_scripts).length > 0)
    refuse(
      'alwayson_scripts',
      `alwayson_scripts must be empty (extensions are not supported), got ${Object.keys(body.alwayson_scripts).join(', ')}`,
    );
  if (body.refiner_checkpoint && body.refiner_checkpoint !== 'None')
    refuse('refiner_checkpoint', 'refiner_checkpoint is not supported');
  if (mode === 'img2img' && isOn(body.inpainting_mask_invert))
    refuse(
      'inpainting_mask_invert',
      'inpainting_mask_invert must be 0: send the mask with white where the image is to be repainted',
    );
}

/**
 * Maps a txt2img or img2img body onto prediction inputs. `randomSeed` draws a seed for `seed: -1` (injected so the
 * mapping stays pure and testable). Throws a DomainError naming the A1111 field for anything it cannot take.
 */
export function planA1111Request(mode: A1111Mode, raw: unknown, config: EdgeConfig, randomSeed: () => number): A1111Plan {
  const parsed = A1111Schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const field = i.path.map(String).join('.') || '(body)';
      return { field, message: i.message.includes(field) ? i.message : `${field}: ${i.message}` };
    });
    throw new DomainError('invalid_input', issues.map((i) => i.message).join('; '), issues);
  }
  const body = parsed.data;
  refuseUnsupported(body, mode);
  const defaults = mode === 'txt2img' ? TXT2IMG_DEFAULTS : IMG2IMG_DEFAULTS;
  const ignored: string[] = [];

  const overrides = body.override_settings ?? {};
  let model = config.models[0];
  const checkpoint = overrides.sd_model_checkpoint;
  if (checkpoint !== undefined && checkpoint !== null && checkpoint !== '') {
    const found = typeof checkpoint === 'string' ? findModel(config, checkpoint) : null;
    if (!found) {
      throw invalidInput(
        'override_settings.sd_model_checkpoint',
        `override_settings.sd_model_checkpoint must be one of ${config.models.map(modelTitle).join(', ')}, got ${show(checkpoint)}`,
      );
    }
    model = found;
  }
  let clipSkip = model.clipSkip;
  const clip = overrides.CLIP_stop_at_last_layers;
  if (clip !== undefined && clip !== null) {
    if (typeof clip !== 'number' || !Number.isInteger(clip) || clip < 1 || clip > 12) {
      throw invalidInput(
        'override_settings.CLIP_stop_at_last_layers',
        `override_settings.CLIP_stop_at_last_layers must be an integer between 1 and 12, got ${show(clip)}`,
      );
    }
    clipSkip = clip;
  }
  for (const k of Object.keys(overrides)) {
    if (k !== 'sd_model_checkpoint' && k !== 'CLIP_stop_at_last_layers') ignored.push(`override_settings.${k}`);
  }

  const sampler = chooseSampler(body.sampler_name ?? body.sampler_index, body.scheduler);
  if (!sampler.ok) throw invalidInput(sampler.problem.field, sampler.problem.message);

  const batchSize = body.batch_size ?? defaults.batch_size;
  const nIter = body.n_iter ?? defaults.n_iter;
  if (batchSize < 1) throw invalidInput('batch_size', `batch_size must be at least 1, got ${batchSize}`);
  if (nIter < 1 || nIter > MAX_ITERATIONS)
    throw invalidInput('n_iter', `n_iter must be an integer between 1 and ${MAX_ITERATIONS}, got ${nIter}`);

  const requestedSeed = body.seed ?? -1;
  if (requestedSeed < -1 || requestedSeed > MAX_SEED)
    throw invalidInput('seed', `seed must be -1 (random) or an integer between 0 and ${MAX_SEED}, got ${requestedSeed}`);
  const seed = requestedSeed === -1 ? randomSeed() : requestedSeed;
  const total = batchSize * nIter;
  // A1111 numbers every image of the request from the one seed: image i gets seed + i.
  const seeds = Array.from({ length: total }, (_, i) => (seed + i) % (MAX_SEED + 1));
  const requestedSubseed = body.subseed ?? -1;
  const subseed = requestedSubseed === -1 ? randomSeed() : requestedSubseed;
  const subseeds = Array.from({ length: total }, (_, i) => (subseed + i) % (MAX_SEED + 1));

  const steps = body.steps ?? defaults.steps;
  const cfgScale = body.cfg_scale ?? defaults.cfg_scale;
  const width = body.width ?? defaults.width;
  const height = body.height ?? defaults.height;
  const prompt = body.prompt ?? '';
  const negativePrompt = body.negative_prompt ?? '';
  const base: Record<string, unknown> = {
    prompt,
    negative_prompt: negativePrompt,
    num_inference_steps: steps,
    guidance_scale: cfgScale,
    width,
    height,
    scheduler: sampler.choice.scheduler,
    num_outputs: batchSize,
  };
  // Only a clip skip that differs from the model's own goes into the input: the runner applies the model's by default.
  if (clipSkip !== model.clipSkip) base.clip_skip = clipSkip;

  let denoisingStrength: number | null = null;
  if (mode === 'img2img') {
    const images = body.init_images ?? [];
    if (images.length === 0) throw invalidInput('init_images', 'init_images must hold one base64 image, got none');
    if (images.length > 1)
      throw invalidInput(
        'init_images',
        `init_images must hold one image (batches of init images are not supported), got ${images.length}`,
      );
    base.image = normalizeImageString(images[0], 'init_images');
    if (body.mask) base.mask = normalizeImageString(body.mask, 'mask');
    denoisingStrength = body.denoising_strength ?? IMG2IMG_DEFAULTS.denoising_strength;
    base.strength = denoisingStrength;
  } else if (body.denoising_strength !== undefined && body.denoising_strength !== null) {
    // txt2img uses denoising_strength only for hires fix, which is off: A1111 ignores it too.
    ignored.push('denoising_strength');
  }

  for (const k of Object.keys(raw as Record<string, unknown>)) if (!APPLIED.has(k)) ignored.push(k);

  const iterations = Array.from({ length: nIter }, (_, k) => ({ ...base, seed: seeds[k * batchSize] }));

  const known = new Set(Object.keys(defaults));
  const parameters: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (known.has(k)) parameters[k] = v;
  if (mode === 'img2img' && !isOn(body.include_init_images)) {
    parameters.init_images = null;
    parameters.mask = null;
  }

  return {
    mode,
    model,
    iterations,
    seeds,
    subseeds,
    parameters,
    summary: {
      prompt,
      negativePrompt,
      sampler: sampler.choice.sampler,
      schedule: sampler.choice.schedule,
      steps,
      cfgScale,
      width,
      height,
      batchSize,
      denoisingStrength,
      clipSkip,
    },
    sendImages: body.send_images === undefined || body.send_images === null || isOn(body.send_images),
    ignored,
  };
}

/** A1111's `info`: the JSON string its clients parse for the seeds and settings that ran. */
export function a1111Info(plan: A1111Plan, extra: { jobTimestamp: string; predictionIds: string[] }): string {
  const s = plan.summary;
  const n = plan.seeds.length;
  const params: string[] = [
    `Steps: ${s.steps}`,
    `Sampler: ${s.sampler}`,
    ...(s.schedule ? [`Schedule type: ${s.schedule}`] : []),
    `CFG scale: ${s.cfgScale}`,
  ];
  const infotexts = plan.seeds.map((seed) => {
    const tail = [
      ...params,
      `Seed: ${seed}`,
      `Size: ${s.width}x${s.height}`,
      `Model: ${plan.model.id}`,
      ...(s.denoisingStrength !== null ? [`Denoising strength: ${s.denoisingStrength}`] : []),
      ...(s.clipSkip !== 1 ? [`Clip skip: ${s.clipSkip}`] : []),
    ].join(', ');
    return `${s.prompt}${s.negativePrompt ? `\nNegative prompt: ${s.negativePrompt}` : ''}\n${tail}`;
  });
  return JSON.stringify({
    prompt: s.prompt,
    all_prompts: Array(n).fill(s.prompt),
    negative_prompt: s.negativePrompt,
    all_negative_prompts: Array(n).fill(s.negativePrompt),
    seed: plan.seeds[0],
    all_seeds: plan.seeds,
    subseed: plan.subseeds[0],
    all_subseeds: plan.subseeds,
    subseed_strength: 0,
    width: s.width,
    height: s.height,
    sampler_name: s.sampler,
    cfg_scale: s.cfgScale,
    steps: s.steps,
    batch_size: s.batchSize,
    restore_faces: false,
    face_restoration_model: null,
    sd_model_name: plan.model.id,
    sd_model_hash: plan.model.version,
    sd_vae_name: null,
    sd_vae_hash: null,
    seed_resize_from_w: -1,
    seed_resize_from_h: -1,
    denoising_strength: s.denoisingStrength,
    extra_generation_params: s.schedule ? { 'Schedule type': s.schedule } : {},
    index_of_first_image: 0,
    infotexts,
    styles: [],
    job_timestamp: extra.jobTimestamp,
    clip_skip: s.clipSkip,
    is_using_inpainting_conditioning: plan.mode === 'img2img' && plan.iterations[0]?.mask !== undefined,
    version: 'sd-edge',
    prediction_ids: extra.predictionIds,
  });
}
