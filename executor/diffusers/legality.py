"""What a diffusers model's architecture (at the chosen scale) cannot run, beyond the
planner's checks (torch-free: the CLI refuses a plan before any rank starts).

The planner checks a plan against the zoo's ModelSpec of the real model; the executor runs
the model at --scale, whose head counts, widths and GroupNorm groups are smaller, so:
- Ulysses and tensor parallelism split whole heads of every attention over the split stream;
- tensor parallelism splits MLP hidden features, the U-Net's GroupNorm groups (the norm after
  a column-parallel conv keeps whole groups) and Flux's packed single-block projection;
- a U-Net's row slices stay whole through its downsampling; videos split by whole latent
  frames (rows of an image);
- DSP (factorised attention: Latte; the planner refuses the others) shards frames and
  positions per frame;
- diffusers' Latte adds a frame-position table as long as its video_length to every clip.
"""
from __future__ import annotations

import math
from pathlib import Path

from planner.plan import Plan
from planner.strategies import STRATEGIES, latent_pieces

from . import configs as cfgs
from . import scale as scales


# causal 3D VAEs and their temporal compression (the diffusers classes' defaults: Mochi's
# temporal_expansions 1 x 2 x 3)
CAUSAL_VAES = {"AutoencoderKLWan": 4, "AutoencoderKLCogVideoX": 4, "AutoencoderKLHunyuanVideo": 4,
               "AutoencoderKLMochi": 6}


def latent_frames(model: str, frames: int) -> int:
    """Latent frames of a clip: causal 3D VAEs (Wan, CogVideoX) keep the first frame alone and
    compress the rest 4x; per-frame VAEs (Latte) keep them."""
    pc = cfgs.pipeline_configs(model)
    ratio = CAUSAL_VAES.get(pc.cls("vae"))
    return 1 + (frames - 1) // ratio if ratio else frames


# denoisers whose video is split by whole latent frames (video U-Nets split rows, as images)
VIDEO_CLASSES = ("WanTransformer3DModel", "CogVideoXTransformer3DModel", "LatteTransformer3DModel",
                 "MochiTransformer3DModel", "HunyuanVideoTransformer3DModel")


# U-Nets: split by latent rows (of every frame for the video ones), halved at each level
UNETS = ("UNet2DConditionModel", "UNetSpatioTemporalConditionModel")


def denoiser_config(model: str, scale: str, text_tokens: int, frames: int, weights: str = "") -> tuple[str, dict]:
    """(class name, config) of the denoiser at `scale` (or the --weights folder's)."""
    if weights:
        pc = cfgs.read_folder(Path(weights), model)
    else:
        pc = scales.scaled_configs(cfgs.pipeline_configs(model), scale, text_tokens, latent_frames(model, frames))
    return pc.cls(pc.denoiser), pc.config(pc.denoiser)


def _motion_heads(model: str, weights: str) -> list[int]:
    """AnimateDiff's motion modules: their heads split under tensor parallelism too."""
    pc = cfgs.read_folder(Path(weights), model) if weights else cfgs.pipeline_configs(model)
    if "motion_adapter" not in pc.components:
        return []
    return [pc.config("motion_adapter").get("motion_num_attention_heads", 8)]


def _heads(cls: str, cfg: dict) -> list[int]:
    if cls == "UNetSpatioTemporalConditionModel":
        return list(cfg.get("num_attention_heads", (5, 10, 20, 20)))
    if cls == "UNet2DConditionModel":
        h = cfg.get("attention_head_dim", 8)
        levels = len(cfg.get("block_out_channels", [320, 640, 1280, 1280]))
        return list(h) if isinstance(h, (list, tuple)) else [h] * levels
    return [cfg.get("num_attention_heads", 1)]


def _ffn(cls: str, cfg: dict) -> list[int]:
    if cls in UNETS:
        return [4 * c for c in cfg.get("block_out_channels", [])]
    inner = cfg.get("num_attention_heads", 1) * cfg.get("attention_head_dim", 1)
    if cls == "WanTransformer3DModel":
        return [cfg["ffn_dim"]]
    if cls == "HunyuanDiT2DModel":
        return [int(inner * cfg.get("mlp_ratio", 4.0))]
    return [4 * inner]


def arch_errors(model: str, scale: str, height: int, width: int, frames: int, text_tokens: int,
                plan: Plan, weights: str = "") -> list[str]:
    cls, cfg = denoiser_config(model, scale, text_tokens, frames, weights)
    pc = cfgs.pipeline_configs(model)
    video = cls in VIDEO_CLASSES
    patch = 1 if cls in UNETS else 2
    rows, cols = height // 8 // patch, width // 8 // patch
    lf = latent_frames(model, frames)
    errs = []
    if cls == "LatteTransformer3DModel" and cfg.get("video_length", 16) != lf:
        errs.append(f"{model}: diffusers' LatteTransformer3DModel adds a {cfg.get('video_length', 16)}-frame position "
                    f"table to every clip, so --frames must be {cfg.get('video_length', 16)} (not {frames})")
    for seg in plan.plans():
        n = latent_pieces(seg)
        if video and lf % n:
            errs.append(f"'{seg}' cuts the video into {n} slices of whole latent frames; {lf} latent frames "
                        f"({frames} frames) do not divide into {n}")
        if cls in UNETS:
            down = 2 ** (len(cfg.get("block_out_channels", [0] * 4)) - 1)
            if rows % (n * down):
                errs.append(f"each of the {n} row slices of the U-Net ('{seg}') must stay whole through {down}x "
                            f"downsampling; {rows} latent rows need a multiple of {n * down}")
        heads, features, groups = (math.prod(getattr(STRATEGIES[k].shard(d, seg), f) for k, d in seg.degrees)
                                   for f in ("heads", "features", "groups"))
        tp_heads = _motion_heads(model, weights) if features > 1 else []     # TP (heads and features split)
        bad = sorted({h for h in _heads(cls, cfg) + tp_heads if h % heads})
        if heads > 1 and bad:
            errs.append(f"'{seg}' splits every attention's heads {heads} ways (Ulysses, tensor parallelism); {model} "
                        f"at --scale {scale} has {', '.join(map(str, bad))} heads")
        if features > 1:
            bad = sorted({f for f in _ffn(cls, cfg) if f % features})
            if bad:
                errs.append(f"'{seg}' splits MLP hidden features {features} ways; {bad} do not divide")
            gn = cfg.get("norm_num_groups", 32)        # SVD's: 32, fixed in the class
            if cls in UNETS and gn % features:
                errs.append(f"the {features}-way feature split of '{seg}' must divide the U-Net's {gn} GroupNorm "
                            f"groups (column-parallel convs split whole groups)")
        if groups > 1 and cls == "LatteTransformer3DModel" and (lf % groups or (rows * cols) % groups):
            errs.append(f"'{seg}' shards {lf} frames and {rows * cols} positions per frame {groups} ways; both "
                        f"must divide")
    if pc.cls("transformer" if "transformer" in pc.components else "unet") != cls:
        errs.append(f"{model}: configs disagree on the denoiser class")
    return list(dict.fromkeys(errs))
