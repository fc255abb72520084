// Runs every graph of the seeded-random model in onnxruntime-node with the names, dtypes and shapes a diffusers
// ONNX export has, and checks the properties the pipeline relies on.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRandomModel } from './random-model.ts';
import { WeightGenerator } from './weights.ts';

let cache: string;
const sessions: Record<string, ort.InferenceSession> = {};
let vocabSize: number;

beforeAll(async () => {
  cache = await mkdtemp(join(tmpdir(), 'sd-default-model-graphs-'));
  const dir = await ensureRandomModel(cache);
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1 };
  for (const name of ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder']) {
    sessions[name] = await ort.InferenceSession.create(join(dir, name, 'model.onnx'), options);
  }
  vocabSize = Object.keys(JSON.parse(await readFile(join(dir, 'tokenizer', 'vocab.json'), 'utf8'))).length;
});
afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
  await rm(cache, { recursive: true, force: true });
});

const randn = (seed: number, n: number, std = 1) => new WeightGenerator(seed).normal('test', n, std);
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const data = (t: ort.OnnxValue) => (t as ort.Tensor).data as Float32Array;

function metadata(session: ort.InferenceSession, kind: 'input' | 'output') {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  return list.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name }));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Token ids of a prompt [BOS, ...tokens, EOS, EOS padding] to 77, SD 1.x style. */
function ids(tokens: number[]): Int32Array {
  const bos = vocabSize - 2;
  const eos = vocabSize - 1;
  const out = new Int32Array(77).fill(eos);
  out.set([bos, ...tokens], 0);
  return out;
}

async function encodeText(rows: Int32Array[]) {
  const input = new Int32Array(rows.length * 77);
  for (const [i, r] of rows.entries()) input.set(r, i * 77);
  const out = await sessions.text_encoder.run({ input_ids: new ort.Tensor('int32', input, [rows.length, 77]) });
  return { last: out.last_hidden_state as ort.Tensor, pooled: out.pooler_output as ort.Tensor };
}

describe('seeded-random model graphs', () => {
  it('declare the inputs and outputs of a diffusers ONNX export, with dynamic dims', () => {
    expect(metadata(sessions.text_encoder, 'input')).toEqual([
      { name: 'input_ids', type: 'int32', shape: ['batch', 'sequence'] },
    ]);
    expect(metadata(sessions.text_encoder, 'output')).toEqual([
      { name: 'last_hidden_state', type: 'float32', shape: ['batch', 'sequence', 64] },
      { name: 'pooler_output', type: 'float32', shape: ['batch', 64] },
      // optimum's output_hidden_states names: the embeddings, then each of the 3 layers before the final LayerNorm
      ...[0, 1, 2, 3].map((k) => ({ name: `hidden_states.${k}`, type: 'float32', shape: ['batch', 'sequence', 64] })),
    ]);
    expect(metadata(sessions.unet, 'input')).toEqual([
      { name: 'sample', type: 'float32', shape: ['batch', 4, 'height', 'width'] },
      { name: 'timestep', type: 'float32', shape: ['batch'] },
      { name: 'encoder_hidden_states', type: 'float32', shape: ['batch', 'sequence', 64] },
    ]);
    expect(metadata(sessions.unet, 'output')).toEqual([
      { name: 'out_sample', type: 'float32', shape: ['batch', 4, 'height', 'width'] },
    ]);
    expect(metadata(sessions.vae_encoder, 'input')).toEqual([
      { name: 'sample', type: 'float32', shape: ['batch', 3, 'height', 'width'] },
    ]);
    expect(metadata(sessions.vae_encoder, 'output')).toEqual([
      { name: 'latent_sample', type: 'float32', shape: ['batch', 4, 'latent_height', 'latent_width'] },
    ]);
    expect(metadata(sessions.vae_decoder, 'input')).toEqual([
      { name: 'latent_sample', type: 'float32', shape: ['batch', 4, 'latent_height', 'latent_width'] },
    ]);
    expect(metadata(sessions.vae_decoder, 'output')).toEqual([
      { name: 'sample', type: 'float32', shape: ['batch', 3, 'height', 'width'] },
    ]);
  });

  it('text encoder: batch 2, causal attention, pooler_output at the first EOS', async () => {
    const a = ids([10, 20, 30, 40]);
    const b = ids([10, 20, 30, 41]); // differs from `a` at position 4 only
    const { last, pooled } = await encodeText([a, b]);
    expect(last.dims).toEqual([2, 77, 64]);
    expect(pooled.dims).toEqual([2, 64]);
    const h = data(last);
    const row = (batch: number, pos: number) => h.subarray((batch * 77 + pos) * 64, (batch * 77 + pos + 1) * 64);
    for (let pos = 0; pos < 4; pos++) expect(maxAbsDiff(row(0, pos), row(1, pos)), `position ${pos}`).toBeLessThan(1e-5);
    expect(maxAbsDiff(row(0, 4), row(1, 4))).toBeGreaterThan(1e-3);
    // EOS is at position 5 (BOS + 4 tokens).
    expect(maxAbsDiff(data(pooled).subarray(0, 64), row(0, 5))).toBe(0);
    expect(maxAbsDiff(data(pooled).subarray(64, 128), row(1, 5))).toBe(0);
  });

  it('text encoder: accepts a sequence shorter than 77', async () => {
    const input = new ort.Tensor('int32', ids([5, 6]).subarray(0, 8), [1, 8]);
    const out = await sessions.text_encoder.run({ input_ids: input });
    expect(out.last_hidden_state.dims).toEqual([1, 8, 64]);
  });

  for (const [h, w] of [
    [8, 8],
    [8, 12],
  ]) {
    it(`U-Net: ${h * 8}x${w * 8} px at batch 2; depends on timestep and text; one timestep broadcasts`, async () => {
      const { last } = await encodeText([ids([]), ids([100, 200, 300])]);
      const sample = f32(randn(1, 2 * 4 * h * w), [2, 4, h, w]);
      const run = async (t: number[], text: ort.Tensor) =>
        data(
          (await sessions.unet.run({ sample, timestep: f32(Float32Array.from(t), [t.length]), encoder_hidden_states: text }))
            .out_sample,
        );
      const base = await run([500], last);
      expect(base.length).toBe(2 * 4 * h * w);
      expect(base.every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(base, await run([500, 500], last))).toBeLessThan(1e-5);
      expect(maxAbsDiff(base, await run([100], last))).toBeGreaterThan(1e-2);
      const otherText = (await encodeText([ids([7]), ids([8])])).last;
      expect(maxAbsDiff(base, await run([500], otherText))).toBeGreaterThan(1e-2);
      // Batch items are independent: item 0 with the unconditional text, item 1 with the prompt.
      const half = 4 * h * w;
      expect(maxAbsDiff(base.subarray(0, half), base.subarray(half))).toBeGreaterThan(1e-2);
    });

    it(`VAE: encodes ${h * 8}x${w * 8} px to ${h}x${w} latents and decodes back to pixels, batch 2`, async () => {
      const image = f32(randn(2, 2 * 3 * h * 8 * w * 8, 0.5), [2, 3, h * 8, w * 8]);
      const latent = (await sessions.vae_encoder.run({ sample: image })).latent_sample as ort.Tensor;
      expect(latent.dims).toEqual([2, 4, h, w]);
      const decoded = (await sessions.vae_decoder.run({ latent_sample: latent })).sample as ort.Tensor;
      expect(decoded.dims).toEqual([2, 3, h * 8, w * 8]);
    });
  }

  it('VAE decoder: random latents give a non-degenerate image, mostly inside [-1, 1]', async () => {
    // The pipeline divides latents by the scaling factor 0.18215 before decoding.
    const latents = randn(3, 4 * 16 * 16, 1 / 0.18215);
    const px = data((await sessions.vae_decoder.run({ latent_sample: f32(latents, [1, 4, 16, 16]) })).sample);
    const plane = 128 * 128;
    let outside = 0;
    for (const v of px) if (Math.abs(v) > 1) outside++;
    expect(outside / px.length).toBeLessThan(0.15);
    for (let c = 0; c < 3; c++) {
      const channel = px.subarray(c * plane, (c + 1) * plane);
      let sum = 0;
      let sq = 0;
      for (const v of channel) {
        sum += v;
        sq += v * v;
      }
      const std = Math.sqrt(sq / plane - (sum / plane) ** 2);
      expect(std, `channel ${c} spread`).toBeGreaterThan(0.1);
      expect(std, `channel ${c} spread`).toBeLessThan(1);
    }
    // Colour, not grey: the channels are not copies of each other.
    expect(maxAbsDiff(px.subarray(0, plane), px.subarray(plane, 2 * plane))).toBeGreaterThan(0.1);
  });
});
