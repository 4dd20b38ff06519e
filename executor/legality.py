"""What the executor cannot run beyond planner/legality.py (torch-free, so the CLI can
reject bad input before importing torch).

The planner checks the latent rows against the sequence degree; the reference models add:
- a video is split by whole frames, so the frames must divide by the slices;
- the U-Net halves its rows at each level, so every row slice must stay whole through
  the downsampling;
- tensor parallelism splits the U-Net's GroupNorm after a column-parallel conv by whole
  groups.
"""
from __future__ import annotations

import math

from planner.plan import Plan
from planner.strategies import STRATEGIES, latent_pieces
from planner.zoo.reference import PRESETS


def feature_split(plan: Plan) -> int:
    """Into how many parts the plan splits the features of a layer (tensor parallelism)."""
    return math.prod(STRATEGIES[k].shard(d, plan).features for k, d in plan.degrees)


def job_errors(model: str, height: int, frames: int, plan: Plan, scale: str = "", width: int | None = None,
               text_tokens: int = 0, weights: str = "") -> list[str]:
    if scale:       # a diffusers model at --scale (executor/diffusers/legality.py)
        from .diffusers.legality import arch_errors
        return arch_errors(model, scale, height, width or height, frames, text_tokens, plan, weights)
    p = PRESETS[model]
    errs = []
    for seg in plan.plans():
        n = latent_pieces(seg)
        rows = height // 8 // p.patch
        if p.arch == "video-dit" and frames % n:
            errs.append(f"the video model is split by whole frames ('{seg}'); {frames} frames "
                        f"do not divide into {n} slices")
        if p.arch == "unet":
            down = 2 ** (len(p.config.channels) - 1)
            if rows % (n * down):
                errs.append(f"each of the {n} row slices of the U-Net ('{seg}') must keep a whole number of "
                            f"rows through {down}x downsampling; {rows} latent rows need a multiple of {n * down}")
            split = feature_split(seg)
            if split > 1 and p.config.groups % split:
                errs.append(f"the {split}-way feature split of '{seg}' must divide the U-Net's {p.config.groups} "
                            f"GroupNorm groups (column-parallel convs split whole groups)")
    return errs
