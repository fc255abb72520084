// A failure inside the model (onnxruntime's own error, whose message names its source files, graph nodes and shapes)
// reaches the caller as a plain "the model failed" message, while the runner's log keeps the whole cause.
// The model here is the embedded one with its U-Net config stripped of its blocks, so the runner believes any multiple
// of 8 fits and onnxruntime itself fails on a side its U-Net cannot halve evenly.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR } from '@sd/gpu-runner/default-model/write-model';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunnerHandle, startRunner } from '../scripts/stack/runner-process.ts';

const API_TOKEN = 'internal-errors-token';
let runner: RunnerHandle;
let modelDir: string;

beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'sd-misconfigured-model-'));
  await cp(DEFAULT_MODEL_DIR, modelDir, { recursive: true });
  const configPath = join(modelDir, 'unet', 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  delete config.up_block_types;
  delete config.down_block_types;
  delete config.block_out_channels;
  await writeFile(configPath, JSON.stringify(config));
  runner = await startRunner({ API_TOKEN, MODEL_DIR: modelDir });
});

afterAll(async () => {
  await runner?.stop();
  await rm(modelDir, { recursive: true, force: true });
});

describe('an error inside the model', () => {
  it('fails the prediction with a message free of internals, and logs the cause for the operator', async () => {
    const res = await fetch(`${runner.url}/predictions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
      // 72 px = 9 latent cells: the U-Net's down- and up-sampling give 10, and its skip connection cannot concatenate.
      body: JSON.stringify({
        id: 'odd-side-1',
        input: { prompt: 'a red circle', width: 72, height: 64, num_inference_steps: 2 },
      }),
    });
    expect(res.status).toBe(200);
    const prediction = (await res.json()) as RunnerPrediction;
    expect(prediction.status).toBe('failed');
    expect(prediction.error).toBe('the model failed while generating: an internal error (the runner log has the details)');
    const shown = JSON.stringify(prediction);
    expect(shown).not.toMatch(/onnxruntime|\.cc\b|Concat|node_modules|\/work\//i);
    // The operator's log has what happened.
    const logged = runner.logRecords().find((r) => r.msg === 'prediction failed' && JSON.stringify(r).includes('odd-side-1'));
    expect(JSON.stringify(logged)).toMatch(/caused by: .*(Concat|onnxruntime|axis)/i);
  });
});
