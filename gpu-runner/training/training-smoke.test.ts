// The trainer's whole tool chain on a tiny config in seconds: dataset from the TypeScript generator, VAE and
// U-Net + text encoder training (resumable), loss curves, ONNX export, and our own pipeline loading the export and
// generating at its native size. The shipped model is trained the same way on the full config (MODEL_CARD.md).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readModelDirectory } from '../src/model/model-dir.ts';
import { StableDiffusionPipeline } from '../src/pipeline/pipeline.ts';

const run = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..', '..');
const PYTHON = '/usr/bin/python3'; // Debian's, which has torch (apt-get install python3-torch)
const work = mkdtempSync(join(tmpdir(), 'sd-train-smoke-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const py = (script: string, args: string[]) =>
  run(PYTHON, [join(HERE, script), ...args], { cwd: ROOT, env: { ...process.env, OMP_NUM_THREADS: '1' }, maxBuffer: 1 << 24 });

describe('training smoke test (tiny config)', () => {
  const data = join(work, 'data');
  const ckpt = join(work, 'ckpt');
  const model = join(work, 'model');

  it('writes a dataset, trains, resumes, exports, and the export generates through our pipeline', async () => {
    await run(
      process.execPath,
      [
        join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
        join(HERE, 'write-dataset.ts'),
        '--out',
        data,
        '--count',
        '48',
        '--captions',
        '2',
      ],
      {
        cwd: ROOT,
      },
    );
    const meta = JSON.parse(readFileSync(join(data, 'dataset.json'), 'utf8'));
    expect(meta).toMatchObject({ count: 48, captionsPerImage: 2, sequenceLength: 77, imageSize: 64 });

    await py('train.py', ['--data', data, '--out', ckpt, '--config', 'tiny']);
    const summary = JSON.parse(readFileSync(join(ckpt, 'summary.json'), 'utf8'));
    expect(summary.config).toBe('tiny');
    expect(summary.scaling_factor).toBeGreaterThan(0);
    for (const f of ['vae.pt', 'unet.pt', 'latents.pt', 'vae-loss.png', 'unet-loss.png'])
      expect(existsSync(join(ckpt, f)), f).toBe(true);
    expect(readFileSync(join(ckpt, 'unet-loss.png')).subarray(1, 4).toString()).toBe('PNG');

    // A finished run resumes to a no-op: both stages are read back from their checkpoints.
    const again = await py('train.py', ['--data', data, '--out', ckpt, '--config', 'tiny']);
    expect(again.stderr).not.toMatch(/unet \[/);

    await py('export.py', ['--data', data, '--ckpt', ckpt, '--out', model]);
    const unetConfig = JSON.parse(readFileSync(join(model, 'unet/config.json'), 'utf8'));
    expect(unetConfig).toMatchObject({ sample_size: 8, prediction_type: 'v_prediction' });
    // The schedule the U-Net was trained on travels with it: every scheduler the runner builds reads this.
    const schedulerConfig = JSON.parse(readFileSync(join(model, 'scheduler/scheduler_config.json'), 'utf8'));
    expect(schedulerConfig).toMatchObject({
      prediction_type: 'v_prediction',
      rescale_betas_zero_snr: true,
      timestep_spacing: 'trailing',
    });

    const pipe = await StableDiffusionPipeline.load(model, { intraOpNumThreads: 1 });
    try {
      expect(pipe.nativeSize).toBe(64);
      expect(pipe.model.io).toMatchObject({ latentChannels: 4, isInpainting: false });
      const req = { prompt: 'a red circle', width: 64, height: 64, steps: 4, guidanceScale: 7.5, seed: 1 };
      const a = await pipe.generate(req);
      const b = await pipe.generate(req);
      expect(a.images[0].rgb.length).toBe(64 * 64 * 3);
      expect(Buffer.from(a.images[0].rgb).equals(Buffer.from(b.images[0].rgb))).toBe(true);
    } finally {
      await pipe.release();
    }
  }, 120_000);

  it('trains a shipped model further from its ONNX files: 0 steps re-export it byte for byte; training moves only the decoder of its VAE', async () => {
    const graphs = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];
    const bytes = (dir: string, g: string) => readFileSync(join(dir, g, 'model.onnx'));
    const further = async (name: string, steps: string, train: string[] = [], exportArgs: string[] = []) => {
      const out = join(work, name);
      const base = ['--data', data, '--config', 'tiny', '--init-from', model, '--seed', '2'];
      await py('train.py', [...base, '--out', `${out}-ckpt`, '--vae-steps', steps, '--unet-steps', steps, ...train]);
      await py('export.py', ['--data', data, '--ckpt', `${out}-ckpt`, '--out', out, ...exportArgs]);
      return out;
    };
    const same = await further('model-0-steps', '0');
    for (const g of graphs) expect(bytes(same, g).equals(bytes(model, g)), g).toBe(true);
    const scale = (dir: string) => JSON.parse(readFileSync(join(dir, 'vae_decoder/config.json'), 'utf8')).scaling_factor;
    expect(scale(same)).toBe(scale(model));

    // Half of each VAE batch repainted in random colours; the export names the model's default guidance_end.
    const trained = await further('model-3-steps', '3', ['--vae-recolour', '0.5'], ['--guidance-end', 'txt2img=0.5,img2img=0.5']);
    expect(readModelDirectory(trained).pipelineDefaults).toEqual({ guidanceEnd: { txt2img: 0.5, img2img: 0.5 } });
    expect(readModelDirectory(same).pipelineDefaults).toEqual({});
    // The encoder, and so the latent space and its scaling the U-Net learned, stays; everything else learns.
    expect(bytes(trained, 'vae_encoder').equals(bytes(model, 'vae_encoder'))).toBe(true);
    expect(scale(trained)).toBe(scale(model));
    for (const g of ['text_encoder', 'unet', 'vae_decoder']) expect(bytes(trained, g).equals(bytes(model, g)), g).toBe(false);
  }, 120_000);
});
