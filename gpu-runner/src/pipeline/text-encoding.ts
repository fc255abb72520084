// Text encoding: cond and uncond windows in one batched text-encoder call, AUTOMATIC1111 prompt weighting
// (scale, then restore the mean), long prompts as concatenated 77-token windows, and clip skip.
import type { SdModel } from '../model/sd-model.ts';
import { applyLayerNorm } from '../model/text-hidden-states.ts';
import { type Float32Tensor, InvalidRequestError, type PromptTokens } from './types.ts';

export interface TextEmbeddings {
  /** [1, windows * seq, hidden] */
  cond: Float32Tensor;
  /** Same shape as cond; absent when guidance is off. */
  uncond?: Float32Tensor;
  /** Time inside the text encoder. */
  ms: number;
}

/**
 * A1111 pads the shorter of cond/uncond with empty-prompt windows so both have the same token count
 * (the U-Net batch needs one sequence length); weights of the padding are 1.
 */
export function equalizeWindows(a: PromptTokens, b: PromptTokens, emptyWindow: readonly number[]): [PromptTokens, PromptTokens] {
  const pad = (p: PromptTokens, count: number): PromptTokens => {
    if (p.ids.length >= count) return p;
    const ids = [...p.ids];
    const weights = p.weights ? [...p.weights] : undefined;
    while (ids.length < count) {
      ids.push([...emptyWindow]);
      weights?.push(emptyWindow.map(() => 1));
    }
    return weights ? { ids, weights } : { ids };
  };
  const n = Math.max(a.ids.length, b.ids.length);
  return [pad(a, n), pad(b, n)];
}

/**
 * Per-token weights as A1111's `process_tokens` applies them: z *= w (per token), then z *= mean_before / mean_after,
 * so emphasis changes directions without shifting the overall level. Done per window.
 */
export function applyTokenWeights(
  z: Float32Array,
  offset: number,
  seq: number,
  hidden: number,
  weights: readonly number[],
): void {
  if (weights.every((w) => w === 1)) return;
  let before = 0;
  let after = 0;
  for (let s = 0; s < seq; s++) {
    const w = weights[s] ?? 1;
    const base = offset + s * hidden;
    for (let h = 0; h < hidden; h++) {
      const v = z[base + h];
      before += v;
      z[base + h] = v * w;
      after += z[base + h];
    }
  }
  if (after === 0) return;
  const ratio = before / after;
  const end = offset + seq * hidden;
  for (let i = offset; i < end; i++) z[i] *= ratio;
}

function checkWindows(name: string, tokens: PromptTokens, seq: number): void {
  if (tokens.ids.length === 0) throw new InvalidRequestError(`${name}: at least one token window is required`);
  for (const [i, w] of tokens.ids.entries()) {
    if (w.length !== seq)
      throw new InvalidRequestError(`${name}: window ${i} has ${w.length} tokens, the text encoder takes ${seq}`);
    if (tokens.weights && tokens.weights[i]?.length !== seq)
      throw new InvalidRequestError(`${name}: weights of window ${i} must have ${seq} entries`);
  }
}

/**
 * The graph output clip skip reads and whether it still needs the final LayerNorm. clipSkip counts as AUTOMATIC1111
 * does (1 = the last layer, 2 = the penultimate, ...), so diffusers' clip_skip is ours minus 1: diffusers takes
 * hidden_states[-(clip_skip + 1)] and applies the final LayerNorm, which for ours is hidden_states[-clipSkip].
 */
export function clipSkipOutput(model: SdModel, clipSkip: number): { output: string; layerNorm: boolean } {
  if (clipSkip === 1) return { output: model.io.text.output, layerNorm: false };
  const support = model.io.text.clipSkip;
  if (!support.ok) throw new InvalidRequestError(`clip_skip must be 1 for this model: ${support.reason}; got ${clipSkip}`);
  const { outputs, layers } = support.hiddenStates;
  if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > layers) {
    throw new InvalidRequestError(
      `clip_skip must be an integer between 1 and ${layers} (the text encoder's layers), got ${clipSkip}`,
    );
  }
  return { output: outputs[outputs.length - clipSkip], layerNorm: true };
}

/** The 422 message for a clip_skip this model cannot do, or null (the runner's input check, before any work). */
export function clipSkipProblem(model: SdModel, clipSkip: number): string | null {
  try {
    clipSkipOutput(model, clipSkip);
    return null;
  } catch (err) {
    if (err instanceof InvalidRequestError) return err.message;
    throw err;
  }
}

/** Encodes cond (and uncond when given) in one text-encoder call; clipSkip 1 (default) = the last layer. */
export async function encodeText(
  model: SdModel,
  cond: PromptTokens,
  uncond: PromptTokens | null,
  emptyWindow: readonly number[],
  clipSkip = 1,
): Promise<TextEmbeddings> {
  const read = clipSkipOutput(model, clipSkip);
  const seq = model.io.text.sequenceLength ?? emptyWindow.length;
  let positive = cond;
  let negative = uncond;
  if (negative) [positive, negative] = equalizeWindows(positive, negative, emptyWindow);
  checkWindows('prompt', positive, seq);
  if (negative) checkWindows('negative prompt', negative, seq);

  // Batch order [uncond windows..., cond windows...] mirrors the U-Net's [uncond; cond].
  const weightsOf = (tokens: PromptTokens) => tokens.weights ?? tokens.ids.map(() => null);
  const windows = negative ? [...negative.ids, ...positive.ids] : positive.ids;
  const weights = negative ? [...weightsOf(negative), ...weightsOf(positive)] : weightsOf(positive);
  const count = windows.length * seq;
  const flat = model.io.text.inputDtype === 'int64' ? new BigInt64Array(count) : new Int32Array(count);
  windows.forEach((w, i) => {
    for (let s = 0; s < seq; s++) {
      if (flat instanceof BigInt64Array) flat[i * seq + s] = BigInt(w[s]);
      else flat[i * seq + s] = w[s];
    }
  });

  const before = model.textEncoder.runMs;
  const out = await model.textEncoder.run({ [model.io.text.input]: { data: flat, dims: [windows.length, seq] } }, [read.output]);
  const ms = model.textEncoder.runMs - before;
  const hiddenStates = out[read.output];
  const [batch, outSeq, hidden] = hiddenStates.dims;
  if (batch !== windows.length || outSeq !== seq) {
    throw new Error(`text encoder returned [${hiddenStates.dims.join(', ')}], expected [${windows.length}, ${seq}, hidden]`);
  }
  // The final LayerNorm comes before the weights, as last_hidden_state has it (A1111 and diffusers alike).
  if (read.layerNorm && model.io.text.clipSkip.ok)
    applyLayerNorm(hiddenStates.data, model.io.text.clipSkip.hiddenStates.finalLayerNorm);
  weights.forEach((w, i) => {
    if (w) applyTokenWeights(hiddenStates.data, i * seq * hidden, seq, hidden, w);
  });

  // Windows of one prompt are consecutive in the batch, so concatenating along the sequence axis is a slice.
  const promptSize = positive.ids.length * seq * hidden;
  const shape = [1, positive.ids.length * seq, hidden];
  const data = hiddenStates.data;
  if (!negative) return { cond: { data: data.slice(0, promptSize), shape }, ms };
  return {
    uncond: { data: data.slice(0, promptSize), shape: [...shape] },
    cond: { data: data.slice(promptSize, 2 * promptSize), shape },
    ms,
  };
}
