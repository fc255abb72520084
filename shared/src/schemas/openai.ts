// OpenAI-compatible image requests (POST /v1/images/generations, POST /v1/images/edits), mapped onto the same
// prediction input. Strict: every OpenAI field is either mapped or refused by name, never silently dropped.
import { z } from 'zod';

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v));
const oneOf = <const T extends readonly [string, ...string[]]>(field: string, values: T) =>
  z.enum(values, { error: (iss) => `${field} must be one of ${values.join(', ')}, got ${show(iss.input)}` });

/** Fields both requests share. `n` is capped by the model's and the key's num_outputs limit (named n in errors). */
function commonFields() {
  return {
    prompt: z.string({ error: 'prompt must be a string' }).min(1, { error: 'prompt must not be empty' }),
    model: z.string({ error: 'model must be a string' }).optional(),
    n: z
      .number({ error: (iss) => `n must be an integer between 1 and 10, got ${show(iss.input)}` })
      .int({ error: (iss) => `n must be an integer between 1 and 10, got ${show(iss.input)}` })
      .min(1, { error: (iss) => `n must be an integer between 1 and 10, got ${show(iss.input)}` })
      .max(10, { error: (iss) => `n must be an integer between 1 and 10, got ${show(iss.input)}` })
      .default(1),
    size: z
      .string()
      .regex(/^(?:\d{2,4}x\d{2,4}|auto)$/, { error: (iss) => `size must look like 512x512, got ${show(iss.input)}` })
      .optional(),
    response_format: z
      .enum(['url', 'b64_json'], { error: (iss) => `response_format must be url or b64_json, got ${show(iss.input)}` })
      .default('url'),
    /** Mapped to steps: low 15, standard/medium/auto the default, hd/high 50 (num_inference_steps wins). */
    quality: oneOf('quality', ['standard', 'hd', 'low', 'medium', 'high', 'auto']).optional(),
    /** opaque and auto are what SD renders; transparent is refused. */
    background: oneOf('background', ['transparent', 'opaque', 'auto']).optional(),
    output_format: oneOf('output_format', ['png', 'webp', 'jpeg']).optional(),
    /** Mapped to output_quality. */
    output_compression: z
      .number({ error: (iss) => `output_compression must be an integer between 0 and 100, got ${show(iss.input)}` })
      .int()
      .min(0)
      .max(100)
      .optional(),
    /** Only false / 0: answers are not streamed. */
    stream: z.boolean({ error: 'stream must be a boolean' }).optional(),
    partial_images: z.number({ error: 'partial_images must be an integer' }).int().min(0).max(3).optional(),
    /** An end-user id for abuse tracking: logged, not stored. */
    user: z.string({ error: 'user must be a string' }).max(256).optional(),
    // Extensions (not OpenAI's): the prediction input's own fields.
    negative_prompt: z.string().optional(),
    seed: z.number().int().min(0).max(4_294_967_295).optional(),
    num_inference_steps: z.number().int().optional(),
    guidance_scale: z.number().optional(),
  };
}

const strictError = (iss: { code?: string; keys?: string[] }) =>
  iss.code === 'unrecognized_keys' ? `unknown field(s): ${(iss.keys ?? []).join(', ')}` : 'body must be a JSON object';

export const OpenAIImageRequestSchema = z.strictObject(
  {
    ...commonFields(),
    /** Mapped to guidance: vivid 9, natural the default (guidance_scale wins). */
    style: oneOf('style', ['vivid', 'natural']).optional(),
    /** No moderation model runs: accepted and logged. */
    moderation: oneOf('moderation', ['low', 'auto']).optional(),
  },
  { error: strictError },
);
export type OpenAIImageRequest = z.infer<typeof OpenAIImageRequestSchema>;

/** images.edit's non-file fields (multipart strings, coerced before parsing). `image`/`mask` are the file parts. */
export const OpenAIImageEditRequestSchema = z.strictObject(
  {
    ...commonFields(),
    /** Mapped to strength: high 0.5 (stays close to the input), low the default (strength wins). */
    input_fidelity: oneOf('input_fidelity', ['high', 'low']).optional(),
    /** Extension: img2img strength. */
    strength: z.number().min(0).max(1).optional(),
  },
  { error: strictError },
);
export type OpenAIImageEditRequest = z.infer<typeof OpenAIImageEditRequestSchema>;

export const OpenAIImageResponseSchema = z.object({
  created: z.number().int(),
  data: z.array(z.object({ url: z.string().optional(), b64_json: z.string().optional(), revised_prompt: z.string().optional() })),
  /** Not OpenAI's: which configured model ran (any requested model name maps to one). */
  model: z.string().optional(),
  output_format: z.enum(['png', 'webp', 'jpeg']).optional(),
  size: z.string().optional(),
});
export type OpenAIImageResponse = z.infer<typeof OpenAIImageResponseSchema>;
