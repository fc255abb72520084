import { DomainError } from '@sd/shared/domain-error';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config.ts';
import { a1111Info, planA1111Request, toA1111Issue } from './a1111-request.ts';
import { chooseSampler, listedSamplers } from './a1111-samplers.ts';

const config = parseConfig({
  MODELS: JSON.stringify([
    { id: 'sd/embedded', version: 'embedded-v1', runners: ['http://127.0.0.1:5000'] },
    { id: 'sd/other', version: 'v2', runners: ['http://127.0.0.1:5001'], clipSkip: 2 },
  ]),
  PUBLIC_BASE_URL: 'http://127.0.0.1:8787',
  RUNNER_WEBHOOK_SECRET: 'a',
  RUNNER_TOKEN: 'b',
  WEBHOOK_SIGNING_SECRET: 'c',
  TOKEN_SIGNING_SECRET: 'd',
});
const seeded = (n: number) => () => n;
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

function refused(fn: () => unknown): { field: string | undefined; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return { field: err.issues?.[0]?.field, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('AUTOMATIC1111 request mapping', () => {
  it("A1111's documented minimal example gets A1111's defaults: 50 steps, cfg 7, Euler, 512x512, a random seed", () => {
    // From the A1111 wiki's API page: payload = {"prompt": "maltese puppy", "steps": 5}
    const plan = planA1111Request('txt2img', { prompt: 'maltese puppy', steps: 5 }, config, seeded(1234));
    expect(plan.iterations).toEqual([
      {
        prompt: 'maltese puppy',
        negative_prompt: '',
        num_inference_steps: 5,
        guidance_scale: 7,
        width: 512,
        height: 512,
        scheduler: 'euler',
        num_outputs: 1,
        seed: 1234,
      },
    ]);
    const defaults = planA1111Request('txt2img', { prompt: 'x' }, config, seeded(1));
    expect(defaults.iterations[0]).toMatchObject({ num_inference_steps: 50, guidance_scale: 7 });
    expect(plan.parameters).toMatchObject({ prompt: 'maltese puppy', steps: 5, cfg_scale: 7, seed: -1, sampler_index: 'Euler' });
    expect(plan.model.id).toBe('sd/embedded');
  });

  it("SillyTavern's body (its url/auth fields, hires fix off, clip skip in override_settings) maps, ignoring what it cannot change", () => {
    // The shape SillyTavern's /api/sd/generate forwards to /sdapi/v1/txt2img.
    const body = {
      url: 'http://127.0.0.1:7860',
      auth: 'user:sk_test',
      prompt: 'a castle, (masterpiece:1.2)',
      negative_prompt: 'lowres',
      sampler_name: 'DPM++ 2M',
      scheduler: 'Karras',
      steps: 20,
      cfg_scale: 7,
      width: 512,
      height: 768,
      restore_faces: false,
      enable_hr: false,
      hr_upscaler: 'Latent',
      hr_scale: 2,
      denoising_strength: 0.7,
      hr_second_pass_steps: 0,
      override_settings: { CLIP_stop_at_last_layers: 2, sd_vae: 'Automatic' },
      override_settings_restore_afterwards: true,
      clip_skip: 2,
      save_images: true,
      send_images: true,
      do_not_save_grid: false,
      do_not_save_samples: false,
    };
    const plan = planA1111Request('txt2img', body, config, seeded(99));
    expect(plan.iterations[0]).toMatchObject({
      prompt: 'a castle, (masterpiece:1.2)',
      negative_prompt: 'lowres',
      scheduler: 'dpmpp_2m_karras',
      num_inference_steps: 20,
      guidance_scale: 7,
      width: 512,
      height: 768,
      clip_skip: 2,
      seed: 99,
    });
    expect(plan.iterations[0]).not.toHaveProperty('strength');
    expect(plan.ignored).toEqual(
      expect.arrayContaining(['override_settings.sd_vae', 'denoising_strength', 'url', 'auth', 'hr_upscaler', 'save_images']),
    );
    expect(plan.ignored).not.toContain('steps');
    expect(plan.parameters).not.toHaveProperty('url');
    expect(plan.parameters).toMatchObject({ sampler_name: 'DPM++ 2M', scheduler: 'Karras', enable_hr: false });
  });

  it("Open WebUI's body: batch_size from n, its steps and size; sampler defaults to Euler", () => {
    const body = { prompt: 'a fox', batch_size: 2, width: 640, height: 384, steps: 12, negative_prompt: 'text' };
    const plan = planA1111Request('txt2img', body, config, seeded(7));
    expect(plan.iterations).toHaveLength(1);
    expect(plan.iterations[0]).toMatchObject({
      num_outputs: 2,
      width: 640,
      height: 384,
      num_inference_steps: 12,
      scheduler: 'euler',
    });
    expect(plan.seeds).toEqual([7, 8]);
  });

  it('seed -1 with batch_size x n_iter: one prediction per iteration, every image numbered from one seed', () => {
    const plan = planA1111Request('txt2img', { prompt: 'x', seed: -1, batch_size: 2, n_iter: 3 }, config, seeded(500));
    expect(plan.iterations.map((i) => [i.seed, i.num_outputs])).toEqual([
      [500, 2],
      [502, 2],
      [504, 2],
    ]);
    expect(plan.seeds).toEqual([500, 501, 502, 503, 504, 505]);
    const fixed = planA1111Request('txt2img', { prompt: 'x', seed: 42, n_iter: 2 }, config, seeded(0));
    expect(fixed.seeds).toEqual([42, 43]);
    const info = JSON.parse(a1111Info(plan, { jobTimestamp: '20261202010000', predictionIds: ['a', 'b', 'c'] }));
    expect(info).toMatchObject({ seed: 500, all_seeds: [500, 501, 502, 503, 504, 505], batch_size: 2, steps: 50, cfg_scale: 7 });
    expect(info.all_prompts).toHaveLength(6);
    expect(info.infotexts[1]).toContain('Seed: 501');
    expect(info.infotexts[0]).toMatch(/^x\nSteps: 50, Sampler: Euler, CFG scale: 7, Seed: 500, Size: 512x512/);
  });

  it('override_settings.sd_model_checkpoint picks a configured model by the title /sd-models lists, or is refused', () => {
    const plan = planA1111Request(
      'txt2img',
      { prompt: 'x', override_settings: { sd_model_checkpoint: 'sd/other:v2' } },
      config,
      seeded(1),
    );
    expect(plan.model.id).toBe('sd/other');
    // That model's own clip skip is 2: nothing to override, so the runner's default applies.
    expect(plan.iterations[0]).not.toHaveProperty('clip_skip');
    expect(plan.summary.clipSkip).toBe(2);
    expect(
      refused(() =>
        planA1111Request(
          'txt2img',
          { prompt: 'x', override_settings: { sd_model_checkpoint: 'v1-5.safetensors' } },
          config,
          seeded(1),
        ),
      ),
    ).toEqual({
      field: 'override_settings.sd_model_checkpoint',
      message:
        'override_settings.sd_model_checkpoint must be one of sd/embedded:embedded-v1, sd/other:v2, got "v1-5.safetensors"',
    });
  });

  it.each([
    [{ enable_hr: true }, 'enable_hr'],
    [{ restore_faces: true }, 'restore_faces'],
    [{ subseed_strength: 0.3 }, 'subseed_strength'],
    [{ alwayson_scripts: { ADetailer: { args: [] } } }, 'alwayson_scripts'],
    [{ script_name: 'x/y/z plot' }, 'script_name'],
    [{ n_iter: 9 }, 'n_iter'],
    [{ seed: -2 }, 'seed'],
    [{ steps: 'twenty' }, 'steps'],
  ])('refuses %j naming the field (never renders something else)', (extra, field) => {
    expect(refused(() => planA1111Request('txt2img', { prompt: 'x', ...extra }, config, seeded(1))).field).toBe(field);
  });

  it('img2img: raw base64 init image and mask become data URIs, denoising_strength defaults to 0.75', () => {
    const plan = planA1111Request('img2img', { prompt: 'x', init_images: [PNG_1X1], mask: PNG_1X1 }, config, seeded(3));
    expect(plan.iterations[0]).toMatchObject({
      image: `data:image/png;base64,${PNG_1X1}`,
      mask: `data:image/png;base64,${PNG_1X1}`,
      strength: 0.75,
    });
    expect(plan.parameters).toMatchObject({ init_images: null, mask: null, denoising_strength: 0.75 });
    const withPrefix = planA1111Request(
      'img2img',
      { prompt: 'x', init_images: [`data:image/png;base64,${PNG_1X1}`], denoising_strength: 0.4, include_init_images: true },
      config,
      seeded(3),
    );
    expect(withPrefix.iterations[0]).toMatchObject({ strength: 0.4 });
    expect(withPrefix.parameters.init_images).toEqual([`data:image/png;base64,${PNG_1X1}`]);
    expect(refused(() => planA1111Request('img2img', { prompt: 'x' }, config, seeded(1)))).toEqual({
      field: 'init_images',
      message: 'init_images must hold one base64 image, got none',
    });
    expect(
      refused(() => planA1111Request('img2img', { prompt: 'x', init_images: ['aGVsbG8gd29ybGQ='] }, config, seeded(1))).message,
    ).toBe('init_images must be a PNG, JPEG or WebP image, got base64 that is none of them');
    expect(
      refused(() =>
        planA1111Request(
          'img2img',
          { prompt: 'x', init_images: [PNG_1X1], mask: PNG_1X1, inpainting_mask_invert: 1 },
          config,
          seeded(1),
        ),
      ).field,
    ).toBe('inpainting_mask_invert');
  });

  it('renames our validation issues to the A1111 fields the caller sent', () => {
    expect(
      toA1111Issue({ field: 'input.num_outputs', message: 'num_outputs must be an integer between 1 and 4, got 6' }),
    ).toEqual({ field: 'batch_size', message: 'batch_size must be an integer between 1 and 4, got 6' });
    expect(
      toA1111Issue({
        field: 'input.num_inference_steps',
        message: 'num_inference_steps must be an integer between 1 and 150, got 200',
      }),
    ).toEqual({ field: 'steps', message: 'steps must be an integer between 1 and 150, got 200' });
  });
});

describe('AUTOMATIC1111 samplers', () => {
  it.each([
    ['DPM++ 2M', 'Karras', 'dpmpp_2m_karras', 'Karras'],
    ['DPM++ 2M', 'Automatic', 'dpmpp_2m_karras', 'Karras'],
    ['DPM++ 2M', null, 'dpmpp_2m_karras', 'Karras'],
    ['DPM++ 2M', 'Uniform', 'dpmpp_2m', null],
    ['DPM++ 2M', 'karras', 'dpmpp_2m_karras', 'Karras'],
    ['DPM++ 2M Karras', 'Automatic', 'dpmpp_2m_karras', 'Karras'],
    ['Euler a', 'Automatic', 'euler_a', null],
    ['euler a', undefined, 'euler_a', null],
    [null, null, 'euler', null],
    ['DDIM', 'Karras', 'ddim', null],
    ['PLMS', undefined, 'pndm', null],
    ['UniPC', undefined, 'unipc', null],
    ['LCM', undefined, 'lcm', null],
  ])('%s + %s runs %s (schedule %s)', (sampler, schedule, ours, ran) => {
    const r = chooseSampler(sampler, schedule);
    expect(r.ok && r.choice).toMatchObject({ scheduler: ours, schedule: ran });
  });

  it('a pair that does not run is refused with the pairs that do', () => {
    const karrasEuler = chooseSampler('Euler a', 'Karras');
    expect(karrasEuler.ok).toBe(false);
    if (!karrasEuler.ok) {
      expect(karrasEuler.problem.field).toBe('scheduler');
      expect(karrasEuler.problem.message).toContain('scheduler "Karras" is not available with sampler_name "Euler a"');
      expect(karrasEuler.problem.message).toContain('DPM++ 2M (Automatic, Uniform, Karras)');
    }
    const unknown = chooseSampler('Restart', null);
    expect(!unknown.ok && unknown.problem).toMatchObject({ field: 'sampler_name' });
    const badSchedule = chooseSampler('Euler', 'Sideways');
    expect(!badSchedule.ok && badSchedule.problem.message).toBe(
      'scheduler must be one of Automatic, Uniform, Karras, got "Sideways"',
    );
  });

  it('lists only the samplers the alias table resolves, with their automatic schedule', () => {
    const names = listedSamplers().map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(['DPM++ 2M', 'Euler a', 'Euler', 'LMS', 'Heun', 'DDIM', 'PLMS', 'UniPC', 'LCM']),
    );
    expect(names).not.toContain('Restart');
    expect(listedSamplers().find((s) => s.name === 'DPM++ 2M')?.options).toEqual({ scheduler: 'karras' });
  });
});
