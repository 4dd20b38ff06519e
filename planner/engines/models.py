"""Which diffusers classes each zoo model is, and the Hugging Face repository it loads from.

Engines decide support by model class (diffusers' `_cp_plan` lives on the transformer
class; vLLM-Omni and SGLang dispatch on the pipeline class of model_index.json), so every
engine module reads this one table. Class names checked against diffusers 0.42.1 (pip):
every name below is an attribute of the `diffusers` package there (tests/test_engines.py
checks it where diffusers is installed).

This table is the engines' own until the zoo carries each model's
model_index.json `_class_name` (planner/zoo/configs/<id>/, another change).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DiffusersClass:
    pipeline: str       # model_index.json _class_name
    denoiser: str       # the transformer / unet class
    repo: str           # Hugging Face repository of the weights


DIFFUSERS: dict[str, DiffusersClass] = {
    "sd1.5": DiffusersClass("StableDiffusionPipeline", "UNet2DConditionModel",
                            "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    "sd2.1": DiffusersClass("StableDiffusionPipeline", "UNet2DConditionModel", "stabilityai/stable-diffusion-2-1"),
    "sdxl": DiffusersClass("StableDiffusionXLPipeline", "UNet2DConditionModel",
                           "stabilityai/stable-diffusion-xl-base-1.0"),
    "sd3-medium": DiffusersClass("StableDiffusion3Pipeline", "SD3Transformer2DModel",
                                 "stabilityai/stable-diffusion-3-medium-diffusers"),
    "sd3.5-large": DiffusersClass("StableDiffusion3Pipeline", "SD3Transformer2DModel",
                                  "stabilityai/stable-diffusion-3.5-large"),
    "flux.1-dev": DiffusersClass("FluxPipeline", "FluxTransformer2DModel", "black-forest-labs/FLUX.1-dev"),
    "flux.1-schnell": DiffusersClass("FluxPipeline", "FluxTransformer2DModel", "black-forest-labs/FLUX.1-schnell"),
    "pixart-alpha": DiffusersClass("PixArtAlphaPipeline", "PixArtTransformer2DModel",
                                   "PixArt-alpha/PixArt-XL-2-1024-MS"),
    "pixart-sigma": DiffusersClass("PixArtSigmaPipeline", "PixArtTransformer2DModel",
                                   "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"),
    "dit-xl-2": DiffusersClass("DiTPipeline", "DiTTransformer2DModel", "facebook/DiT-XL-2-256"),
    "hunyuandit": DiffusersClass("HunyuanDiTPipeline", "HunyuanDiT2DModel",
                                 "Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers"),
    "cogvideox-2b": DiffusersClass("CogVideoXPipeline", "CogVideoXTransformer3DModel", "THUDM/CogVideoX-2b"),
    "cogvideox-5b": DiffusersClass("CogVideoXPipeline", "CogVideoXTransformer3DModel", "THUDM/CogVideoX-5b"),
    "hunyuanvideo": DiffusersClass("HunyuanVideoPipeline", "HunyuanVideoTransformer3DModel",
                                   "hunyuanvideo-community/HunyuanVideo"),
    "wan2.1-t2v-1.3b": DiffusersClass("WanPipeline", "WanTransformer3DModel", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
    "wan2.1-t2v-14b": DiffusersClass("WanPipeline", "WanTransformer3DModel", "Wan-AI/Wan2.1-T2V-14B-Diffusers"),
    "mochi-1": DiffusersClass("MochiPipeline", "MochiTransformer3DModel", "genmo/mochi-1-preview"),
    "latte-1": DiffusersClass("LattePipeline", "LatteTransformer3DModel", "maxin-cn/Latte-1"),
    "svd": DiffusersClass("StableVideoDiffusionPipeline", "UNetSpatioTemporalConditionModel",
                          "stabilityai/stable-video-diffusion-img2vid-xt"),
    "animatediff": DiffusersClass("AnimateDiffPipeline", "UNetMotionModel",
                                  "guoyww/animatediff-motion-adapter-v1-5-2"),
    # opensora-1.2 / opensora-2.0: hpcaitech/Open-Sora's own code, no diffusers class
}


def ids_of_pipeline(*pipelines: str) -> tuple[str, ...]:
    """Zoo ids whose diffusers pipeline class is one of `pipelines`."""
    return tuple(m for m, c in DIFFUSERS.items() if c.pipeline in pipelines)


def ids_of_denoiser(*denoisers: str) -> tuple[str, ...]:
    """Zoo ids whose transformer / unet class is one of `denoisers`."""
    return tuple(m for m, c in DIFFUSERS.items() if c.denoiser in denoisers)


def repo(model_id: str) -> str:
    c = DIFFUSERS.get(model_id)
    return c.repo if c else model_id
