// The embedded model's text encoder: a CLIP text transformer (token + learned position embeddings,
// pre-LN blocks with causal multi-head attention and quick-GELU MLP, final LayerNorm), as HF CLIPTextModel.
import { ElemType, GraphBuilder } from './graph-builder.ts';
import { attention, type Ctx, layerNorm, linear } from './layers.ts';
import type { WeightGenerator } from './weights.ts';

export interface TextEncoderSpec {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  maxPositions: number;
  layerNormEps: number;
  bosTokenId: number;
  eosTokenId: number;
  /** int32 as the diffusers script and older optimum export it; int64 as newer optimum does. Default int32. */
  inputIdsDtype?: 'int32' | 'int64';
  /**
   * Also output hidden_states.0 (embeddings) .. hidden_states.{layers} (each layer, before the final LayerNorm), as
   * optimum names them when exporting with output_hidden_states; clip skip reads them. Default true.
   */
  hiddenStates?: boolean;
}

/** Large negative instead of -inf: softmax gives exactly 0 either way, and no inf reaches the graph. */
const MASKED = -1e9;

export function buildTextEncoder(spec: TextEncoderSpec, w: WeightGenerator): GraphBuilder {
  const b = new GraphBuilder('text_encoder');
  const ctx: Ctx = { b, w };
  const H = spec.hiddenSize;

  const int64Ids = spec.inputIdsDtype === 'int64';
  const ids = b.input('input_ids', int64Ids ? ElemType.int64 : ElemType.int32, ['batch', 'sequence']);
  const tokenTable = b.weight(
    'embeddings.token_embedding.weight',
    w.normal('embeddings.token_embedding.weight', spec.vocabSize * H, 0.02),
    [spec.vocabSize, H],
  );
  const positionTable = b.weight(
    'embeddings.position_embedding.weight',
    w.normal('embeddings.position_embedding.weight', spec.maxPositions * H, 0.01),
    [spec.maxPositions, H],
  );
  // The sequence length S, as a 1-D [S]; positions and the causal mask are sliced to it.
  const seqLen = b.op('Shape', [ids], { start: 1, end: 2 }, 'embeddings');
  const positions = b.op('Slice', [positionTable, b.int64s([0]), seqLen, b.int64s([0])], {}, 'embeddings');
  let h = b.op('Add', [b.op('Gather', [tokenTable, ids], { axis: 0 }, 'embeddings'), positions], {}, 'embeddings');
  const hiddenStates = spec.hiddenStates !== false;
  const exposeHidden = (k: number) => {
    if (hiddenStates) b.op('Identity', [h], {}, 'output', `hidden_states.${k}`);
  };
  exposeHidden(0);

  const causal = new Float32Array(spec.maxPositions * spec.maxPositions);
  for (let i = 0; i < spec.maxPositions; i++)
    for (let j = i + 1; j < spec.maxPositions; j++) causal[i * spec.maxPositions + j] = MASKED;
  const maskTable = b.weight('causal_mask', causal, [spec.maxPositions, spec.maxPositions]);
  const maskEnds = b.op('Concat', [seqLen, seqLen], { axis: 0 }, 'causal_mask');
  const mask = b.op('Slice', [maskTable, b.int64s([0, 0]), maskEnds, b.int64s([0, 1])], {}, 'causal_mask');

  for (let i = 0; i < spec.layers; i++) {
    const name = `encoder.layers.${i}`;
    const attn = attention(ctx, layerNorm(ctx, h, `${name}.layer_norm1`, H, spec.layerNormEps), null, `${name}.self_attn`, {
      dim: H,
      heads: spec.heads,
      qkvBias: true,
      mask,
    });
    h = b.op('Add', [h, attn], {}, name);
    let m = linear(
      ctx,
      layerNorm(ctx, h, `${name}.layer_norm2`, H, spec.layerNormEps),
      `${name}.mlp.fc1`,
      H,
      spec.intermediateSize,
    );
    // quick GELU, x·σ(1.702x), as CLIP was trained with.
    m = b.op('Mul', [m, b.op('Sigmoid', [b.op('Mul', [m, b.floats([1.702], [])], {}, name)], {}, name)], {}, name);
    m = linear(ctx, m, `${name}.mlp.fc2`, spec.intermediateSize, H);
    h = b.op('Add', [h, m], {}, name);
    exposeHidden(i + 1);
  }
  const last = layerNorm(ctx, h, 'final_layer_norm', H, spec.layerNormEps);
  const lastHidden = b.op('Identity', [last], {}, 'output', 'last_hidden_state');

  // pooler_output = last_hidden_state[arange(B), argmax(input_ids)]: EOS has the highest id, so this is
  // the first EOS position, as HF CLIPTextModel pools.
  // HF casts the ids to int32 before the argmax (input_ids.to(torch.int)), so an int64 export has that Cast too.
  const pooledIds = int64Ids ? b.op('Cast', [ids], { to: ElemType.int32 }, 'pooler') : ids;
  const eosIndex = b.op('ArgMax', [pooledIds], { axis: 1, keepdims: 1 }, 'pooler');
  const gatherIndex = b.op(
    'Expand',
    [b.op('Unsqueeze', [eosIndex, b.int64s([2])], {}, 'pooler'), b.int64s([1, 1, H])],
    {},
    'pooler',
  );
  const pooled = b.op('GatherElements', [lastHidden, gatherIndex], { axis: 1 }, 'pooler');
  b.op('Squeeze', [pooled, b.int64s([1])], {}, 'pooler', 'pooler_output');

  b.output('last_hidden_state', ElemType.float32, ['batch', 'sequence', H]);
  b.output('pooler_output', ElemType.float32, ['batch', H]);
  if (hiddenStates) {
    for (let k = 0; k <= spec.layers; k++) b.output(`hidden_states.${k}`, ElemType.float32, ['batch', 'sequence', H]);
  }
  return b;
}
