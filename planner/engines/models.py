"""Which diffusers classes each zoo model is, and the Hugging Face repository it loads from.

Engines decide support by model class (diffusers' `_cp_plan` lives on the transformer
class; vLLM-Omni and SGLang dispatch on the pipeline class of model_index.json), so every
engine module reads this one table. The classes are the zoo's own configs'
(planner/zoo/configs/<id>/model_index.json: the pipeline `_class_name` and the denoiser
component's class); models whose denoiser is not a diffusers class (Open-Sora) have no
row. Only the weights' repositories are written here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..zoo import model_ids
from ..zoo.hub import CONFIGS


@dataclass(frozen=True, slots=True)
class DiffusersClass:
    pipeline: str       # model_index.json _class_name
    denoiser: str       # the transformer / unet class
    repo: str           # Hugging Face repository of the weights


# the Hugging Face repository each zoo model's weights load from
REPOS = {
    "sd1.5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd2.1": "stabilityai/stable-diffusion-2-1",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "sd3-medium": "stabilityai/stable-diffusion-3-medium-diffusers",
    "sd3.5-large": "stabilityai/stable-diffusion-3.5-large",
    "flux.1-dev": "black-forest-labs/FLUX.1-dev",
    "flux.1-schnell": "black-forest-labs/FLUX.1-schnell",
    "pixart-alpha": "PixArt-alpha/PixArt-XL-2-1024-MS",
    "pixart-sigma": "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
    "dit-xl-2": "facebook/DiT-XL-2-256",
    "hunyuandit": "Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers",
    "cogvideox-2b": "THUDM/CogVideoX-2b",
    "cogvideox-5b": "THUDM/CogVideoX-5b",
    "hunyuanvideo": "hunyuanvideo-community/HunyuanVideo",
    "wan2.1-t2v-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "wan2.1-t2v-14b": "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    "mochi-1": "genmo/mochi-1-preview",
    "latte-1": "maxin-cn/Latte-1",
    "svd": "stabilityai/stable-video-diffusion-img2vid-xt",
    "animatediff": "guoyww/animatediff-motion-adapter-v1-5-2",
}


def _classes(model_id: str) -> DiffusersClass | None:
    index = json.loads((CONFIGS / model_id / "model_index.json").read_text())
    den = index.get("transformer") or index.get("unet")
    if not den or den[0] != "diffusers":
        return None
    return DiffusersClass(index["_class_name"], den[1], REPOS[model_id])


DIFFUSERS: dict[str, DiffusersClass] = {m: c for m in model_ids() if (c := _classes(m)) is not None}


def ids_of_pipeline(*pipelines: str) -> tuple[str, ...]:
    """Zoo ids whose diffusers pipeline class is one of `pipelines`."""
    return tuple(m for m, c in DIFFUSERS.items() if c.pipeline in pipelines)


def ids_of_denoiser(*denoisers: str) -> tuple[str, ...]:
    """Zoo ids whose transformer / unet class is one of `denoisers`."""
    return tuple(m for m, c in DIFFUSERS.items() if c.denoiser in denoisers)


def repo(model_id: str) -> str:
    c = DIFFUSERS.get(model_id)
    return c.repo if c else model_id
