// clip_skip on real graphs: the embedded model (which exports hidden_states.0..3), the same model with a
// non-trivial final LayerNorm patched in (so scale and bias must be read from the file), and the variant that
// exports only last_hidden_state (which must refuse clip_skip > 1 naming the field and why).

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbs, maxAbsDiff } from '../../../test/support/reference.ts';
import { writeRandomModel } from '../default-model/random-model.ts';
import { loadSdModel, type SdModel } from '../model/sd-model.ts';
import { StableDiffusionPipeline } from './pipeline.ts';
import { clipSkipProblem, encodeText } from './text-encoding.ts';
import { InvalidRequestError } from './types.ts';

const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');

const HIDDEN = 64;
const LAYERS = 3;
const BOS = 0;

/** The test's own LayerNorm in float64, independent of the runner's. */
function layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let off = 0; off < x.length; off += HIDDEN) {
    const row = Array.from(x.subarray(off, off + HIDDEN));
    const mean = row.reduce((a, b) => a + b, 0) / HIDDEN;
    const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / HIDDEN;
    for (let h = 0; h < HIDDEN; h++) out[off + h] = ((row[h] - mean) / Math.sqrt(v + eps)) * gamma[h] + beta[h];
  }
  return out;
}

describe('clip_skip', () => {
  let dir: string;
  let model: SdModel;
  let patched: SdModel;
  let plain: SdModel;
  let window: number[];
  const gamma = Float32Array.from({ length: HIDDEN }, (_, i) => 0.5 + 0.03 * i);
  const beta = Float32Array.from({ length: HIDDEN }, (_, i) => 0.2 * Math.sin(i));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clip-skip-'));
    await writeRandomModel(join(dir, 'default'));
    await writeRandomModel(join(dir, 'plain'), { textHiddenStates: false });
    // The same model with the final LayerNorm's scale and bias set to non-trivial values.
    await writeRandomModel(join(dir, 'patched'));
    const file = join(dir, 'patched', 'text_encoder', 'model.onnx');
    const proto = onnx.ModelProto.decode(await readFile(file));
    for (const t of proto.graph?.initializer ?? []) {
      if (t.name === 'final_layer_norm.weight') t.rawData = new Uint8Array(gamma.slice().buffer);
      if (t.name === 'final_layer_norm.bias') t.rawData = new Uint8Array(beta.slice().buffer);
    }
    await writeFile(file, onnx.ModelProto.encode(proto).finish());
    const opts = { intraOpNumThreads: 1 };
    [model, patched, plain] = await Promise.all(['default', 'patched', 'plain'].map((d) => loadSdModel(join(dir, d), opts)));
    window = [BOS, 5, 17, 42, 99, 7, ...Array(71).fill(1)];
  });
  afterAll(async () => {
    await Promise.all([model?.release(), patched?.release(), plain?.release()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('finds hidden_states.0..3 and the final LayerNorm of the embedded model', () => {
    const s = model.io.text.clipSkip;
    expect(s.ok).toBe(true);
    if (!s.ok) return;
    expect(s.hiddenStates.outputs).toEqual(['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3']);
    expect(s.hiddenStates.layers).toBe(LAYERS);
    expect(s.hiddenStates.finalLayerNorm.epsilon).toBeCloseTo(1e-5, 10);
  });

  it("reads the final LayerNorm's scale and bias from the file: LN(hidden_states.3) is last_hidden_state", async () => {
    const s = patched.io.text.clipSkip;
    expect(s.ok).toBe(true);
    if (!s.ok) return;
    expect(Array.from(s.hiddenStates.finalLayerNorm.gamma)).toEqual(Array.from(gamma));
    expect(Array.from(s.hiddenStates.finalLayerNorm.beta)).toEqual(Array.from(beta));
    const ids = Int32Array.from(window);
    const out = await patched.textEncoder.run({ input_ids: { data: ids, dims: [1, 77] } }, [
      'hidden_states.3',
      'last_hidden_state',
    ]);
    const mine = layerNorm(out['hidden_states.3'].data, gamma, beta, 1e-5);
    expect(maxAbsDiff(mine, out.last_hidden_state.data)).toBeLessThanOrEqual(1e-5);
  });

  it('clip_skip 2 conditions on LN(hidden_states.2) (diffusers clip_skip=1); 1 is last_hidden_state', async () => {
    const last = await encodeText(patched, { ids: [window] }, null, window, 1);
    const skip2 = await encodeText(patched, { ids: [window] }, null, window, 2);
    const out = await patched.textEncoder.run({ input_ids: { data: Int32Array.from(window), dims: [1, 77] } }, [
      'hidden_states.2',
      'last_hidden_state',
    ]);
    expect(maxAbsDiff(last.cond.data, out.last_hidden_state.data)).toBe(0);
    expect(skip2.cond.shape).toEqual([1, 77, HIDDEN]);
    const want = layerNorm(out['hidden_states.2'].data, gamma, beta, 1e-5);
    expect(maxAbsDiff(skip2.cond.data, want)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(skip2.cond.data, last.cond.data)).toBeGreaterThan(0.05 * maxAbs(last.cond.data));
  });

  it('clip_skip = the layer count takes the embeddings (hidden_states.0); one more is refused naming the limit', async () => {
    const deepest = await encodeText(patched, { ids: [window] }, null, window, LAYERS);
    const out = await patched.textEncoder.run({ input_ids: { data: Int32Array.from(window), dims: [1, 77] } }, [
      'hidden_states.1',
    ]);
    expect(maxAbsDiff(deepest.cond.data, layerNorm(out['hidden_states.1'].data, gamma, beta, 1e-5))).toBeLessThanOrEqual(1e-5);
    await expect(encodeText(patched, { ids: [window] }, null, window, LAYERS + 1)).rejects.toThrow(
      new InvalidRequestError("clip_skip must be an integer between 1 and 3 (the text encoder's layers), got 4"),
    );
  });

  it('an export without hidden_states refuses clip_skip > 1, saying why, and still runs clip_skip 1', async () => {
    expect(plain.io.text.clipSkip.ok).toBe(false);
    expect(clipSkipProblem(plain, 2)).toBe(
      'clip_skip must be 1 for this model: its text encoder outputs only last_hidden_state, pooler_output, not the per-layer hidden_states.N outputs clip skip needs (export with output_hidden_states); got 2',
    );
    expect(clipSkipProblem(plain, 1)).toBeNull();
    expect(clipSkipProblem(model, 2)).toBeNull();
    const a = await encodeText(plain, { ids: [window] }, null, window, 1);
    const b = await encodeText(model, { ids: [window] }, null, window, 1);
    // Same weights, different outputs only: the embeddings agree.
    expect(maxAbsDiff(a.cond.data, b.cond.data)).toBe(0);
  });

  it('reaches the image: a pipeline run with clipSkip 2 differs from clipSkip 1', async () => {
    const pipeline = await StableDiffusionPipeline.load(join(dir, 'patched'), { intraOpNumThreads: 1 });
    try {
      const base = { prompt: 'a red fox', width: 64, height: 64, steps: 2, guidanceScale: 7.5, seed: 3 };
      const one = await pipeline.generate({ ...base, clipSkip: 1 });
      const two = await pipeline.generate({ ...base, clipSkip: 2 });
      expect(maxAbsDiff(one.images[0].decoded, two.images[0].decoded)).toBeGreaterThan(1e-3);
    } finally {
      await pipeline.release();
    }
  });
});
