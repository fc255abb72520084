// The prediction input: every generation parameter, its default and its limit. One schema for both sides.
import { z } from 'zod';
import { resolveSchedulerName, SCHEDULER_NAMES } from '../scheduler-names.ts';
import { DEFAULT_LIMITS, DEFAULT_NATIVE_SIDE, DEFAULT_SIDE_MULTIPLE, type InputLimits, MAX_SEED } from './limits.ts';

export const OUTPUT_FORMATS = ['png', 'webp', 'jpeg'] as const;
export const PROMPT_MODES = ['truncate', 'chunk'] as const;
/** CLIP ViT-L/14 (SD 1.x) has 12 text layers, OpenCLIP ViT-H (SD 2.x) 23 after diffusers drops the last one. */
export const MAX_CLIP_SKIP = 12;

const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

/** An integer field with an inclusive range; every failure names the field, the limit and the value. */
function intInRange(field: string, min: number, max: number, extra = '') {
  const msg = (iss: { input?: unknown }) =>
    `${field} must be an integer between ${min} and ${max}${extra}, got ${show(iss.input)}`;
  return z.number({ error: msg }).int({ error: msg }).min(min, { error: msg }).max(max, { error: msg });
}

function numberInRange(field: string, min: number, max: number) {
  const msg = (iss: { input?: unknown }) => `${field} must be a number between ${min} and ${max}, got ${show(iss.input)}`;
  return z.number({ error: msg }).min(min, { error: msg }).max(max, { error: msg });
}

function side(field: string, limits: InputLimits) {
  const multiple = limits.sideMultiple ?? DEFAULT_SIDE_MULTIPLE;
  const msg = (iss: { input?: unknown }) =>
    `${field} must be a multiple of ${multiple} between ${limits.minSide} and ${limits.maxSide}, got ${show(iss.input)}`;
  return z
    .number({ error: msg })
    .int({ error: msg })
    .min(limits.minSide, { error: msg })
    .max(limits.maxSide, { error: msg })
    .refine((v) => v % multiple === 0, { error: msg });
}

function text(field: string, limits: InputLimits) {
  return z.string({ error: (iss) => `${field} must be a string, got ${show(iss.input)}` }).max(limits.maxPromptChars, {
    error: (iss) =>
      `${field} must be at most ${limits.maxPromptChars} characters, got ${typeof iss.input === 'string' ? iss.input.length : '?'}`,
  });
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
  return `${n} bytes`;
}

const DATA_URI = /^data:(image\/(?:png|jpeg|jpg|webp));base64,([A-Za-z0-9+/=\s]*)$/;

/**
 * Plain http is taken only from loopback, where a local stack's own bucket serves its outputs (s3rver): the runner reads
 * those through its storage and refuses any other loopback address (its SSRF guard).
 */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** An input image: an https URL (http on loopback), or a data URI of a PNG, JPEG or WebP under the size cap. */
function imageRef(field: string, limits: InputLimits) {
  return z
    .string({ error: (iss) => `${field} must be an https URL or a data URI, got ${show(iss.input)}` })
    .superRefine((value, ctx) => {
      if (value.startsWith('data:')) {
        const m = DATA_URI.exec(value);
        if (!m) {
          ctx.addIssue({
            code: 'custom',
            message: `${field} must be a base64 data URI of image/png, image/jpeg or image/webp, got ${show(value.slice(0, 40))}`,
          });
          return;
        }
        const b64 = m[2].replace(/\s+/g, '');
        const bytes = Math.floor((b64.length * 3) / 4) - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
        if (bytes > limits.maxImageBytes) {
          ctx.addIssue({
            code: 'custom',
            message: `${field} must be at most ${formatBytes(limits.maxImageBytes)}, got ${formatBytes(bytes)}`,
          });
        }
        return;
      }
      let url: URL | null = null;
      try {
        url = new URL(value);
      } catch {
        url = null;
      }
      if (url?.protocol !== 'https:' && !(url?.protocol === 'http:' && LOOPBACK_HOST.test(url.hostname))) {
        ctx.addIssue({ code: 'custom', message: `${field} must be an https URL or a data URI, got ${show(value)}` });
      } else if (value.length > 4096) {
        ctx.addIssue({ code: 'custom', message: `${field} URL must be at most 4096 characters, got ${value.length}` });
      }
    });
}

const schedulerField = z
  .string({ error: (iss) => `scheduler must be a string, got ${show(iss.input)}` })
  .transform((value, ctx) => {
    const name = resolveSchedulerName(value);
    if (!name) {
      ctx.addIssue({
        code: 'custom',
        message: `scheduler must be one of ${SCHEDULER_NAMES.join(', ')} (or a known alias), got ${show(value)}`,
      });
      return z.NEVER;
    }
    return name;
  });

/** The fields of the input, for schemas that extend it (the runner's input). */
export function predictionInputFields(limits: InputLimits = DEFAULT_LIMITS) {
  return {
    prompt: text('prompt', limits),
    negative_prompt: text('negative_prompt', limits).optional(),
    /** Absent: the model's native size (its U-Net's sample_size x 8), chosen by the runner that has the model. */
    width: side('width', limits).optional(),
    height: side('height', limits).optional(),
    num_inference_steps: intInRange('num_inference_steps', 1, limits.maxSteps).default(25),
    guidance_scale: numberInRange('guidance_scale', 0, limits.maxGuidance).default(7.5),
    /**
     * Fraction of the denoising steps, from the first, that run with classifier-free guidance (diffusers' rule for
     * control_guidance_end); the rest use the prompt's prediction alone, at half the U-Net work. Absent: the model's
     * own default (1, guided throughout, unless the model ships another), chosen by the runner that has the model.
     */
    guidance_end: numberInRange('guidance_end', 0, 1).optional(),
    scheduler: schedulerField.optional(),
    seed: intInRange('seed', 0, MAX_SEED, ' (omit it or send null for a random seed)').nullish(),
    num_outputs: intInRange('num_outputs', 1, limits.maxOutputs).default(1),
    image: imageRef('image', limits).optional(),
    /** Absent: 0.8 for img2img, 1 for inpainting (as diffusers). */
    strength: numberInRange('strength', 0, 1).optional(),
    /** Replicate's stable-diffusion models call strength prompt_strength; the schema output carries it as strength. */
    prompt_strength: numberInRange('prompt_strength', 0, 1).optional(),
    mask: imageRef('mask', limits).optional(),
    output_format: z
      .enum(OUTPUT_FORMATS, { error: (iss) => `output_format must be one of png, webp, jpeg, got ${show(iss.input)}` })
      .default('png'),
    output_quality: intInRange('output_quality', 1, 100).default(80),
    prompt_mode: z
      .enum(PROMPT_MODES, { error: (iss) => `prompt_mode must be truncate or chunk, got ${show(iss.input)}` })
      .default('chunk'),
    prompt_weighting: z.boolean({ error: (iss) => `prompt_weighting must be a boolean, got ${show(iss.input)}` }).default(true),
    /**
     * Text-encoder layer to condition on, counted as AUTOMATIC1111 does: 1 = the last (default), 2 = the penultimate
     * (diffusers' clip_skip=1). A model whose text encoder cannot expose it refuses values above 1.
     */
    clip_skip: intInRange('clip_skip', 1, MAX_CLIP_SKIP).optional(),
    /**
     * Accepted for Replicate compatibility. There is no safety checker in this pipeline, so there is nothing to
     * disable: outputs are never filtered either way.
     */
    disable_safety_checker: z
      .boolean({ error: (iss) => `disable_safety_checker must be a boolean, got ${show(iss.input)}` })
      .optional(),
  };
}

/**
 * Folds prompt_strength (Replicate's name) into strength, so everything downstream reads one field. Both at once
 * with different values is refused in checkCrossFieldLimits.
 */
export function foldStrengthAlias<T extends { strength?: number; prompt_strength?: number }>(
  input: T,
): Omit<T, 'prompt_strength'> {
  const { prompt_strength, ...rest } = input;
  return prompt_strength === undefined || rest.strength !== undefined ? rest : { ...rest, strength: prompt_strength };
}

const objectError = (iss: { code?: string; keys?: string[] }) =>
  iss.code === 'unrecognized_keys' ? `unknown field(s): ${(iss.keys ?? []).join(', ')}` : 'input must be a JSON object';

/** Checks that involve more than one field. */
export function checkCrossFieldLimits(
  input: {
    width?: number;
    height?: number;
    image?: string;
    mask?: string;
    strength?: number;
    prompt_strength?: number;
    num_inference_steps: number;
  },
  ctx: z.RefinementCtx,
  limits: InputLimits,
): void {
  if (input.strength !== undefined && input.prompt_strength !== undefined && input.strength !== input.prompt_strength) {
    ctx.addIssue({
      code: 'custom',
      path: ['prompt_strength'],
      message: `prompt_strength is an alias of strength: send one of them, got strength ${input.strength} and prompt_strength ${input.prompt_strength}`,
    });
  }
  // An absent side is the model's native one; the budget counts it as the deployment says (512 unless configured).
  const width = input.width ?? limits.nativeSide ?? DEFAULT_NATIVE_SIDE;
  const height = input.height ?? limits.nativeSide ?? DEFAULT_NATIVE_SIDE;
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    ctx.addIssue({
      code: 'custom',
      path: ['width'],
      message: `width * height must be at most ${limits.maxPixels} pixels, got ${width} x ${height} = ${pixels}`,
    });
  }
  if (input.mask !== undefined && input.image === undefined) {
    ctx.addIssue({ code: 'custom', path: ['mask'], message: 'mask needs an image to inpaint, got a mask without image' });
  }
  if (input.image !== undefined) {
    // diffusers runs int(steps * strength) steps of img2img; zero steps would return the input untouched.
    const strength = input.strength ?? input.prompt_strength ?? (input.mask !== undefined ? 1 : 0.8);
    const steps = Math.floor(input.num_inference_steps * strength);
    if (steps < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['strength'],
        message: `strength * num_inference_steps must be at least 1 denoising step, got ${strength} * ${input.num_inference_steps} = ${steps}`,
      });
    }
  }
}

/** Builds the input schema for a deployment's limits. */
export function createPredictionInputSchema(limits: InputLimits = DEFAULT_LIMITS) {
  return z
    .strictObject(predictionInputFields(limits), { error: objectError })
    .superRefine((input, ctx) => checkCrossFieldLimits(input, ctx, limits))
    .transform(foldStrengthAlias);
}

export const PredictionInputSchema = createPredictionInputSchema();

/** What clients send (defaults optional). */
export type PredictionInputRequest = z.input<typeof PredictionInputSchema>;
/** After validation: defaults filled, scheduler resolved to its canonical name. */
export type PredictionInput = z.output<typeof PredictionInputSchema>;
