import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  maxAbsDiff,
  type RefTensor,
  readReferenceJson,
  referenceDir,
  referenceSkipReason,
} from '../../../test/support/reference.ts';
import { loadSdModel, type SdModel } from '../model/sd-model.ts';
import { applyTokenWeights, encodeText, equalizeWindows } from './text-encoding.ts';

interface EmbeddingCase {
  prompt: string;
  input_ids: number[];
  last_hidden_state: RefTensor;
}

const EMPTY = [49406, ...Array(76).fill(49407)];

// Golden: ../shared/reference/pipeline/text_embeddings.json (HF CLIPTextModel via torch, then ONNX); tolerance abs 1e-4 (README).
describe.skipIf(!referenceDir)(`text encoding vs pipeline/text_embeddings.json${referenceSkipReason}`, () => {
  let model: SdModel;
  let cases: EmbeddingCase[];
  beforeAll(async () => {
    model = await loadSdModel(join(referenceDir!, 'tiny-sd'), { intraOpNumThreads: 1 });
    cases = readReferenceJson<EmbeddingCase[]>('pipeline', 'text_embeddings.json');
  });
  afterAll(() => model?.release());

  it('reproduces every prompt embedding within 1e-4', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(3);
    for (const c of cases) {
      const out = await encodeText(model, { ids: [c.input_ids] }, null, EMPTY);
      expect(out.cond.shape).toEqual([1, 77, 32]);
      expect(maxAbsDiff(out.cond.data, c.last_hidden_state.data), c.prompt).toBeLessThanOrEqual(1e-4);
    }
  });

  it('encodes cond and uncond in one batched call with the same values as separate calls', async () => {
    const [empty, a] = [cases.find((c) => c.prompt === '')!, cases.find((c) => c.prompt !== '')!];
    const before = model.textEncoder.runCount;
    const out = await encodeText(model, { ids: [a.input_ids] }, { ids: [empty.input_ids] }, EMPTY);
    expect(model.textEncoder.runCount - before).toBe(1);
    expect(maxAbsDiff(out.cond.data, a.last_hidden_state.data)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(out.uncond!.data, empty.last_hidden_state.data)).toBeLessThanOrEqual(1e-4);
  });

  it('concatenates chunk windows along the sequence axis and pads the shorter side with empty windows', async () => {
    const a = cases.find((c) => c.prompt !== '')!;
    const out = await encodeText(model, { ids: [a.input_ids, a.input_ids] }, { ids: [EMPTY] }, EMPTY);
    expect(out.cond.shape).toEqual([1, 154, 32]);
    expect(out.uncond!.shape).toEqual([1, 154, 32]);
    const win = 77 * 32;
    expect(maxAbsDiff(out.cond.data.subarray(win), a.last_hidden_state.data)).toBeLessThanOrEqual(1e-4);
    const empty = cases.find((c) => c.prompt === '')!;
    expect(maxAbsDiff(out.uncond!.data.subarray(win), empty.last_hidden_state.data)).toBeLessThanOrEqual(1e-4);
  });

  it('applies weights as A1111: scaled tokens, then the original mean restored', async () => {
    const a = cases.find((c) => c.prompt !== '')!;
    const weights = a.input_ids.map((_, i) => (i === 3 ? 1.5 : 1));
    const out = await encodeText(model, { ids: [a.input_ids], weights: [weights] }, null, EMPTY);
    const ref = Float32Array.from(a.last_hidden_state.data);
    const mean = (x: ArrayLike<number>) => Array.from(x).reduce((s, v) => s + v, 0) / x.length;
    expect(Math.abs(mean(out.cond.data) - mean(ref))).toBeLessThan(1e-5);
    // Token 3 grew relative to token 2 by the weight.
    const tok = (x: Float32Array, i: number) => x.subarray(i * 32, (i + 1) * 32);
    const ratio = tok(out.cond.data, 3)[0] / tok(out.cond.data, 2)[0];
    expect(ratio).toBeCloseTo((1.5 * tok(ref, 3)[0]) / tok(ref, 2)[0], 3);
  });
});

describe('token weights and window equalization', () => {
  it('leaves z untouched with all-1 weights', () => {
    const z = Float32Array.from([1, 2, 3, 4]);
    applyTokenWeights(z, 0, 2, 2, [1, 1]);
    expect(Array.from(z)).toEqual([1, 2, 3, 4]);
  });
  it('keeps the mean after weighting', () => {
    const z = Float32Array.from([1, 2, 3, 4]);
    applyTokenWeights(z, 0, 2, 2, [2, 1]);
    expect(z.reduce((s, v) => s + v, 0)).toBeCloseTo(10, 5);
    expect(z[0] / z[2]).toBeCloseTo(2 / 3, 5);
  });
  it('pads the shorter prompt with empty windows of weight 1', () => {
    const [a, b] = equalizeWindows({ ids: [[1], [2], [3]], weights: [[1], [1], [2]] }, { ids: [[9]] }, [0]);
    expect(a.ids).toHaveLength(3);
    expect(b.ids).toEqual([[9], [0], [0]]);
  });
});
