// OpenAI-compatible POST /v1/images/generations, mapped onto the same prediction input.
import { z } from 'zod';

export const OpenAIImageRequestSchema = z.object({
  prompt: z.string({ error: 'prompt must be a string' }).min(1, { error: 'prompt must not be empty' }),
  model: z.string().optional(),
  n: z
    .number()
    .int()
    .min(1)
    .max(4, { error: (iss) => `n must be an integer between 1 and 4, got ${String(iss.input)}` })
    .default(1),
  size: z
    .string()
    .regex(/^\d{2,4}x\d{2,4}$/, { error: (iss) => `size must look like 512x512, got ${JSON.stringify(iss.input)}` })
    .default('512x512'),
  response_format: z.enum(['url', 'b64_json'], { error: 'response_format must be url or b64_json' }).default('url'),
  quality: z.string().optional(),
  style: z.string().optional(),
  user: z.string().optional(),
  output_format: z.enum(['png', 'webp', 'jpeg']).optional(),
  negative_prompt: z.string().optional(),
  seed: z.number().int().min(0).max(4_294_967_295).optional(),
  num_inference_steps: z.number().int().optional(),
  guidance_scale: z.number().optional(),
});
export type OpenAIImageRequest = z.infer<typeof OpenAIImageRequestSchema>;

export const OpenAIImageResponseSchema = z.object({
  created: z.number().int(),
  data: z.array(z.object({ url: z.string().optional(), b64_json: z.string().optional(), revised_prompt: z.string().optional() })),
});
export type OpenAIImageResponse = z.infer<typeof OpenAIImageResponseSchema>;
