import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildRandomModelFiles,
  COMPLETE_MARKER,
  ensureRandomModel,
  RANDOM_MODEL_NAME,
  randomModelCacheDir,
} from './random-model.ts';

const LAYOUT = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'text_encoder/config.json',
  'text_encoder/model.onnx',
  'tokenizer/merges.txt',
  'tokenizer/special_tokens_map.json',
  'tokenizer/tokenizer_config.json',
  'tokenizer/vocab.json',
  'unet/config.json',
  'unet/model.onnx',
  'vae_decoder/config.json',
  'vae_decoder/model.onnx',
  'vae_encoder/config.json',
  'vae_encoder/model.onnx',
];

const temps: string[] = [];
async function tempCache(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sd-default-model-'));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

const readJson = async (dir: string, path: string) => JSON.parse(await readFile(join(dir, path), 'utf8'));

describe('ensureRandomModel', () => {
  it('writes the diffusers ONNX layout, then returns it from the cache without writing again', async () => {
    const cache = await tempCache();
    const dir = await ensureRandomModel(cache);
    expect(dir).toBe(join(cache, RANDOM_MODEL_NAME));
    for (const path of LAYOUT) expect((await readFile(join(dir, path))).length, path).toBeGreaterThan(0);

    const marker = await readJson(dir, COMPLETE_MARKER);
    expect(marker).toMatchObject({ name: RANDOM_MODEL_NAME });
    const written = await Promise.all(LAYOUT.map(async (path) => (await stat(join(dir, path))).mtimeMs));
    expect(await ensureRandomModel(cache)).toBe(dir);
    expect(await Promise.all(LAYOUT.map(async (path) => (await stat(join(dir, path))).mtimeMs))).toEqual(written);
    // The cache holds the model folder only: no temporary folders left behind.
    expect(await readdir(cache)).toEqual([RANDOM_MODEL_NAME]);
  });

  it('gives concurrent first uses one complete model', async () => {
    const cache = await tempCache();
    const dirs = await Promise.all([ensureRandomModel(cache), ensureRandomModel(cache), ensureRandomModel(cache)]);
    expect(new Set(dirs).size).toBe(1);
    expect(await readdir(cache)).toEqual([RANDOM_MODEL_NAME]);
    expect(await readJson(dirs[0], COMPLETE_MARKER)).toMatchObject({ name: RANDOM_MODEL_NAME });
  });

  it('gives concurrent first uses in separate processes one complete model', async () => {
    const cache = await tempCache();
    const script = join(cache, 'ensure.mts');
    const module = fileURLToPath(new URL('./random-model.ts', import.meta.url));
    await writeFile(
      script,
      `import { ensureRandomModel } from ${JSON.stringify(module)};\nconsole.log(await ensureRandomModel(${JSON.stringify(join(cache, 'models'))}));\n`,
    );
    const run = () => promisify(execFile)(process.execPath, ['--import', 'tsx', script]);
    const results = await Promise.all([run(), run(), run()]);
    const dir = join(cache, 'models', RANDOM_MODEL_NAME);
    for (const r of results) expect(r.stdout.trim()).toBe(dir);
    expect(await readdir(join(cache, 'models'))).toEqual([RANDOM_MODEL_NAME]);
    expect(await readJson(dir, COMPLETE_MARKER)).toMatchObject({ name: RANDOM_MODEL_NAME });
  });

  it('rewrites a folder without a current completion marker', async () => {
    const cache = await tempCache();
    const dir = await ensureRandomModel(cache);
    await writeFile(join(dir, COMPLETE_MARKER), JSON.stringify({ name: RANDOM_MODEL_NAME, generatorVersion: 0 }));
    await rm(join(dir, 'unet', 'model.onnx'));
    expect(await ensureRandomModel(cache)).toBe(dir);
    expect((await readFile(join(dir, 'unet', 'model.onnx'))).length).toBeGreaterThan(0);
    expect(await readdir(cache)).toEqual([RANDOM_MODEL_NAME]);
  });

  it('writes the configs a diffusers SD 1.x export has', async () => {
    const dir = await ensureRandomModel(await tempCache());
    expect(await readJson(dir, 'model_index.json')).toMatchObject({
      _class_name: 'OnnxStableDiffusionPipeline',
      scheduler: ['diffusers', 'PNDMScheduler'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'OnnxRuntimeModel'],
    });
    expect(await readJson(dir, 'scheduler/scheduler_config.json')).toMatchObject({
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
      num_train_timesteps: 1000,
      steps_offset: 1,
      skip_prk_steps: true,
      set_alpha_to_one: false,
      prediction_type: 'epsilon',
    });
    const vae = await readJson(dir, 'vae_decoder/config.json');
    expect(vae).toMatchObject({ scaling_factor: 0.18215, latent_channels: 4 });
    const text = await readJson(dir, 'text_encoder/config.json');
    const unet = await readJson(dir, 'unet/config.json');
    expect(unet).toMatchObject({ in_channels: 4, cross_attention_dim: text.hidden_size });
    const vocab = await readJson(dir, 'tokenizer/vocab.json');
    expect(text.vocab_size).toBe(Object.keys(vocab).length);
    expect(text.eos_token_id).toBe(vocab['<|endoftext|>']);
  });

  it('defaults to $SD_MODEL_CACHE, else .cache/models at the repository root', () => {
    expect(randomModelCacheDir({ SD_MODEL_CACHE: '/x/models' })).toBe('/x/models');
    expect(randomModelCacheDir({})).toMatch(/[/\\]\.cache[/\\]models$/);
  });
});

describe('buildRandomModelFiles', () => {
  it('produces the same bytes every time', () => {
    const digest = () => buildRandomModelFiles().map((f) => `${f.path}:${createHash('sha256').update(f.data).digest('hex')}`);
    expect(digest()).toEqual(digest());
  });
});
