#!/usr/bin/python3
# Exports trained checkpoints to the diffusers ONNX layout our loader reads (gpu-runner/src/model/model-dir.ts):
# model_index.json, scheduler/, tokenizer/ (our BPE vocabulary, copied from the dataset), text_encoder/
# (input_ids int32 -> last_hidden_state), unet/ (sample, timestep float32 [batch], encoder_hidden_states ->
# out_sample), vae_encoder/ (sample -> latent_sample, the posterior mean) and vae_decoder/ (latent_sample -> sample).
#   /usr/bin/python3 gpu-runner/training/export.py --data DIR --ckpt DIR --out MODEL_DIR [--no-ema]
import argparse
import json
import os
import shutil
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sd_small import CONFIGS, UNet, VAE, TextEncoder, count_params  # noqa: E402

OPSET = 17


class TextEncoderExport(nn.Module):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def forward(self, input_ids):
        return self.text(input_ids)


class VaeEncoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.encoder = vae.encoder

    def forward(self, sample):
        return self.encoder(sample)[0]  # the posterior mean, as config.json's encoder_output says


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(value, indent=2) + "\n")


def graphs(cfg, meta, vae, text, unet):
    """Each exported graph: (module, example args, torch.onnx.export keywords). The same specs read a shipped model's
    weights back (onnx_weights.load_from_onnx), so they must not change between an export and its reading."""
    lat_c, hidden, seq, size = cfg["latent_channels"], cfg["text_hidden"], meta["sequenceLength"], meta["imageSize"]
    g = torch.Generator().manual_seed(0)

    def spec(inputs, outputs, dynamic):
        return dict(input_names=inputs, output_names=outputs, dynamic_axes=dynamic, opset_version=OPSET,
                    do_constant_folding=True)

    image_axes = {0: "batch", 2: "height", 3: "width"}
    return {
        "text_encoder": (TextEncoderExport(text), (torch.zeros(1, seq, dtype=torch.int32),),
                         spec(["input_ids"], ["last_hidden_state"],
                              {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}})),
        "unet": (unet, (torch.randn(2, lat_c, size // 8, size // 8, generator=g), torch.tensor([500.0, 500.0]),
                        torch.randn(2, seq, hidden, generator=g)),
                 spec(["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                      {"sample": image_axes, "timestep": {0: "batch"},
                       "encoder_hidden_states": {0: "batch", 1: "sequence"}, "out_sample": image_axes})),
        "vae_encoder": (VaeEncoderExport(vae), (torch.randn(1, 3, size, size, generator=g),),
                        spec(["sample"], ["latent_sample"], {"sample": image_axes, "latent_sample": image_axes})),
        "vae_decoder": (vae.decoder, (torch.randn(1, lat_c, size // 8, size // 8, generator=g),),
                        spec(["latent_sample"], ["sample"], {"latent_sample": image_axes, "sample": image_axes})),
    }


def export(module, args, path, kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, path, **kwargs)


def parse_guidance_end(text):
    """'0.5' -> 0.5 (every task); 'txt2img=0.5,img2img=0.5' -> {"txt2img": 0.5, "img2img": 0.5}."""
    if "=" not in text:
        return float(text)
    return {task.strip(): float(value) for task, value in (part.split("=") for part in text.split(","))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the dataset folder (for tokenizer/ and dataset.json)")
    ap.add_argument("--ckpt", required=True, help="the folder train.py wrote")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    ap.add_argument("--name", default="sd-embedded-v5")
    ap.add_argument("--guidance-end", default=None,
                    help="write pipeline_defaults.json: the fraction of steps guided when a request does not say, for "
                         "every task (0.5) or per task (txt2img=0.5,img2img=0.5; a task left out: 1)")
    args = ap.parse_args()
    torch.manual_seed(0)
    meta = json.load(open(os.path.join(args.data, "dataset.json")))
    vae_ckpt = torch.load(os.path.join(args.ckpt, "vae.pt"))
    unet_ckpt = torch.load(os.path.join(args.ckpt, "unet.pt"))
    latents = torch.load(os.path.join(args.ckpt, "latents.pt"))
    summary_path = os.path.join(args.ckpt, "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    cfg_name = unet_ckpt["config"]
    cfg = CONFIGS[cfg_name]
    vae = VAE(cfg)
    vae.load_state_dict(vae_ckpt["model"])
    text = TextEncoder(cfg, meta["vocabSize"], meta["sequenceLength"])
    unet = UNet(cfg, cfg["latent_channels"])
    text.load_state_dict(unet_ckpt["text"])
    unet.load_state_dict(unet_ckpt["unet"])
    if not args.no_ema:
        params = list(text.parameters()) + list(unet.parameters())
        with torch.no_grad():
            for p, e in zip(params, unet_ckpt["ema"]):
                p.copy_(e)
    out = args.out
    os.makedirs(out, exist_ok=True)
    lat_c, hidden, seq = cfg["latent_channels"], cfg["text_hidden"], meta["sequenceLength"]
    size = meta["imageSize"]

    for name, (module, example, kwargs) in graphs(cfg, meta, vae, text, unet).items():
        export(module, example, f"{out}/{name}/model.onnx", kwargs)

    onnx_model = ["diffusers", "OnnxRuntimeModel"]
    write_json(f"{out}/model_index.json", {
        "_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.31.0",
        "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": onnx_model,
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": onnx_model,
        "vae_decoder": onnx_model, "vae_encoder": onnx_model,
    })
    # DDIM, not SD 1.x's PNDM: on this small model PLMS's multistep extrapolation drifts off the scene (MODEL_CARD.md).
    write_json(f"{out}/scheduler/scheduler_config.json", {
        "_class_name": "DDIMScheduler", "_diffusers_version": "0.31.0", "num_train_timesteps": 1000,
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "trained_betas": None,
        "set_alpha_to_one": False, "prediction_type": cfg.get("prediction", "epsilon"), "steps_offset": 1, "clip_sample": False,
        # Zero terminal SNR (sd_small.py) and sampling that starts at t = 999, where it is pure noise, as Lin et al.
        **({"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"} if cfg.get("zero_terminal_snr") else {}),
    })
    os.makedirs(f"{out}/tokenizer", exist_ok=True)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(os.path.join(args.data, "tokenizer", name), f"{out}/tokenizer/{name}")
    write_json(f"{out}/text_encoder/config.json", {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": meta["vocabSize"],
        "hidden_size": hidden, "intermediate_size": 4 * hidden, "num_hidden_layers": cfg["text_layers"],
        "num_attention_heads": cfg["text_heads"], "max_position_embeddings": seq, "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5, "bos_token_id": meta["emptyIds"][0], "eos_token_id": meta["emptyIds"][1],
        "pad_token_id": meta["emptyIds"][1], "projection_dim": hidden,
    })
    c0, c1 = cfg["unet_channels"]
    write_json(f"{out}/unet/config.json", {
        "_class_name": "UNet2DConditionModel", "sample_size": size // 8, "in_channels": lat_c, "out_channels": lat_c,
        "flip_sin_to_cos": True, "freq_shift": 0, "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn", "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [c0, c1], "layers_per_block": 1, "act_fn": "silu", "norm_num_groups": cfg["groups"],
        "cross_attention_dim": hidden, "attention_head_dim": cfg["unet_heads"], "use_linear_projection": True,
        "time_embedding_type": "positional", "prediction_type": cfg.get("prediction", "epsilon"),
    })
    vae_cfg = {
        "_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": lat_c,
        "block_out_channels": list(cfg["vae_channels"]), "norm_num_groups": cfg["groups"], "sample_size": size,
        "scaling_factor": round(latents["scaling_factor"], 5), "encoder_output": "mean",
    }
    write_json(f"{out}/vae_encoder/config.json", vae_cfg)
    write_json(f"{out}/vae_decoder/config.json", vae_cfg)
    if args.guidance_end is not None:
        # Read by the runner (model-dir.ts), ignored by diffusers: the fraction of the steps a request that does not
        # say is guided for (the adherence eval picks it on validation prompts; MODEL_CARD.md).
        write_json(f"{out}/pipeline_defaults.json", {"guidance_end": parse_guidance_end(args.guidance_end)})
    write_json(f"{out}/training.json", {
        "name": args.name, "config": cfg_name, "ema": not args.no_ema,
        # A run from a shipped model (train.py --init-from) counts only its own steps; the model it started from:
        "init_from": summary.get("init_from"),
        "vae_steps": vae_ckpt["state"]["step"], "unet_steps": unet_ckpt["state"]["step"],
        "scaling_factor": latents["scaling_factor"], "vae_full_image_mse": latents["vae_full_image_mse"],
        "params": {"vae": count_params(vae), "text_encoder": count_params(text), "unet": count_params(unet)},
    })
    print(f"exported {cfg_name} model to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
