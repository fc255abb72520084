// The embedded model's VAE: diffusers AutoencoderKL encoder (to the posterior mean, so it is deterministic) and
// decoder, each a separate graph with ResNet blocks, a mid-block attention and factor-8 down/up sampling.
import { ElemType, GraphBuilder } from './graph-builder.ts';
import { attention, type Ctx, conv2d, fromTokens, groupNorm, resnetBlock, silu, toTokens, upsample2x } from './layers.ts';
import type { WeightGenerator } from './weights.ts';

export interface VaeSpec {
  blockOutChannels: number[];
  layersPerBlock: number;
  latentChannels: number;
  normGroups: number;
  normEps: number;
  midBlockAttention: boolean;
  /** Gain of the encoder's conv_out: unscaled SD latents are about 1/0.18215 ≈ 5.5 in size. */
  encoderOutGain: number;
  /** Gain of the decoder's conv_out, keeping decoded pixels mostly inside [-1, 1]. */
  decoderOutGain: number;
  /**
   * The encoder's output: `latent_sample`, the posterior mean (the default), or `latent_parameters`, the
   * posterior's mean and logvar concatenated along channels (2C), as newer optimum exports it.
   */
  encoderOutput?: 'latent_sample' | 'latent_parameters';
}

function midBlock(ctx: Ctx, x: string, name: string, channels: number, spec: VaeSpec): string {
  const opts = { groups: spec.normGroups, eps: spec.normEps };
  let h = resnetBlock(ctx, x, `${name}.resnets.0`, channels, channels, opts);
  if (spec.midBlockAttention) {
    // Single-head attention over all pixels, with its own GroupNorm and residual (diffusers Attention).
    const a = `${name}.attentions.0`;
    const tokens = toTokens(ctx, groupNorm(ctx, h, `${a}.group_norm`, channels, spec.normGroups, spec.normEps), a);
    const attended = attention(ctx, tokens, null, a, { dim: channels, heads: 1, qkvBias: true });
    h = ctx.b.op('Add', [fromTokens(ctx, attended, h, a), h], {}, a);
  }
  return resnetBlock(ctx, h, `${name}.resnets.1`, channels, channels, opts);
}

export function buildVaeEncoder(spec: VaeSpec, w: WeightGenerator): GraphBuilder {
  const b = new GraphBuilder('vae_encoder');
  const ctx: Ctx = { b, w };
  const ch = spec.blockOutChannels;
  const opts = { groups: spec.normGroups, eps: spec.normEps };
  const sample = b.input('sample', ElemType.float32, ['batch', 3, 'height', 'width']);
  let h = conv2d(ctx, sample, 'encoder.conv_in', 3, ch[0]);
  let channels = ch[0];
  for (let level = 0; level < ch.length; level++) {
    for (let j = 0; j < spec.layersPerBlock; j++) {
      h = resnetBlock(ctx, h, `encoder.down_blocks.${level}.resnets.${j}`, channels, ch[level], opts);
      channels = ch[level];
    }
    if (level < ch.length - 1) {
      // diffusers pads (0, 1, 0, 1) and convolves with stride 2 and no padding.
      h = conv2d(ctx, h, `encoder.down_blocks.${level}.downsamplers.0.conv`, channels, channels, {
        stride: 2,
        pads: [0, 0, 1, 1],
      });
    }
  }
  h = midBlock(ctx, h, 'encoder.mid_block', channels, spec);
  h = silu(ctx, groupNorm(ctx, h, 'encoder.conv_norm_out', channels, spec.normGroups, spec.normEps), 'encoder');
  const moments = 2 * spec.latentChannels;
  h = conv2d(ctx, h, 'encoder.conv_out', channels, moments, { gain: spec.encoderOutGain });
  h = conv2d(ctx, h, 'quant_conv', moments, moments, { kernel: 1 });
  if (spec.encoderOutput === 'latent_parameters') {
    b.op('Identity', [h], {}, 'posterior', 'latent_parameters');
    b.output('latent_parameters', ElemType.float32, ['batch', moments, 'latent_height', 'latent_width']);
    return b;
  }
  // The first half of the moments is the posterior mean. A diffusers export samples mean + std·N(0,1) here;
  // taking the mean keeps the embedded encoder deterministic, and the pipeline treats either as the latent.
  b.op('Slice', [h, b.int64s([0]), b.int64s([spec.latentChannels]), b.int64s([1])], {}, 'posterior', 'latent_sample');
  b.output('latent_sample', ElemType.float32, ['batch', spec.latentChannels, 'latent_height', 'latent_width']);
  return b;
}

export function buildVaeDecoder(spec: VaeSpec, w: WeightGenerator): GraphBuilder {
  const b = new GraphBuilder('vae_decoder');
  const ctx: Ctx = { b, w };
  const reversed = [...spec.blockOutChannels].reverse();
  const opts = { groups: spec.normGroups, eps: spec.normEps };
  const latent = b.input('latent_sample', ElemType.float32, ['batch', spec.latentChannels, 'latent_height', 'latent_width']);
  let h = conv2d(ctx, latent, 'post_quant_conv', spec.latentChannels, spec.latentChannels, { kernel: 1 });
  h = conv2d(ctx, h, 'decoder.conv_in', spec.latentChannels, reversed[0]);
  let channels = reversed[0];
  h = midBlock(ctx, h, 'decoder.mid_block', channels, spec);
  for (let u = 0; u < reversed.length; u++) {
    for (let j = 0; j <= spec.layersPerBlock; j++) {
      h = resnetBlock(ctx, h, `decoder.up_blocks.${u}.resnets.${j}`, channels, reversed[u], opts);
      channels = reversed[u];
    }
    if (u < reversed.length - 1) {
      h = conv2d(
        ctx,
        upsample2x(ctx, h, `decoder.up_blocks.${u}`),
        `decoder.up_blocks.${u}.upsamplers.0.conv`,
        channels,
        channels,
      );
    }
  }
  h = silu(ctx, groupNorm(ctx, h, 'decoder.conv_norm_out', channels, spec.normGroups, spec.normEps), 'decoder');
  h = conv2d(ctx, h, 'decoder.conv_out', channels, 3, { gain: spec.decoderOutGain });
  b.op('Identity', [h], {}, 'output', 'sample');
  b.output('sample', ElemType.float32, ['batch', 3, 'height', 'width']);
  return b;
}
