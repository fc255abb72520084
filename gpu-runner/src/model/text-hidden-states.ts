// What clip skip needs from a text encoder graph: its per-layer outputs (hidden_states.0..N, optimum's names when
// exported with output_hidden_states) and the final LayerNorm's parameters, read from the graph file itself.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { errorMessage } from '@sd/shared/error-message';
import type { onnx as OnnxNamespace } from 'onnx-proto';

// onnx-proto is CommonJS and Node's ESM loader cannot see its named export, so load it through require.
const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');

export interface FinalLayerNorm {
  gamma: Float32Array;
  beta: Float32Array;
  epsilon: number;
}

export interface TextHiddenStates {
  /** outputs[k] is hidden_states.k: 0 = the embeddings, k = the output of layer k (before the final LayerNorm). */
  outputs: string[];
  /** The encoder's layer count (outputs.length - 1): clip_skip may be 1 to this. */
  layers: number;
  finalLayerNorm: FinalLayerNorm;
}

/** Why a graph cannot do clip skip, for the 422 a request asking for it gets. */
export type ClipSkipSupport = { ok: true; hiddenStates: TextHiddenStates } | { ok: false; reason: string };

const HIDDEN = /^hidden_states\.(\d+)$/;

/** The hidden_states.k output names in layer order, or null unless they run 0..N without gaps (N >= 1). */
export function hiddenStateOutputs(outputNames: readonly string[]): string[] | null {
  const byIndex = new Map<number, string>();
  for (const name of outputNames) {
    const m = HIDDEN.exec(name);
    if (m) byIndex.set(Number(m[1]), name);
  }
  if (byIndex.size < 2) return null;
  const out: string[] = [];
  for (let k = 0; k < byIndex.size; k++) {
    const name = byIndex.get(k);
    if (!name) return null;
    out.push(name);
  }
  return out;
}

function floatsOf(t: OnnxNamespace.ITensorProto): Float32Array | null {
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) return null;
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    // Copy: rawData is a view into the file buffer at an offset that need not be 4-byte aligned.
    const bytes = new Uint8Array(raw.byteLength);
    bytes.set(raw);
    return new Float32Array(bytes.buffer);
  }
  return t.floatData && t.floatData.length > 0 ? Float32Array.from(t.floatData) : null;
}

/**
 * The LayerNormalization whose output is last_hidden_state (through Identity nodes), with its scale and bias
 * initializers. Exports below opset 17 decompose LayerNorm into ReduceMean/Sub/Pow/...; those are not recognised.
 */
export function findFinalLayerNorm(graph: OnnxNamespace.IGraphProto, lastHiddenState: string): FinalLayerNorm | string {
  const producer = new Map<string, OnnxNamespace.INodeProto>();
  for (const node of graph.node ?? []) for (const out of node.output ?? []) producer.set(out, node);
  let node = producer.get(lastHiddenState);
  while (node?.opType === 'Identity') node = producer.get(node.input?.[0] ?? '');
  if (node?.opType !== 'LayerNormalization') {
    return `${lastHiddenState} is not produced by a LayerNormalization node (got ${node?.opType ?? 'nothing'})`;
  }
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const [, scaleName, biasName] = node.input ?? [];
  const scale = inits.get(scaleName ?? '');
  const gamma = scale ? floatsOf(scale) : null;
  const bias = biasName ? inits.get(biasName) : undefined;
  const beta = bias ? floatsOf(bias) : gamma ? new Float32Array(gamma.length) : null;
  if (!gamma || !beta || gamma.length !== beta.length) {
    return `the final LayerNorm's scale/bias are not float32 initializers in the graph file`;
  }
  const eps = node.attribute?.find((a) => a.name === 'epsilon');
  return { gamma, beta, epsilon: eps?.f ?? 1e-5 };
}

/** Reads the text encoder graph at `path` for clip skip; never throws for an unsupported graph, says why instead. */
export function readClipSkipSupport(path: string, outputNames: readonly string[], lastHiddenState: string): ClipSkipSupport {
  const outputs = hiddenStateOutputs(outputNames);
  if (!outputs) {
    return {
      ok: false,
      reason: `its text encoder outputs only ${outputNames.join(', ')}, not the per-layer hidden_states.N outputs clip skip needs (export with output_hidden_states)`,
    };
  }
  let graph: OnnxNamespace.IGraphProto | null | undefined;
  try {
    graph = onnx.ModelProto.decode(readFileSync(path)).graph;
  } catch (err) {
    return { ok: false, reason: `its text encoder graph could not be read for the final LayerNorm (${errorMessage(err)})` };
  }
  if (!graph) return { ok: false, reason: 'its text encoder file has no graph' };
  const norm = findFinalLayerNorm(graph, lastHiddenState);
  if (typeof norm === 'string') return { ok: false, reason: `its text encoder's final LayerNorm cannot be applied: ${norm}` };
  return { ok: true, hiddenStates: { outputs, layers: outputs.length - 1, finalLayerNorm: norm } };
}

/** LayerNorm over the last axis, in place: (x - mean) / sqrt(var + eps) * gamma + beta, per token (float64 sums). */
export function applyLayerNorm(x: Float32Array, norm: FinalLayerNorm): void {
  const hidden = norm.gamma.length;
  if (x.length % hidden !== 0) throw new Error(`layer norm: ${x.length} values are not tokens of ${hidden}`);
  for (let off = 0; off < x.length; off += hidden) {
    let mean = 0;
    for (let h = 0; h < hidden; h++) mean += x[off + h];
    mean /= hidden;
    let variance = 0;
    for (let h = 0; h < hidden; h++) variance += (x[off + h] - mean) ** 2;
    variance /= hidden;
    const inv = 1 / Math.sqrt(variance + norm.epsilon);
    for (let h = 0; h < hidden; h++) x[off + h] = (x[off + h] - mean) * inv * norm.gamma[h] + norm.beta[h];
  }
}
