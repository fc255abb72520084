#!/usr/bin/python3
# Trains the embedded model from a dataset written by write-dataset.ts: first the KL VAE, then (on cached latents
# scaled by the measured scaling factor) the CLIP-style text encoder jointly with the U-Net, with caption dropout
# so classifier-free guidance works. Seeded and resumable: every random draw of step i comes from a generator
# seeded by (seed, stage, i), and checkpoints hold the whole state, so an interrupted run continues exactly.
#   /usr/bin/python3 gpu-runner/training/train.py --data DIR --out DIR [--config full|tiny]
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loss_plot import write_loss_png  # noqa: E402
from sd_small import CONFIGS, UNet, VAE, TextEncoder, count_params, scaled_linear_alphas_cumprod  # noqa: E402

SCHEDULES = {
    "full": dict(vae_steps=3500, vae_batch=16, vae_lr=1e-3, unet_steps=4000, unet_batch=64, unet_lr=1e-3),
    "tiny": dict(vae_steps=20, vae_batch=8, vae_lr=1e-3, unet_steps=20, unet_batch=8, unet_lr=1e-3),
}
CAPTION_DROPOUT = 0.1
MIN_SNR_GAMMA = 5.0
EMA_DECAY = 0.995
KL_WEIGHT = 1e-6
# The object and a 3-pixel ring around it weigh this much more in the VAE's loss: the object is ~5% of the pixels,
# so a plain mean lets the decoder blur its corners and colour (a square read back as a circle) for little loss;
# the ring weighs the background next to it alike, so the decoder gains nothing by growing the object.
EDGE_WEIGHT = 4.0
CHECKPOINT_EVERY = 100


def step_generator(seed, stage, step):
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 100_003 + step)


class Progress:
    """A progress bar on a terminal; a line every `every` steps in a log file (nohup)."""

    def __init__(self, name, total, start, every=25):
        self.name, self.total, self.start_step, self.every = name, total, start, every
        self.t0 = time.time()
        self.tty = sys.stderr.isatty()

    def update(self, step, loss):
        done = step + 1
        rate = (done - self.start_step) / max(time.time() - self.t0, 1e-9)
        eta = (self.total - done) / max(rate, 1e-9)
        width = 30
        filled = int(width * done / self.total)
        line = (f"{self.name} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
                f"loss {loss:.4f} {rate:.2f} it/s eta {eta / 60:.1f} min")
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if done == self.total else ""))
        elif done % self.every == 0 or done == self.total:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def lr_at(step, total, base, warmup=50):
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_dataset(data_dir):
    meta = json.load(open(os.path.join(data_dir, "dataset.json")))
    n, k, seq, size = meta["count"], meta["captionsPerImage"], meta["sequenceLength"], meta["imageSize"]
    images = np.fromfile(os.path.join(data_dir, "images.u8"), dtype=np.uint8).reshape(n, size, size, 3)
    ids = np.fromfile(os.path.join(data_dir, "captions.i32"), dtype=np.int32).reshape(n, k, seq)
    return meta, images, ids


def to_model_range(images_u8):
    """uint8 HWC -> float NCHW in [-1, 1], as diffusers' VAE takes it."""
    return torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def recolour(x, fraction, generator, min_distance=0.6):
    """Paints `fraction` of a batch of scenes in random colours: object and background each uniform in RGB, at least
    `min_distance` apart (model units; the closest named pair, orange and yellow, is 0.68). A scene is two flat colours
    with antialiased edges, so each pixel's coverage is its projection from the background's colour (pixel (0, 0)) onto
    the object's (the pixel farthest from it); repainting with the same coverage keeps the shape exactly. The decoder
    then learns to draw a small square as a square whatever its colour: trained on the named palette only, it drew the
    colours it had seen shaped one way (small pink circles, a held-out pair, came back as circles 28% of the time)."""
    b = x.shape[0]
    bg = x[:, :, :1, :1]
    far = ((x - bg) ** 2).sum(dim=1).flatten(1).argmax(dim=1)
    fg = x.flatten(2)[torch.arange(b), :, far][:, :, None, None]
    axis = fg - bg
    cover = (((x - bg) * axis).sum(dim=1, keepdim=True) / (axis**2).sum(dim=1, keepdim=True).clamp_min(1e-6)).clamp(0, 1)
    tries = torch.rand(b, 8, 2, 3, generator=generator) * 2 - 1
    dist = (tries[:, :, 0] - tries[:, :, 1]).norm(dim=-1)
    pick = (dist >= min_distance).float().argmax(dim=1)  # the first pair far enough apart (nearly always the first)
    pair = tries[torch.arange(b), pick]
    new = pair[:, 1, :, None, None] * (1 - cover) + pair[:, 0, :, None, None] * cover
    chosen = (torch.rand(b, generator=generator) < fraction).view(-1, 1, 1, 1)
    return torch.where(chosen, new, x)


def train_vae(args, cfg, sched, images, init=None):
    """Trains the VAE; from `init` (a shipped model's VAE), only its decoder: the encoder, and so the latent space the
    shipped U-Net learned, stays as it is."""
    path = os.path.join(args.out, "vae.pt")
    vae = init if init is not None else VAE(cfg)
    trained = vae.decoder if init is not None else vae
    if init is not None:
        vae.encoder.requires_grad_(False)
    opt = torch.optim.AdamW(trained.parameters(), lr=sched["vae_lr"], weight_decay=0.0)
    state = {"step": 0, "losses": [], "seconds": 0.0}
    if os.path.exists(path):
        ckpt = torch.load(path)
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        state = ckpt["state"]
        if state["step"] >= sched["vae_steps"]:
            return vae, state
        print(f"vae: resuming at step {state['step']}", file=sys.stderr)
    total, batch = sched["vae_steps"], sched["vae_batch"]
    n = images.shape[0]
    bar = Progress("vae ", total, state["step"])

    def save():
        save_atomic({"model": vae.state_dict(), "opt": opt.state_dict(), "state": state, "config": args.config}, path)

    vae.train()
    tick = time.time()
    for step in range(state["step"], total):
        g = step_generator(args.seed, 1, step)
        idx = torch.randint(0, n, (batch,), generator=g)
        # Whole images: the mid-block attention then sees the 8x8 latent grid it decodes at inference (trained on
        # 32x32 crops, it saw 4x4 and bled colour across the image at 8x8).
        x = to_model_range(images[idx.numpy()])
        if sched.get("vae_recolour"):
            x = recolour(x, sched["vae_recolour"], g)
        with torch.set_grad_enabled(init is None):
            mean, logvar = vae.encoder(x)
        z = mean + torch.randn(mean.shape, generator=g) * torch.exp(0.5 * logvar)
        recon = vae.decoder(z)
        # Pixel (0, 0) is always background: the scene generator keeps objects a pixel off the border.
        obj = ((x - x[:, :, :1, :1]).abs().amax(dim=1, keepdim=True) > 0.1).float()
        weight = 1.0 + EDGE_WEIGHT * F.max_pool2d(obj, 7, stride=1, padding=3)
        err = recon - x
        rec = (weight * (err**2 + 0.5 * err.abs())).mean() / weight.mean()
        if sched.get("vae_grad_weight"):
            # Shape lives in the edges: the same weighted L1 on the image's horizontal and vertical differences, so a
            # corner rounded off costs more than its few pixels' colour error.
            gx = (recon[..., :, 1:] - recon[..., :, :-1]) - (x[..., :, 1:] - x[..., :, :-1])
            gy = (recon[..., 1:, :] - recon[..., :-1, :]) - (x[..., 1:, :] - x[..., :-1, :])
            edges = (weight[..., :, 1:] * gx.abs()).mean() + (weight[..., 1:, :] * gy.abs()).mean()
            rec = rec + sched["vae_grad_weight"] * edges / weight.mean()
        kl = 0.5 * torch.mean(torch.sum(mean**2 + logvar.exp() - 1.0 - logvar, dim=[1, 2, 3]))
        loss = rec + KL_WEIGHT * kl
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, sched["vae_lr"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["losses"].append(float(rec))
        state["step"] = step + 1
        now = time.time()
        state["seconds"] = state.get("seconds", 0.0) + now - tick  # wall time of the stage, summed over resumes
        tick = now
        bar.update(step, float(rec))
        if state["step"] % CHECKPOINT_EVERY == 0 or state["step"] == total:
            save()
    if not os.path.exists(path):  # a run of 0 steps (the U-Net only, from a shipped model) keeps the VAE it was given
        save()
    if state["losses"]:  # none when this run trains only the U-Net of a shipped model
        write_loss_png(os.path.join(args.out, "vae-loss.png"), state["losses"], "VAE reconstruction loss (MSE + 0.5 L1, object-weighted)")
    return vae, state


@torch.no_grad()
def encode_latents(args, vae, images, scaling=None):
    """Posterior means of every training image, and the scaling factor that gives them unit variance (or `scaling`,
    a shipped model's, whose U-Net learned latents scaled by it)."""
    path = os.path.join(args.out, "latents.pt")
    if os.path.exists(path):
        return torch.load(path)
    vae.eval()
    t0 = time.time()
    means, recon_err = [], []
    for i in range(0, images.shape[0], 256):
        x = to_model_range(images[i:i + 256])
        mean, _ = vae.encoder(x)
        means.append(mean)
        if i < 2048:
            recon_err.append(F.mse_loss(vae.decoder(mean), x).item())
    latents = torch.cat(means)
    measured = float(1.0 / latents.std())
    scaling = measured if scaling is None else float(scaling)
    out = {"latents": latents, "scaling_factor": scaling, "vae_full_image_mse": float(np.mean(recon_err)),
           "seconds": time.time() - t0}
    save_atomic(out, path)
    print(f"latents {tuple(latents.shape)}, std {latents.std():.4f} -> measured scaling factor {measured:.5f} (used: {scaling:.5f}), "
          f"full-image MSE {out['vae_full_image_mse']:.5f}", file=sys.stderr)
    return out


def train_unet(args, cfg, sched, meta, ids, latents, scaling, init=None):
    """Trains the text encoder and U-Net jointly, from scratch or from `init` (a shipped model's pair)."""
    path = os.path.join(args.out, "unet.pt")
    text, unet = init if init is not None else (TextEncoder(cfg, meta["vocabSize"], meta["sequenceLength"]),
                                                 UNet(cfg, cfg["latent_channels"]))
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=sched["unet_lr"], weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    state = {"step": 0, "losses": [], "seconds": 0.0}
    if os.path.exists(path):
        ckpt = torch.load(path)
        text.load_state_dict(ckpt["text"])
        unet.load_state_dict(ckpt["unet"])
        opt.load_state_dict(ckpt["opt"])
        ema = ckpt["ema"]
        state = ckpt["state"]
        if state["step"] >= sched["unet_steps"]:
            return text, unet, ema, state
        print(f"unet: resuming at step {state['step']}", file=sys.stderr)
    print(f"params: text encoder {count_params(text)}, unet {count_params(unet)}", file=sys.stderr)
    alphas_cumprod = scaled_linear_alphas_cumprod(zero_terminal_snr=cfg.get("zero_terminal_snr", False))
    ctx = cfg["context_tokens"]  # the U-Net reads only these; causal attention makes the cut exact
    empty = torch.tensor(meta["emptyIds"][:ctx], dtype=torch.int64)
    total, batch = sched["unet_steps"], sched["unet_batch"]
    n, k = ids.shape[0], ids.shape[1]
    ids_t = torch.from_numpy(ids[:, :, :ctx].astype(np.int64))
    z_all = latents * scaling
    bar = Progress("unet", total, state["step"])

    def save():
        save_atomic({"text": text.state_dict(), "unet": unet.state_dict(), "opt": opt.state_dict(), "ema": ema,
                     "state": state, "config": args.config}, path)

    text.train()
    unet.train()
    tick = time.time()
    for step in range(state["step"], total):
        g = step_generator(args.seed, 2, step)
        idx = torch.randint(0, n, (batch,), generator=g)
        which = torch.randint(0, k, (batch,), generator=g)
        tokens = ids_t[idx, which].clone()
        drop = torch.rand(batch, generator=g) < CAPTION_DROPOUT
        tokens[drop] = empty
        z0 = z_all[idx]
        t = torch.randint(0, 1000, (batch,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        pred = unet(zt, t.float(), text(tokens))
        if cfg.get("prediction") == "v_prediction":
            # v = sqrt(a) noise - sqrt(1 - a) x0, defined at zero SNR (epsilon is not: at t = 999 the input is the
            # noise). Its MSE weighs the clean image's error by SNR + 1; min-SNR caps that at 5 + 1, so the nearly
            # clean steps do not crowd out the noisy ones, where the layout (place, size, shape) is decided, which
            # keep a weight of at least 1 (plain min-SNR for v, min(SNR, 5) / (SNR + 1), is 0 at t = 999).
            target = a.sqrt() * noise - (1 - a).sqrt() * z0
            snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
            weight = (torch.clamp(snr, max=MIN_SNR_GAMMA) + 1) / (snr + 1)
        else:
            target = noise
            snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
            weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr  # min-SNR weighting for epsilon prediction
        per_sample = F.mse_loss(pred, target, reduction="none").mean(dim=[1, 2, 3])
        loss = (weight * per_sample).mean()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, sched["unet_lr"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(EMA_DECAY, (1 + step) / (10 + step))
            for e, p in zip(ema, params):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        state["losses"].append(float(per_sample.mean()))
        state["step"] = step + 1
        now = time.time()
        state["seconds"] = state.get("seconds", 0.0) + now - tick  # wall time of the stage, summed over resumes
        tick = now
        bar.update(step, float(per_sample.mean()))
        if state["step"] % CHECKPOINT_EVERY == 0 or state["step"] == total:
            save()
            write_loss_png(os.path.join(args.out, "unet-loss.png"), state["losses"], "U-Net MSE (v or epsilon, as configured)")
    if not os.path.exists(path):  # 0 steps: the pair it was given
        save()
    return text, unet, ema, state


def load_shipped(model_dir, cfg, meta):
    """A shipped model's networks, their weights read back from its ONNX files (onnx_weights.py)."""
    from export import graphs
    from onnx_weights import load_from_onnx

    vae, text = VAE(cfg), TextEncoder(cfg, meta["vocabSize"], meta["sequenceLength"])
    unet = UNet(cfg, cfg["latent_channels"])
    for name, (module, example, kwargs) in graphs(cfg, meta, vae, text, unet).items():
        load_from_onnx(module, os.path.join(model_dir, name, "model.onnx"), example, kwargs)
    scaling = json.load(open(os.path.join(model_dir, "vae_decoder", "config.json")))["scaling_factor"]
    print(f"initialised from {model_dir} (latent scaling {scaling})", file=sys.stderr)
    return {"vae": vae, "text": text, "unet": unet, "scaling_factor": scaling}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="dataset folder written by write-dataset.ts")
    ap.add_argument("--out", required=True, help="checkpoint folder (resumed if it holds checkpoints)")
    ap.add_argument("--config", default="full", choices=sorted(CONFIGS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vae-steps", type=int, default=None, help="override the schedule's VAE steps")
    ap.add_argument("--unet-steps", type=int, default=None, help="override the schedule's U-Net steps")
    ap.add_argument("--vae-lr", type=float, default=None, help="override the schedule's VAE learning rate")
    ap.add_argument("--unet-lr", type=float, default=None, help="override the schedule's U-Net learning rate")
    ap.add_argument("--vae-grad-weight", type=float, default=None,
                    help="weight of an edge term (L1 on image differences) in the VAE loss; the full schedule has 0")
    ap.add_argument("--vae-recolour", type=float, default=None,
                    help="fraction of each VAE batch repainted in random colours (shape apart from colour); the full "
                         "schedule has 0")
    ap.add_argument("--init-from", default=None,
                    help="an exported model folder of this config to train further: its VAE encoder and latent "
                         "scaling stay, its decoder, text encoder and U-Net start from its weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # initial weights
    os.makedirs(args.out, exist_ok=True)
    cfg, sched = CONFIGS[args.config], dict(SCHEDULES[args.config])
    if args.vae_steps:
        sched["vae_steps"] = args.vae_steps
    for key in ("vae_steps", "unet_steps", "vae_lr", "unet_lr", "vae_grad_weight", "vae_recolour"):
        if getattr(args, key) is not None:
            sched[key] = getattr(args, key)
    meta, images, ids = load_dataset(args.data)
    shipped = load_shipped(args.init_from, cfg, meta) if args.init_from else None
    t0 = time.time()
    vae, vae_state = train_vae(args, cfg, sched, images, shipped and shipped["vae"])
    t_vae = time.time() - t0
    lat = encode_latents(args, vae, images, shipped and shipped["scaling_factor"])
    text, unet, ema, unet_state = train_unet(args, cfg, sched, meta, ids, lat["latents"], lat["scaling_factor"],
                                             shipped and (shipped["text"], shipped["unet"]))
    summary = {
        "config": args.config, "seed": args.seed, "schedule": sched, "threads": args.threads,
        "init_from": args.init_from and os.path.basename(os.path.normpath(args.init_from)),
        "scaling_factor": lat["scaling_factor"], "vae_full_image_mse": lat["vae_full_image_mse"],
        "vae_final_loss": float(np.mean(vae_state["losses"][-50:])) if vae_state["losses"] else None,
        "unet_final_loss": float(np.mean(unet_state["losses"][-100:])) if unet_state["losses"] else None,
        "this_run_seconds": {"vae": round(t_vae), "total": round(time.time() - t0)},
        "stage_seconds": {"vae": round(vae_state.get("seconds", 0)), "latents": round(lat.get("seconds", 0)),
                          "unet": round(unet_state.get("seconds", 0))},
        "params": {"vae": count_params(vae), "text_encoder": count_params(text), "unet": count_params(unet)},
    }
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=2)
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
