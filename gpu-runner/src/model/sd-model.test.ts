import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referenceDir, referenceSkipReason } from '../../../test/support/reference.ts';
import { readModelDirectory } from './model-dir.ts';
import { loadSdModel } from './sd-model.ts';

describe.skipIf(!referenceDir)(`model loading on ../shared/reference/tiny-sd${referenceSkipReason}`, () => {
  const tiny = referenceDir ? join(referenceDir, 'tiny-sd') : '';
  const scratch = mkdtempSync(join(tmpdir(), 'sd-model-test-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('reads the interface from the graphs: names, dtypes, hidden size, channels, scaling factor', async () => {
    const model = await loadSdModel(tiny);
    try {
      expect(model.io.text).toEqual({
        input: 'input_ids',
        inputDtype: 'int32',
        output: 'last_hidden_state',
        hiddenSize: 32,
        sequenceLength: null,
        // The reference export has last_hidden_state and pooler_output only.
        clipSkip: {
          ok: false,
          reason:
            'its text encoder outputs only last_hidden_state, pooler_output, not the per-layer hidden_states.N outputs clip skip needs (export with output_hidden_states)',
        },
      });
      expect(model.io.unet).toMatchObject({
        sample: 'sample',
        timestep: 'timestep',
        encoderHiddenStates: 'encoder_hidden_states',
        output: 'out_sample',
        inChannels: 4,
        timestepDtype: 'float32',
      });
      expect(model.io.latentChannels).toBe(4);
      expect(model.io.isInpainting).toBe(false);
      expect(model.io.vaeEncoder).toEqual({ input: 'sample', output: 'latent_sample' });
      expect(model.io.vaeScalingFactor).toBe(0.18215);
      expect(model.unet.provider).toBe('cpu');
    } finally {
      await model.release();
    }
  });

  it('falls back to cpu with a logged warning when cuda is requested but unavailable', async () => {
    const warnings: string[] = [];
    const model = await loadSdModel(tiny, {
      executionProviders: ['cuda'],
      intraOpNumThreads: 1,
      logger: (_l, m) => warnings.push(m),
    });
    try {
      expect(model.unet.provider).toBe('cpu');
      expect(warnings.some((w) => w.includes('cuda') && w.includes('unet'))).toBe(true);
    } finally {
      await model.release();
    }
  });

  function copyWith(name: string, mutate: (dir: string) => void): string {
    const dir = join(scratch, name);
    cpSync(tiny, dir, { recursive: true });
    mutate(dir);
    return dir;
  }

  it('names the missing file', () => {
    const dir = copyWith('no-unet', (d) => rmSync(join(d, 'unet/model.onnx')));
    expect(() => readModelDirectory(dir)).toThrow(/unet\/model\.onnx: is missing/);
    const dir2 = copyWith('no-merges', (d) => rmSync(join(d, 'tokenizer/merges.txt')));
    expect(() => readModelDirectory(dir2)).toThrow(/tokenizer\/merges\.txt: is missing/);
  });

  it('names a malformed JSON file', () => {
    const dir = copyWith('bad-sched', (d) => writeFileSync(join(d, 'scheduler/scheduler_config.json'), '{not json'));
    expect(() => readModelDirectory(dir)).toThrow(/scheduler_config\.json: is not valid JSON/);
  });

  it('names a corrupt graph at load', async () => {
    const dir = copyWith('bad-graph', (d) => writeFileSync(join(d, 'vae_decoder/model.onnx'), 'garbage'));
    await expect(loadSdModel(dir)).rejects.toThrow(/vae_decoder\/model\.onnx/);
  });

  it('treats vae_encoder as optional and reads scaling_factor from config', () => {
    const dir = copyWith('no-encoder', (d) => {
      rmSync(join(d, 'vae_encoder'), { recursive: true });
      writeFileSync(join(d, 'vae_decoder/config.json'), JSON.stringify({ scaling_factor: 0.13025 }));
    });
    const files = readModelDirectory(dir);
    expect(files.graphs.vaeEncoder).toBeNull();
    expect(files.vaeScalingFactor).toBe(0.13025);
  });

  it('reads pipeline_defaults.json (optional) and names a bad value or an unknown key', () => {
    expect(readModelDirectory(tiny).pipelineDefaults).toEqual({});
    const good = copyWith('defaults', (d) =>
      writeFileSync(join(d, 'pipeline_defaults.json'), '{"guidance_end": 0.5, "_note": "x"}'),
    );
    expect(readModelDirectory(good).pipelineDefaults).toEqual({ guidanceEnd: { txt2img: 0.5, img2img: 0.5, inpaint: 0.5 } });
    const perTask = copyWith('defaults-per-task', (d) =>
      writeFileSync(join(d, 'pipeline_defaults.json'), '{"guidance_end": {"txt2img": 0.5, "inpaint": 1}}'),
    );
    expect(readModelDirectory(perTask).pipelineDefaults).toEqual({ guidanceEnd: { txt2img: 0.5, inpaint: 1 } });
    const badTask = copyWith('defaults-bad-task', (d) =>
      writeFileSync(join(d, 'pipeline_defaults.json'), '{"guidance_end": {"upscale": 0.5}}'),
    );
    expect(() => readModelDirectory(badTask)).toThrow(
      /guidance_end has an unknown task upscale; tasks: txt2img, img2img, inpaint/,
    );
    const badValue = copyWith('defaults-bad-value', (d) =>
      writeFileSync(join(d, 'pipeline_defaults.json'), '{"guidance_end": {"inpaint": "all"}}'),
    );
    expect(() => readModelDirectory(badValue)).toThrow(/guidance_end\.inpaint must be a number between 0 and 1, got "all"/);
    const bad = copyWith('bad-defaults', (d) => writeFileSync(join(d, 'pipeline_defaults.json'), '{"guidance_end": 2}'));
    expect(() => readModelDirectory(bad)).toThrow(
      /pipeline_defaults\.json: guidance_end must be a number between 0 and 1, got 2/,
    );
    const odd = copyWith('odd-defaults', (d) => writeFileSync(join(d, 'pipeline_defaults.json'), '{"guidance_stop": 0.5}'));
    expect(() => readModelDirectory(odd)).toThrow(/pipeline_defaults\.json: unknown key\(s\) guidance_stop; known: guidance_end/);
  });
});
