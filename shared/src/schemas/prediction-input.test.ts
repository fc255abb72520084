import { describe, expect, it } from 'vitest';
import { validationErrorBody } from './errors.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { CreatePredictionRequestSchema, canTransition } from './prediction.ts';
import { createPredictionInputSchema, PredictionInputSchema } from './prediction-input.ts';
import { RunnerInputSchema } from './runner.ts';

function messages(input: unknown): string[] {
  const r = PredictionInputSchema.safeParse(input);
  if (r.success) return [];
  return validationErrorBody(r.error).error.issues!.map((i) => `${i.field}: ${i.message}`);
}

describe('prediction input schema', () => {
  it('fills defaults and resolves scheduler aliases to canonical names', () => {
    const v = PredictionInputSchema.parse({ prompt: 'a cat', scheduler: 'K_EULER_ANCESTRAL' });
    expect(v).toMatchObject({ num_inference_steps: 25, guidance_scale: 7.5, num_outputs: 1 });
    // No width/height: the runner gives the model's native size.
    expect([v.width, v.height]).toEqual([undefined, undefined]);
    expect(v.scheduler).toBe('euler_a');
    expect(PredictionInputSchema.parse({ prompt: 'x', scheduler: 'DPM++ 2M Karras' }).scheduler).toBe('dpmpp_2m_karras');
    expect(PredictionInputSchema.parse({ prompt: 'x', scheduler: 'DPM++ 2M SDE Karras' }).scheduler).toBe('dpmpp_2m_sde_karras');
    expect(PredictionInputSchema.parse({ prompt: 'x', scheduler: 'DPM2 a' }).scheduler).toBe('dpm2_a');
    expect(PredictionInputSchema.parse({ prompt: 'x', clip_skip: 2 }).clip_skip).toBe(2);
    expect(PredictionInputSchema.parse({ prompt: 'x' }).clip_skip).toBeUndefined();
    expect(PredictionInputSchema.parse({ prompt: 'x', scheduler: 'EulerDiscreteScheduler' }).scheduler).toBe('euler');
    expect(v.seed).toBeUndefined();
  });

  it('counts absent sides as the deployment nativeSide (512 unless set) in the pixel budget', () => {
    const tight = createPredictionInputSchema({ ...DEFAULT_LIMITS, maxPixels: 64 * 64 });
    expect(tight.safeParse({ prompt: 'x' }).error?.issues[0].message).toBe(
      'width * height must be at most 4096 pixels, got 512 x 512 = 262144',
    );
    const native = createPredictionInputSchema({ ...DEFAULT_LIMITS, maxPixels: 64 * 64, nativeSide: 64 });
    expect(native.safeParse({ prompt: 'x' }).success).toBe(true);
    expect(native.safeParse({ prompt: 'x', width: 128 }).error?.issues[0].message).toBe(
      'width * height must be at most 4096 pixels, got 128 x 64 = 8192',
    );
  });

  it("refuses a side the model's U-Net cannot take when the deployment says which (sideMultiple), naming it", () => {
    const embedded = createPredictionInputSchema({ ...DEFAULT_LIMITS, sideMultiple: 16 });
    expect(embedded.safeParse({ prompt: 'x', width: 88 }).error?.issues[0].message).toBe(
      'width must be a multiple of 16 between 64 and 2048, got 88',
    );
    expect(embedded.safeParse({ prompt: 'x', width: 96, height: 64 }).success).toBe(true);
  });

  it.each([
    [{ width: 500 }, 'width: width must be a multiple of 8 between 64 and 2048, got 500'],
    [{ height: 4096 }, 'height: height must be a multiple of 8 between 64 and 2048, got 4096'],
    [{ width: 56 }, 'width: width must be a multiple of 8 between 64 and 2048, got 56'],
    [{ width: '512' }, 'width: width must be a multiple of 8 between 64 and 2048, got "512"'],
    [{ num_inference_steps: 0 }, 'num_inference_steps: num_inference_steps must be an integer between 1 and 150, got 0'],
    [{ num_inference_steps: 151 }, 'num_inference_steps: num_inference_steps must be an integer between 1 and 150, got 151'],
    [{ num_inference_steps: 2.5 }, 'num_inference_steps: num_inference_steps must be an integer between 1 and 150, got 2.5'],
    [{ guidance_scale: 31 }, 'guidance_scale: guidance_scale must be a number between 0 and 30, got 31'],
    [{ guidance_scale: -1 }, 'guidance_scale: guidance_scale must be a number between 0 and 30, got -1'],
    [{ guidance_end: 1.5 }, 'guidance_end: guidance_end must be a number between 0 and 1, got 1.5'],
    [{ guidance_end: '0.5' }, 'guidance_end: guidance_end must be a number between 0 and 1, got "0.5"'],
    [{ seed: -1 }, 'seed: seed must be an integer between 0 and 4294967295 (omit it or send null for a random seed), got -1'],
    [
      { seed: 4294967296 },
      'seed: seed must be an integer between 0 and 4294967295 (omit it or send null for a random seed), got 4294967296',
    ],
    [{ num_outputs: 5 }, 'num_outputs: num_outputs must be an integer between 1 and 4, got 5'],
    [{ strength: 1.5, image: 'https://example.com/a.png' }, 'strength: strength must be a number between 0 and 1, got 1.5'],
    [{ output_format: 'gif' }, 'output_format: output_format must be one of png, webp, jpeg, got "gif"'],
    [{ output_quality: 0 }, 'output_quality: output_quality must be an integer between 1 and 100, got 0'],
    [
      { scheduler: 'magic' },
      'scheduler: scheduler must be one of ddim, pndm, ddpm, euler, euler_a, heun, lms, dpmpp_2m, dpmpp_2m_karras, dpmpp_2m_sde, dpmpp_2m_sde_karras, dpm2, dpm2_karras, dpm2_a, dpm2_a_karras, unipc, lcm (or a known alias), got "magic"',
    ],
    [{ clip_skip: 0 }, 'clip_skip: clip_skip must be an integer between 1 and 12, got 0'],
    [{ clip_skip: 13 }, 'clip_skip: clip_skip must be an integer between 1 and 12, got 13'],
    [{ clip_skip: 1.5 }, 'clip_skip: clip_skip must be an integer between 1 and 12, got 1.5'],
    [{ image: 'http://example.com/a.png' }, 'image: image must be an https URL or a data URI, got "http://example.com/a.png"'],
    [{ image: 'http://10.0.0.7/a.png' }, 'image: image must be an https URL or a data URI, got "http://10.0.0.7/a.png"'],
    [
      { image: 'data:text/plain;base64,AAAA' },
      'image: image must be a base64 data URI of image/png, image/jpeg or image/webp, got "data:text/plain;base64,AAAA"',
    ],
    [{ mask: 'https://example.com/m.png' }, 'mask: mask needs an image to inpaint, got a mask without image'],
    [{ width: 2048, height: 2048 }, 'width: width * height must be at most 1048576 pixels, got 2048 x 2048 = 4194304'],
    [{ colour: 'red' }, 'colour: unknown field colour is not accepted'],
    [
      { image: 'https://example.com/a.png', strength: 0.05, num_inference_steps: 10 },
      'strength: strength * num_inference_steps must be at least 1 denoising step, got 0.05 * 10 = 0',
    ],
  ])('rejects %j with a message naming the field, the limit and the value', (extra, expected) => {
    expect(messages({ prompt: 'a cat', ...extra })).toContain(expected);
  });

  it.each([
    ['steps', 'num_inference_steps'],
    ['cfg_scale', 'guidance_scale'],
    ['batch_size', 'num_outputs'],
    ['denoising_strength', 'strength'],
  ])('an unknown AUTOMATIC1111 name (%s) says which field to use (%s)', (theirs, ours) => {
    expect(messages({ prompt: 'a cat', [theirs]: 1 })).toContain(
      `${theirs}: unknown field ${theirs} is not accepted; use ${ours} (${theirs} is AUTOMATIC1111's name)`,
    );
  });

  it('names the field to use for sampler_name, n_iter and init_images too', () => {
    const all = messages({ prompt: 'a cat', sampler_name: 'Euler a', n_iter: 2, init_images: ['x'] }).join('\n');
    expect(all).toContain('unknown field sampler_name is not accepted; use scheduler (e.g. "DPM++ 2M Karras")');
    expect(all).toContain('unknown field n_iter is not accepted; use num_outputs');
    expect(all).toContain('unknown field init_images is not accepted; use image (one image');
  });

  it('takes prompt_strength as an alias of strength, and clip_skip and disable_safety_checker', () => {
    const v = PredictionInputSchema.parse({
      prompt: 'x',
      image: 'https://example.com/a.png',
      prompt_strength: 0.6,
      clip_skip: 2,
      disable_safety_checker: true,
    });
    expect(v.strength).toBe(0.6);
    expect('prompt_strength' in v).toBe(false);
    expect(v.clip_skip).toBe(2);
    expect(v.disable_safety_checker).toBe(true);
    expect(messages({ prompt: 'x', image: 'https://example.com/a.png', strength: 0.5, prompt_strength: 0.7 })).toContain(
      'prompt_strength: prompt_strength is an alias of strength: send one of them, got strength 0.5 and prompt_strength 0.7',
    );
    expect(messages({ prompt: 'x', clip_skip: 13 })).toContain(
      'clip_skip: clip_skip must be an integer between 1 and 12, got 13',
    );
    // The step check uses the alias too: 0.05 * 10 rounds to no step at all.
    expect(
      messages({ prompt: 'x', image: 'https://example.com/a.png', prompt_strength: 0.05, num_inference_steps: 10 }),
    ).toContain('strength: strength * num_inference_steps must be at least 1 denoising step, got 0.05 * 10 = 0');
  });

  it('requires a prompt and reports the type', () => {
    expect(messages({})).toContain('prompt: prompt must be a string, got nothing');
    expect(messages({ prompt: 3 })).toContain('prompt: prompt must be a string, got 3');
  });

  it('caps prompt length and image size', () => {
    expect(messages({ prompt: 'a'.repeat(10_001) })).toContain('prompt: prompt must be at most 10000 characters, got 10001');
    const small = createPredictionInputSchema({
      minSide: 64,
      maxSide: 2048,
      maxPixels: 1 << 20,
      maxSteps: 150,
      maxOutputs: 4,
      maxGuidance: 30,
      maxImageBytes: 1024,
      maxPromptChars: 100,
    });
    const big = `data:image/png;base64,${'A'.repeat(4000)}`;
    const r = small.safeParse({ prompt: 'x', image: big });
    expect(r.success).toBe(false);
    expect(validationErrorBody(r.error!).detail).toBe('image must be at most 1 KiB, got 2.9 KiB');
  });

  it('honours a tighter pixel budget', () => {
    const s = createPredictionInputSchema({
      minSide: 64,
      maxSide: 2048,
      maxPixels: 512 * 512,
      maxSteps: 50,
      maxOutputs: 2,
      maxGuidance: 20,
      maxImageBytes: 1 << 20,
      maxPromptChars: 1000,
    });
    expect(s.safeParse({ prompt: 'x', width: 512, height: 512 }).success).toBe(true);
    expect(s.safeParse({ prompt: 'x', width: 512, height: 520 }).success).toBe(false);
    expect(s.safeParse({ prompt: 'x', num_inference_steps: 51 }).success).toBe(false);
  });

  it('accepts a complete valid img2img input', () => {
    const v = PredictionInputSchema.parse({
      prompt: 'a cat',
      negative_prompt: 'blurry',
      width: 768,
      height: 512,
      num_inference_steps: 30,
      guidance_scale: 5,
      scheduler: 'ddim',
      seed: 4294967295,
      num_outputs: 4,
      image: 'data:image/png;base64,iVBORw0KGgo=',
      strength: 0.5,
      mask: 'https://example.com/mask.png',
      output_format: 'webp',
      output_quality: 90,
    });
    expect(v.seed).toBe(4294967295);
    expect(v.output_format).toBe('webp');
  });

  it('runner input accepts the edge extras and rejects unknown ones', () => {
    const ok = RunnerInputSchema.safeParse({
      prompt: 'x',
      prompt_tokens: { ids: [[1, 2]], weights: [[1, 1]] },
      return_embeddings: true,
    });
    expect(ok.success).toBe(true);
    const bad = RunnerInputSchema.safeParse({ prompt: 'x', secret_knob: 1 });
    expect(bad.success).toBe(false);
    expect(validationErrorBody(bad.error!).error.param).toBe('secret_knob');
  });
});

describe('prediction envelope', () => {
  it('terminal states are final', () => {
    expect(canTransition('starting', 'processing')).toBe(true);
    expect(canTransition('processing', 'succeeded')).toBe(true);
    expect(canTransition('succeeded', 'failed')).toBe(false);
    expect(canTransition('canceled', 'processing')).toBe(false);
    expect(canTransition('failed', 'failed')).toBe(false);
    expect(canTransition('processing', 'starting')).toBe(false);
  });

  it('create request rejects unknown fields and bad webhooks', () => {
    expect(CreatePredictionRequestSchema.safeParse({ version: 'a', input: { prompt: 'x' } }).success).toBe(true);
    expect(CreatePredictionRequestSchema.safeParse({ input: {}, extra: 1 }).success).toBe(false);
    expect(CreatePredictionRequestSchema.safeParse({ input: {}, webhook: 'ftp://x' }).success).toBe(false);
    expect(CreatePredictionRequestSchema.safeParse({ input: {}, webhook_events_filter: ['bogus'] }).success).toBe(false);
  });
});

describe('image URLs', () => {
  it("takes plain http only from loopback, where a local stack's bucket serves its outputs", () => {
    for (const image of ['http://127.0.0.1:4568/outputs/predictions/p/0.png?X-Amz-Signature=x', 'http://localhost:9000/a.png']) {
      expect(PredictionInputSchema.safeParse({ prompt: 'x', image }).success, image).toBe(true);
    }
  });
});
