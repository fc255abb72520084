# Writes the scheduler goldens in this folder (DPM++ 2M SDE, DPM2, DPM2 ancestral; plain and Karras; 4 and 20
# steps) by running diffusers' own scheduler classes, in the format of shared/reference/schedulers (see README.md here).
#
# Needs Debian's torch (/usr/bin/python3, apt-get install python3-torch python3-packaging) and a diffusers v0.31.0
# source checkout on PYTHONPATH (its src/ folder). diffusers' package __init__ imports huggingface_hub, filelock and
# friends that the scheduler classes never use; put light stubs for them on PYTHONPATH too and name the module that
# installs them in SD_STUBS (it is imported first when set). Nothing here is downloaded or built.
#
#   SD_STUBS=my_stubs PYTHONPATH=/path/to/diffusers/src:/path/to/stubs /usr/bin/python3 generate_goldens.py
import importlib
import json
import math
import os
import sys

import numpy as np
import torch

if os.environ.get("SD_STUBS"):
    importlib.import_module(os.environ["SD_STUBS"])

import diffusers  # noqa: E402
from diffusers.schedulers import scheduling_dpmsolver_multistep as dpm_mod  # noqa: E402
from diffusers.schedulers import scheduling_k_dpm_2_ancestral_discrete as kdpm2a_mod  # noqa: E402
from diffusers.schedulers import scheduling_k_dpm_2_discrete as kdpm2_mod  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))
NOISE_SEED = 1234
SD_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    steps_offset=1,
    clip_sample=False,
    set_alpha_to_one=False,
    prediction_type="epsilon",
)
CASES = [
    ("dpmpp_2m_sde", dpm_mod.DPMSolverMultistepScheduler, dict(algorithm_type="sde-dpmsolver++")),
    (
        "dpmpp_2m_sde_karras",
        dpm_mod.DPMSolverMultistepScheduler,
        dict(algorithm_type="sde-dpmsolver++", use_karras_sigmas=True),
    ),
    ("kdpm2", kdpm2_mod.KDPM2DiscreteScheduler, {}),
    ("kdpm2_karras", kdpm2_mod.KDPM2DiscreteScheduler, dict(use_karras_sigmas=True)),
    ("kdpm2_a", kdpm2a_mod.KDPM2AncestralDiscreteScheduler, {}),
    ("kdpm2_a_karras", kdpm2a_mod.KDPM2AncestralDiscreteScheduler, dict(use_karras_sigmas=True)),
]
STEPS = [4, 20]
STRENGTHS = [0.3, 0.75]
SHAPE = (1, 4, 8, 8)

# Record every noise tensor the schedulers draw through randn_tensor (with the generator passed to step()).
_drawn = []


def _recording(original):
    def randn_tensor(*args, **kwargs):
        t = original(*args, **kwargs)
        _drawn.append(t.clone())
        return t

    return randn_tensor


for _mod in (dpm_mod, kdpm2a_mod):
    _mod.randn_tensor = _recording(_mod.randn_tensor)


class T:
    """A tensor to write in the common format; non-finite float entries become the strings "nan", "inf", "-inf"."""

    def __init__(self, value):
        a = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        self.a = a


def fmt_float(x, dtype):
    if not math.isfinite(float(x)):
        return json.dumps("nan" if math.isnan(float(x)) else ("inf" if x > 0 else "-inf"))
    return repr(np.float32(x)) if dtype == "float32" else repr(float(x))


def dump(obj, indent=0):
    pad = " " * indent
    if isinstance(obj, T):
        a = obj.a
        if a.dtype in (np.float32, np.float64):
            dtype = "float32" if a.dtype == np.float32 else "float64"
            data = ",".join(fmt_float(v, dtype) for v in a.ravel())
        else:
            dtype = "int64"
            data = ",".join(str(int(v)) for v in a.ravel())
        return '{"dtype": "%s", "shape": %s, "data": [%s]}' % (dtype, json.dumps(list(a.shape)), data)
    if isinstance(obj, dict):
        items = [f'{pad} {json.dumps(k)}: {dump(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(pad + " " + dump(v, indent + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        return fmt_float(obj, "float64")
    return json.dumps(obj)


def fake_model(model_input, t):
    c = np.float32(0.01 * math.sin(float(t) / 100))
    return (np.float32(0.1) * model_input + torch.tensor(c, dtype=torch.float32)).to(torch.float32)


def pred_x0(out):
    return getattr(out, "pred_original_sample", None)


def run_loop(scheduler, sample, timesteps, generator):
    steps = []
    for i, t in enumerate(timesteps):
        model_input = scheduler.scale_model_input(sample, t)
        model_output = fake_model(model_input, t)
        kwargs = {"generator": generator} if "generator" in scheduler.step.__code__.co_varnames else {}
        before = len(_drawn)
        out = scheduler.step(model_output, t, sample, **kwargs)
        drawn = _drawn[before:]
        assert len(drawn) <= 1, "more than one draw in a step"
        x0 = pred_x0(out)
        steps.append(
            {
                "i": i,
                "t": float(t),
                "model_input": T(model_input),
                "model_output": T(model_output),
                "prev_sample": T(out.prev_sample),
                "noise": T(drawn[0]) if drawn else None,
                "pred_original_sample": T(x0) if x0 is not None else None,
            }
        )
        sample = out.prev_sample
    return steps, sample


def extra_arrays(s):
    """The KDPM2 classes' interleaved sigma arrays, kept for debugging ports (they hold NaN entries upstream)."""
    extra = {}
    for key in ("sigmas_interpol", "sigmas_up", "sigmas_down"):
        if hasattr(s, key):
            extra[key] = T(getattr(s, key))
    return extra


def make(name, cls, extra_config, n):
    config = {**SD_CONFIG, **extra_config}
    s = cls.from_config(config)
    s.set_timesteps(n)
    full_config = {k: v for k, v in dict(s.config).items() if not k.startswith("_")}
    for k, v in full_config.items():
        if isinstance(v, float) and not math.isfinite(v):
            full_config[k] = "-inf" if v < 0 else ("inf" if v > 0 else "nan")
    initial_noise = torch.from_numpy(np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32))
    init_sigma = float(s.init_noise_sigma)
    initial_latent = (initial_noise * s.init_noise_sigma).to(torch.float32)
    generator = torch.Generator().manual_seed(NOISE_SEED)
    steps, final = run_loop(s, initial_latent, s.timesteps, generator)

    img2img = []
    for strength in STRENGTHS:
        s2 = cls.from_config(config)
        s2.set_timesteps(n)
        init_timestep = min(int(n * strength), n)
        t_start = max(n - init_timestep, 0)
        entry = {"strength": strength, "init_timestep": init_timestep, "t_start": t_start}
        used = s2.timesteps[t_start * s2.order :]
        if len(used) == 0:
            entry["skipped"] = True
            img2img.append(entry)
            continue
        s2.set_begin_index(t_start * s2.order)
        image_latent = torch.from_numpy(np.random.default_rng(1).standard_normal(SHAPE, dtype=np.float32))
        noise = torch.from_numpy(np.random.default_rng(2).standard_normal(SHAPE, dtype=np.float32))
        latent_timestep = used[:1]
        noisy = s2.add_noise(image_latent, noise, latent_timestep)
        g2 = torch.Generator().manual_seed(NOISE_SEED)
        steps2, final2 = run_loop(s2, noisy, used, g2)
        entry.update(
            {
                "begin_index": t_start * s2.order,
                "num_inference_steps_effective": len(used),
                "timesteps": T(used),
                "latent_timestep": float(latent_timestep[0]),
                "image_latent": T(image_latent),
                "noise": T(noise),
                "noisy_latent": T(noisy),
                "noise_seed": NOISE_SEED,
                "steps": steps2,
                "final_latent": T(final2),
            }
        )
        img2img.append(entry)

    golden = {
        "name": name,
        "scheduler_class": cls.__name__,
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
        "config": full_config,
        "num_inference_steps": n,
        "order": s.order,
        "init_noise_sigma": init_sigma,
        "timesteps": T(s.timesteps),
        "sigmas": T(s.sigmas) if getattr(s, "sigmas", None) is not None else None,
        **extra_arrays(s),
        "fake_model": "model_output = 0.1 * model_input + 0.01 * sin(t / 100)",
        "initial_noise": T(initial_noise),
        "initial_latent": T(initial_latent),
        "noise_seed": NOISE_SEED,
        "noise_generator": "torch.Generator('cpu').manual_seed(noise_seed), passed to every step() call",
        "steps": steps,
        "final_latent": T(final),
        "img2img": img2img,
    }
    return golden, {
        "file": f"{name}_{n}.json",
        "name": name,
        "scheduler_class": cls.__name__,
        "num_inference_steps": n,
        "prediction_type": config["prediction_type"],
        "num_model_calls": len(steps),
        "uses_noise": any(st["noise"] is not None for st in steps),
    }


def main():
    if diffusers.__version__ != "0.31.0":
        print(f"warning: goldens were made with diffusers 0.31.0, this is {diffusers.__version__}", file=sys.stderr)
    index = []
    for name, cls, extra in CASES:
        for n in STEPS:
            golden, entry = make(name, cls, extra, n)
            with open(os.path.join(OUT, entry["file"]), "w") as f:
                f.write(dump(golden) + "\n")
            index.append(entry)
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
