// Neural-network building blocks shared by the embedded model's graphs (linear, conv, norms, attention,
// ResNet block), each emitting standard ONNX ops with weights named like the diffusers modules they mirror.
import { float, type GraphBuilder } from './graph-builder.ts';
import { filled, type WeightGenerator } from './weights.ts';

export interface Ctx {
  b: GraphBuilder;
  w: WeightGenerator;
}

export function linear(
  { b, w }: Ctx,
  x: string,
  name: string,
  inFeatures: number,
  outFeatures: number,
  { bias = true, gain = 1 } = {},
): string {
  // Stored as [in, out] for MatMul, as torch.onnx.export writes nn.Linear.
  const weight = b.weight(`${name}.weight`, w.fanIn(`${name}.weight`, inFeatures * outFeatures, inFeatures, gain), [
    inFeatures,
    outFeatures,
  ]);
  const y = b.op('MatMul', [x, weight], {}, name);
  if (!bias) return y;
  return b.op('Add', [y, b.weight(`${name}.bias`, filled(outFeatures, 0), [outFeatures])], {}, name);
}

export function conv2d(
  { b, w }: Ctx,
  x: string,
  name: string,
  inChannels: number,
  outChannels: number,
  { kernel = 3, stride = 1, pads = undefined as number[] | undefined, gain = 1 } = {},
): string {
  const fanIn = inChannels * kernel * kernel;
  const weight = b.weight(`${name}.weight`, w.fanIn(`${name}.weight`, outChannels * fanIn, fanIn, gain), [
    outChannels,
    inChannels,
    kernel,
    kernel,
  ]);
  const bias = b.weight(`${name}.bias`, filled(outChannels, 0), [outChannels]);
  const p = (kernel - 1) / 2;
  return b.op(
    'Conv',
    [x, weight, bias],
    { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: pads ?? [p, p, p, p] },
    name,
  );
}

export function silu({ b }: Ctx, x: string, hint = ''): string {
  return b.op('Mul', [x, b.op('Sigmoid', [x], {}, hint)], {}, hint);
}

/** GroupNorm on NCHW as torch exports it: reshape to [N, G, -1], InstanceNormalization, reshape back, affine. */
export function groupNorm({ b }: Ctx, x: string, name: string, channels: number, groups: number, eps: number): string {
  if (channels % groups !== 0) throw new Error(`${name}: channels ${channels} must be a multiple of groups ${groups}`);
  const grouped = b.op('Reshape', [x, b.int64s([0, groups, -1])], {}, name);
  const normed = b.op(
    'InstanceNormalization',
    [grouped, b.floats(filled(groups, 1), [groups]), b.floats(filled(groups, 0), [groups])],
    { epsilon: float(eps) },
    name,
  );
  const back = b.op('Reshape', [normed, b.op('Shape', [x], {}, name)], {}, name);
  const gamma = b.weight(`${name}.weight`, filled(channels, 1), [channels, 1, 1]);
  const beta = b.weight(`${name}.bias`, filled(channels, 0), [channels, 1, 1]);
  return b.op('Add', [b.op('Mul', [back, gamma], {}, name), beta], {}, name);
}

/** LayerNormalization over the last axis (opset 17). */
export function layerNorm({ b }: Ctx, x: string, name: string, dim: number, eps: number): string {
  const gamma = b.weight(`${name}.weight`, filled(dim, 1), [dim]);
  const beta = b.weight(`${name}.bias`, filled(dim, 0), [dim]);
  return b.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: float(eps) }, name);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)); the Gelu op only exists from opset 20. */
export function gelu({ b }: Ctx, x: string, hint = ''): string {
  const erf = b.op('Erf', [b.op('Mul', [x, b.floats([Math.SQRT1_2], [])], {}, hint)], {}, hint);
  const onePlus = b.op('Add', [erf, b.floats([1], [])], {}, hint);
  return b.op('Mul', [b.op('Mul', [x, onePlus], {}, hint), b.floats([0.5], [])], {}, hint);
}

/** NCHW feature map → [N, H·W, C] tokens. */
export function toTokens({ b }: Ctx, x: string, hint = ''): string {
  return b.op('Transpose', [b.op('Reshape', [x, b.int64s([0, 0, -1])], {}, hint)], { perm: [0, 2, 1] }, hint);
}

/** [N, H·W, C] tokens → NCHW with the shape of `like`. */
export function fromTokens({ b }: Ctx, tokens: string, like: string, hint = ''): string {
  const channelsFirst = b.op('Transpose', [tokens], { perm: [0, 2, 1] }, hint);
  return b.op('Reshape', [channelsFirst, b.op('Shape', [like], {}, hint)], {}, hint);
}

export interface AttentionOptions {
  dim: number;
  heads: number;
  /** Feature size of `context` (cross-attention); self-attention when omitted. */
  contextDim?: number;
  qkvBias: boolean;
  /** Additive mask broadcast onto the [N, heads, Q, K] scores (the text encoder's causal mask). */
  mask?: string;
}

/** Multi-head scaled dot-product attention on [N, L, dim] tokens; `context` gives keys and values. */
export function attention(
  ctx: Ctx,
  x: string,
  context: string | null,
  name: string,
  { dim, heads, contextDim = dim, qkvBias, mask }: AttentionOptions,
): string {
  const { b } = ctx;
  if (dim % heads !== 0) throw new Error(`${name}: dim ${dim} must be a multiple of heads ${heads}`);
  const headDim = dim / heads;
  const kv = context ?? x;
  const q = linear(ctx, x, `${name}.to_q`, dim, dim, { bias: qkvBias });
  const k = linear(ctx, kv, `${name}.to_k`, contextDim, dim, { bias: qkvBias });
  const v = linear(ctx, kv, `${name}.to_v`, contextDim, dim, { bias: qkvBias });
  const split = b.int64s([0, 0, heads, headDim]);
  const qh = b.op('Transpose', [b.op('Reshape', [q, split], {}, name)], { perm: [0, 2, 1, 3] }, name);
  const kt = b.op('Transpose', [b.op('Reshape', [k, split], {}, name)], { perm: [0, 2, 3, 1] }, name);
  const vh = b.op('Transpose', [b.op('Reshape', [v, split], {}, name)], { perm: [0, 2, 1, 3] }, name);
  let scores = b.op('MatMul', [qh, kt], {}, name);
  scores = b.op('Mul', [scores, b.floats([1 / Math.sqrt(headDim)], [])], {}, name);
  if (mask) scores = b.op('Add', [scores, mask], {}, name);
  const probs = b.op('Softmax', [scores], { axis: -1 }, name);
  const heads_ = b.op('Transpose', [b.op('MatMul', [probs, vh], {}, name)], { perm: [0, 2, 1, 3] }, name);
  const merged = b.op('Reshape', [heads_, b.int64s([0, 0, dim])], {}, name);
  return linear(ctx, merged, `${name}.to_out.0`, dim, dim);
}

export interface ResnetOptions {
  groups: number;
  eps: number;
  /** SiLU(time embedding) [N or 1, timeDim], projected and added after conv1 (U-Net only). */
  temb?: { tensor: string; dim: number };
}

/** diffusers ResnetBlock2D: GN → SiLU → conv → (+ time) → GN → SiLU → conv, plus a 1×1 shortcut when channels change. */
export function resnetBlock(
  ctx: Ctx,
  x: string,
  name: string,
  inChannels: number,
  outChannels: number,
  { groups, eps, temb }: ResnetOptions,
): string {
  const { b } = ctx;
  let h = silu(ctx, groupNorm(ctx, x, `${name}.norm1`, inChannels, groups, eps), name);
  h = conv2d(ctx, h, `${name}.conv1`, inChannels, outChannels);
  if (temb) {
    const t = linear(ctx, temb.tensor, `${name}.time_emb_proj`, temb.dim, outChannels);
    h = b.op('Add', [h, b.op('Unsqueeze', [t, b.int64s([2, 3])], {}, name)], {}, name);
  }
  h = silu(ctx, groupNorm(ctx, h, `${name}.norm2`, outChannels, groups, eps), name);
  h = conv2d(ctx, h, `${name}.conv2`, outChannels, outChannels);
  const shortcut =
    inChannels === outChannels ? x : conv2d(ctx, x, `${name}.conv_shortcut`, inChannels, outChannels, { kernel: 1 });
  return b.op('Add', [shortcut, h], {}, name);
}

/** Nearest-neighbour 2× upsampling, as diffusers' Upsample2D (F.interpolate nearest) exports. */
export function upsample2x({ b }: Ctx, x: string, hint = ''): string {
  return b.op(
    'Resize',
    [x, '', b.floats([1, 1, 2, 2], [4])],
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
    hint,
  );
}
