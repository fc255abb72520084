# The networks of the embedded model: Stable Diffusion's recipe at small size. A KL VAE (8x downsampling), a
# CLIP-style text encoder (causal self-attention, quick_gelu) and a U-Net with cross-attention on the text states
# and a sinusoidal time embedding, plus SD's scaled-linear noise schedule. Shapes follow diffusers' conventions so
# the ONNX export has the interface our loader reads.
import math

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = {
    # The shipped model.
    "full": dict(
        vae_channels=(16, 32, 64), latent_channels=4,
        text_hidden=64, text_layers=2, text_heads=4,
        unet_channels=(64, 128), unet_heads=4, groups=8, ff_mult=2, context_tokens=32, unet_position=True,
        text_layout=8, prediction="v_prediction", zero_terminal_snr=True,
    ),
    # A few-second smoke test of the whole tool chain (CI).
    "tiny": dict(
        vae_channels=(8, 8, 16), latent_channels=4,
        text_hidden=16, text_layers=1, text_heads=2,
        unet_channels=(16, 16), unet_heads=2, groups=4, ff_mult=2, context_tokens=32, unet_position=True,
        text_layout=8, prediction="v_prediction", zero_terminal_snr=True,
    ),
}


def scaled_linear_alphas_cumprod(steps=1000, beta_start=0.00085, beta_end=0.012, zero_terminal_snr=False):
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    if zero_terminal_snr:
        # diffusers' rescale_zero_terminal_snr (Lin et al. 2023): shift and scale sqrt(alphas_cumprod) so the last
        # step is pure noise. SD's schedule keeps sqrt(0.0047) = 7% of the image at t = 999; on an 8x8 latent that is
        # enough for the model to read the layout out of the noise instead of the prompt, so sampling from pure
        # noise put objects wherever the seed's noise happened to look like one.
        s = alphas_cumprod.sqrt()
        s = (s - s[-1]) * s[0] / (s[0] - s[-1])
        alphas_cumprod = s**2
    return alphas_cumprod.float()


class ResBlock(nn.Module):
    def __init__(self, cin, cout, groups, temb=None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(temb, cout) if temb else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time is not None:
            h = h + self.time(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def attention(q, k, v, heads, mask=None):
    """Multi-head scaled dot-product attention on [batch, tokens, channels] (written out: torch 1.13 has no SDPA)."""
    b, n, c = q.shape
    d = c // heads
    q = q.reshape(b, -1, heads, d).transpose(1, 2)
    k = k.reshape(b, -1, heads, d).transpose(1, 2)
    v = v.reshape(b, -1, heads, d).transpose(1, 2)
    w = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
    if mask is not None:
        w = w + mask
    out = torch.matmul(w.softmax(dim=-1), v)
    return out.transpose(1, 2).reshape(b, -1, c)


class SpatialSelfAttention(nn.Module):
    """The VAE mid-block attention: one head over all positions."""

    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-5)
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, c)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        t = self.out(attention(q, k, v, 1))
        return x + t.transpose(1, 2).reshape(b, c, h, w)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c0, c1, c2 = cfg["vae_channels"]
        g, lat = cfg["groups"], cfg["latent_channels"]
        self.conv_in = nn.Conv2d(3, c0, 3, padding=1)
        self.layers = nn.ModuleList([
            nn.Conv2d(c0, c1, 3, stride=2, padding=1), ResBlock(c1, c1, g),       # 32x32
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), ResBlock(c2, c2, g),       # 16x16
            nn.Conv2d(c2, c2, 3, stride=2, padding=1), ResBlock(c2, c2, g),       # 8x8
            SpatialSelfAttention(c2, g), ResBlock(c2, c2, g),
        ])
        self.norm_out = nn.GroupNorm(g, c2, eps=1e-5)
        self.conv_out = nn.Conv2d(c2, 2 * lat, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for layer in self.layers:
            h = layer(h)
        moments = self.quant_conv(self.conv_out(F.silu(self.norm_out(h))))
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)


class Upsample(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c0, c1, c2 = cfg["vae_channels"]
        g, lat = cfg["groups"], cfg["latent_channels"]
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)
        self.conv_in = nn.Conv2d(lat, c2, 3, padding=1)
        self.layers = nn.ModuleList([
            ResBlock(c2, c2, g), SpatialSelfAttention(c2, g), ResBlock(c2, c2, g),   # 8x8
            Upsample(c2, c2), ResBlock(c2, c2, g),                                   # 16x16
            Upsample(c2, c1), ResBlock(c1, c1, g),                                   # 32x32
            Upsample(c1, c0), ResBlock(c0, c0, g),                                   # 64x64
        ])
        self.norm_out = nn.GroupNorm(g, c0, eps=1e-5)
        self.conv_out = nn.Conv2d(c0, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(self.post_quant_conv(z))
        for layer in self.layers:
            h = layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)


class TextEncoder(nn.Module):
    """CLIP's text transformer: token + position embeddings, pre-LN causal blocks, final layer norm."""

    def __init__(self, cfg, vocab_size, seq=77):
        super().__init__()
        d = cfg["text_hidden"]
        self.heads = cfg["text_heads"]
        self.token_embedding = nn.Embedding(vocab_size, d)
        self.position_embedding = nn.Parameter(torch.randn(seq, d) * 0.01)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.blocks = nn.ModuleList()
        for _ in range(cfg["text_layers"]):
            self.blocks.append(nn.ModuleDict(dict(
                ln1=nn.LayerNorm(d), qkv=nn.Linear(d, 3 * d), out=nn.Linear(d, d),
                ln2=nn.LayerNorm(d), fc1=nn.Linear(d, 4 * d), fc2=nn.Linear(4 * d, d),
            )))
        self.final_layer_norm = nn.LayerNorm(d)
        mask = torch.full((seq, seq), float("-inf")).triu(1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, ids):
        # Any length up to 77: causal attention makes the first n states the same as those of a 77-token run,
        # so training on the first tokens only is exact.
        n = ids.shape[1]
        x = self.token_embedding(ids.long()) + self.position_embedding[:n]
        mask = self.causal_mask[:n, :n]
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](x)).chunk(3, dim=-1)
            x = x + blk["out"](attention(q, k, v, self.heads, mask))
            h = blk["fc1"](blk["ln2"](x))
            x = x + blk["fc2"](h * torch.sigmoid(1.702 * h))  # quick_gelu, as CLIP
        return self.final_layer_norm(x)


class Transformer(nn.Module):
    """SD's Transformer2DModel (linear projections) with one BasicTransformerBlock: self-, cross-attention, GEGLU."""

    def __init__(self, c, ctx, heads, groups, ff_mult=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.proj_in = nn.Linear(c, c)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(c), nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.out1 = nn.Linear(c, c)
        self.q2 = nn.Linear(c, c, bias=False)
        self.kv2 = nn.Linear(ctx, 2 * c, bias=False)
        self.out2 = nn.Linear(c, c)
        self.geglu = nn.Linear(c, 2 * ff_mult * c)
        self.ff_out = nn.Linear(ff_mult * c, c)
        self.proj_out = nn.Linear(c, c)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x, context):
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        q, k, v = self.qkv(self.ln1(t)).chunk(3, dim=-1)
        t = t + self.out1(attention(q, k, v, self.heads))
        k, v = self.kv2(context).chunk(2, dim=-1)
        t = t + self.out2(attention(self.q2(self.ln2(t)), k, v, self.heads))
        a, gate = self.geglu(self.ln3(t)).chunk(2, dim=-1)
        t = t + self.ff_out(a * F.gelu(gate))
        return x + self.proj_out(t).transpose(1, 2).reshape(b, c, h, w)


def timestep_embedding(t, dim):
    """diffusers' get_timestep_embedding with flip_sin_to_cos=True, freq_shift=0."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def coordinate_features(h, w, like, octaves=3):
    """Where each latent cell is: x and y in [-1, 1] (cell centres) and their sines and cosines at octaves of pi,
    [1, 2 + 4 * octaves, h, w]. Computed from the sample's own size, so the graph stays size-agnostic."""
    ys = (torch.arange(h, dtype=like.dtype) + 0.5) / h * 2.0 - 1.0
    xs = (torch.arange(w, dtype=like.dtype) + 0.5) / w * 2.0 - 1.0
    gy = ys[:, None].expand(h, w)
    gx = xs[None, :].expand(h, w)
    feats = [gx, gy]
    for k in range(octaves):
        f = math.pi * 2**k
        feats += [torch.sin(f * gx), torch.cos(f * gx), torch.sin(f * gy), torch.cos(f * gy)]
    return torch.stack(feats)[None]


class UNet(nn.Module):
    def __init__(self, cfg, latent_channels=4):
        super().__init__()
        c0, c1 = cfg["unet_channels"]
        g, heads, ctx = cfg["groups"], cfg["unet_heads"], cfg["text_hidden"]
        ff = cfg["ff_mult"]
        temb = 4 * c0
        self.c0 = c0
        # The U-Net reads the first context_tokens text states (captions here are at most 25 tokens): training then
        # runs the text encoder on those tokens only, and the exported U-Net slices the same from the 77.
        self.context_tokens = cfg["context_tokens"]
        self.time_mlp = nn.Sequential(nn.Linear(c0, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(latent_channels, c0, 3, padding=1)
        # Absolute position: at 8x8 a convolution only learns where it is from the zero padding, slowly, and the
        # attention's queries not at all, so "top left" had nothing to bind to. A learned map of coordinate features,
        # added after conv_in, gives every cell its place without changing the graph's inputs.
        self.position = nn.Conv2d(2 + 4 * 3, c0, 1) if cfg.get("unet_position") else None
        # A map of the prompt, added to the same features: the mean of the text states, linearly to a c0 x n x n grid
        # (resized to the sample's grid). With only cross-attention, whose output is the same at every cell unless
        # the cell's features already differ, the model learned the prompt's colours but never its layout: at pure
        # noise it predicted the background and no object, so the object went wherever the noise put it. This path
        # needs no interaction to learn: "top left" moves the map's mass to the top left. Zero at the start.
        self.layout_side = cfg.get("text_layout")
        self.layout = nn.Linear(ctx, c0 * self.layout_side**2) if self.layout_side else None
        if self.layout is not None:
            nn.init.zeros_(self.layout.weight)
            nn.init.zeros_(self.layout.bias)
        self.down0 = ResBlock(c0, c0, g, temb)
        self.down0_attn = Transformer(c0, ctx, heads, g, ff)
        self.downsample = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.down1 = ResBlock(c0, c1, g, temb)
        self.down1_attn = Transformer(c1, ctx, heads, g, ff)
        self.mid1 = ResBlock(c1, c1, g, temb)
        self.mid_attn = Transformer(c1, ctx, heads, g, ff)
        self.mid2 = ResBlock(c1, c1, g, temb)
        self.up1 = nn.ModuleList([ResBlock(c1 + c1, c1, g, temb), ResBlock(c1 + c0, c1, g, temb)])
        self.up1_attn = nn.ModuleList([Transformer(c1, ctx, heads, g, ff), Transformer(c1, ctx, heads, g, ff)])
        self.upsample = Upsample(c1, c1)
        self.up0 = nn.ModuleList([ResBlock(c1 + c0, c0, g, temb), ResBlock(c0 + c0, c0, g, temb)])
        self.up0_attn = nn.ModuleList([Transformer(c0, ctx, heads, g, ff), Transformer(c0, ctx, heads, g, ff)])
        self.norm_out = nn.GroupNorm(g, c0, eps=1e-5)
        self.conv_out = nn.Conv2d(c0, latent_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample, timestep, context):
        context = context[:, :self.context_tokens]
        t = self.time_mlp(timestep_embedding(timestep, self.c0))
        h = self.conv_in(sample)
        if self.position is not None:
            h = h + self.position(coordinate_features(h.shape[2], h.shape[3], h))
        if self.layout is not None:
            n = self.layout_side
            grid = self.layout(context.mean(dim=1)).view(-1, self.c0, n, n)
            # Always resized, even n -> n (an identity), so the exported graph keeps a size-agnostic Resize.
            h = h + F.interpolate(grid, size=(h.shape[2], h.shape[3]), mode="bilinear", align_corners=False)
        skips = [h]
        h = self.down0_attn(self.down0(h, t), context)
        skips.append(h)
        h = self.downsample(h)
        skips.append(h)
        h = self.down1_attn(self.down1(h, t), context)
        skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, t), context), t)
        for res, attn in zip(self.up1, self.up1_attn):
            h = attn(res(torch.cat([h, skips.pop()], dim=1), t), context)
        h = self.upsample(h)
        for res, attn in zip(self.up0, self.up0_attn):
            h = attn(res(torch.cat([h, skips.pop()], dim=1), t), context)
        return self.conv_out(F.silu(self.norm_out(h)))


def count_params(module):
    return sum(p.numel() for p in module.parameters())
