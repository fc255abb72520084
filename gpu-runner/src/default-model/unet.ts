// The embedded model's U-Net: diffusers UNet2DConditionModel in miniature (sinusoidal time embedding, ResNet
// blocks, cross-attention transformer blocks at the lower resolutions, stride-2 down, nearest-up, skip concats).
import { ElemType, GraphBuilder } from './graph-builder.ts';
import {
  attention,
  type Ctx,
  conv2d,
  fromTokens,
  gelu,
  groupNorm,
  layerNorm,
  linear,
  resnetBlock,
  silu,
  toTokens,
  upsample2x,
} from './layers.ts';
import type { WeightGenerator } from './weights.ts';

export interface UNetSpec {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  /** Per level: whether that level has cross-attention transformer blocks (CrossAttnDownBlock2D / UpBlock2D). */
  attention: boolean[];
  layersPerBlock: number;
  heads: number;
  crossAttentionDim: number;
  normGroups: number;
  normEps: number;
  /** Gain of conv_out, so the noise prediction has roughly unit variance. */
  outGain: number;
  /**
   * The timestep input: float32 [batch] (diffusers script export, the default), int64 [batch] (optimum 1.x) or a
   * float32 scalar of rank 0 (newer optimum, whose UNetOnnxConfig declares `timestep: {}`).
   */
  timestep?: { dtype: 'float32' | 'int64'; shape: 'batch' | 'scalar' };
}

/** Sinusoidal embedding of the timestep, diffusers get_timestep_embedding with flip_sin_to_cos=True, shift 0. */
function timestepEmbedding({ b }: Ctx, timestep: string, sample: string, dim: number, form: UNetSpec['timestep']): string {
  const half = dim / 2;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  let t = timestep;
  if (form?.shape === 'scalar') {
    // As diffusers traces a 0-d timestep: timesteps[None], then timesteps.expand(sample.shape[0]). A [batch] feed
    // does not fit this graph (it fails at the Mul below), as it does not fit a real export's.
    const batch = b.op('Shape', [sample], { start: 0, end: 1 }, 'time_proj');
    t = b.op('Expand', [b.op('Unsqueeze', [t, b.int64s([0])], {}, 'time_proj'), batch], {}, 'time_proj');
  }
  // diffusers casts an integer timestep to float: timesteps[:, None].float().
  if (form?.dtype === 'int64') t = b.op('Cast', [t], { to: ElemType.float32 }, 'time_proj');
  const column = b.op('Unsqueeze', [t, b.int64s([1])], {}, 'time_proj');
  const args = b.op('Mul', [column, b.floats(freqs, [1, half])], {}, 'time_proj');
  return b.op('Concat', [b.op('Cos', [args], {}, 'time_proj'), b.op('Sin', [args], {}, 'time_proj')], { axis: 1 }, 'time_proj');
}

/** Transformer2DModel with one BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward. */
function transformer(ctx: Ctx, x: string, context: string, name: string, channels: number, spec: UNetSpec): string {
  const { b } = ctx;
  const eps = 1e-5;
  const normed = groupNorm(ctx, x, `${name}.norm`, channels, spec.normGroups, 1e-6);
  let t = linear(ctx, toTokens(ctx, normed, name), `${name}.proj_in`, channels, channels);
  const block = `${name}.transformer_blocks.0`;
  const opts = { dim: channels, heads: spec.heads, qkvBias: false };
  t = b.op(
    'Add',
    [t, attention(ctx, layerNorm(ctx, t, `${block}.norm1`, channels, eps), null, `${block}.attn1`, opts)],
    {},
    block,
  );
  const cross = attention(ctx, layerNorm(ctx, t, `${block}.norm2`, channels, eps), context, `${block}.attn2`, {
    ...opts,
    contextDim: spec.crossAttentionDim,
  });
  t = b.op('Add', [t, cross], {}, block);
  // GEGLU: one projection to 2·inner, split into value and gate; value · GELU(gate).
  const inner = channels * 4;
  const proj = linear(ctx, layerNorm(ctx, t, `${block}.norm3`, channels, eps), `${block}.ff.net.0.proj`, channels, inner * 2);
  const [value, gate] = b.opN('Split', [proj, b.int64s([inner, inner])], 2, { axis: -1 }, block);
  const ff = linear(ctx, b.op('Mul', [value, gelu(ctx, gate, block)], {}, block), `${block}.ff.net.2`, inner, channels);
  t = b.op('Add', [t, ff], {}, block);
  t = linear(ctx, t, `${name}.proj_out`, channels, channels);
  return b.op('Add', [fromTokens(ctx, t, x, name), x], {}, name);
}

export function buildUNet(spec: UNetSpec, w: WeightGenerator): GraphBuilder {
  const b = new GraphBuilder('unet');
  const ctx: Ctx = { b, w };
  const ch = spec.blockOutChannels;
  const levels = ch.length;
  const timeDim = ch[0] * 4;
  const resnet = (x: string, name: string, cin: number, cout: number) =>
    resnetBlock(ctx, x, name, cin, cout, { groups: spec.normGroups, eps: spec.normEps, temb: { tensor: tembAct, dim: timeDim } });

  const sample = b.input('sample', ElemType.float32, ['batch', spec.inChannels, 'height', 'width']);
  // [1] or [batch]: the pipeline passes one timestep for the whole batch, and it broadcasts at each add.
  const timestep = b.input(
    'timestep',
    spec.timestep?.dtype === 'int64' ? ElemType.int64 : ElemType.float32,
    spec.timestep?.shape === 'scalar' ? [] : ['batch'],
  );
  const context = b.input('encoder_hidden_states', ElemType.float32, ['batch', 'sequence', spec.crossAttentionDim]);

  let temb = linear(
    ctx,
    timestepEmbedding(ctx, timestep, sample, ch[0], spec.timestep),
    'time_embedding.linear_1',
    ch[0],
    timeDim,
  );
  temb = linear(ctx, silu(ctx, temb, 'time_embedding'), 'time_embedding.linear_2', timeDim, timeDim);
  // Every ResNet applies SiLU to the time embedding before its projection; compute it once.
  const tembAct = silu(ctx, temb, 'time_embedding');

  let h = conv2d(ctx, sample, 'conv_in', spec.inChannels, ch[0]);
  const skips: { tensor: string; channels: number }[] = [{ tensor: h, channels: ch[0] }];
  let channels = ch[0];
  for (let level = 0; level < levels; level++) {
    for (let j = 0; j < spec.layersPerBlock; j++) {
      const name = `down_blocks.${level}`;
      h = resnet(h, `${name}.resnets.${j}`, channels, ch[level]);
      channels = ch[level];
      if (spec.attention[level]) h = transformer(ctx, h, context, `${name}.attentions.${j}`, channels, spec);
      skips.push({ tensor: h, channels });
    }
    if (level < levels - 1) {
      h = conv2d(ctx, h, `down_blocks.${level}.downsamplers.0.conv`, channels, channels, { stride: 2 });
      skips.push({ tensor: h, channels });
    }
  }

  h = resnet(h, 'mid_block.resnets.0', channels, channels);
  h = transformer(ctx, h, context, 'mid_block.attentions.0', channels, spec);
  h = resnet(h, 'mid_block.resnets.1', channels, channels);

  for (let u = 0; u < levels; u++) {
    const level = levels - 1 - u;
    const name = `up_blocks.${u}`;
    for (let j = 0; j <= spec.layersPerBlock; j++) {
      const skip = skips.pop();
      if (!skip) throw new Error(`${name}: ran out of skip connections`);
      h = b.op('Concat', [h, skip.tensor], { axis: 1 }, name);
      h = resnet(h, `${name}.resnets.${j}`, channels + skip.channels, ch[level]);
      channels = ch[level];
      if (spec.attention[level]) h = transformer(ctx, h, context, `${name}.attentions.${j}`, channels, spec);
    }
    if (level > 0) h = conv2d(ctx, upsample2x(ctx, h, name), `${name}.upsamplers.0.conv`, channels, channels);
  }

  h = silu(ctx, groupNorm(ctx, h, 'conv_norm_out', channels, spec.normGroups, spec.normEps), 'conv_norm_out');
  h = conv2d(ctx, h, 'conv_out', channels, spec.outChannels, { gain: spec.outGain });
  b.op('Identity', [h], {}, 'output', 'out_sample');
  b.output('out_sample', ElemType.float32, ['batch', spec.outChannels, 'height', 'width']);
  return b;
}
