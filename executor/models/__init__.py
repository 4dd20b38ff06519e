"""Reference denoisers in torch, built from the planner's own configs (planner/zoo/reference.py).

    build_model(model_id, seed)            -> RefModel with fixed random weights
    conditioning(model_id, text_tokens, seed) -> the fixed random text conditioning

The same seed gives the same weights on every rank and in the serial baseline, whatever
the plan does to them afterwards (tensor-parallel slicing, dropping other stages' blocks).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from planner.zoo.reference import PRESETS

from . import dit, mmdit, unet
from .common import RefModel, State

__all__ = ["build_model", "conditioning", "Conditioning", "RefModel", "State", "PRESETS"]


def build_model(model_id: str, seed: int = 0) -> RefModel:
    p = PRESETS[model_id]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if p.arch == "dit":
            model = dit.build(p.config, p.channels, p.patch)
        elif p.arch == "video-dit":
            model = dit.build_video(p.config, p.channels, p.patch)
        elif p.arch == "mmdit":
            model = mmdit.build(p.config, p.channels, p.patch)
        else:
            model = unet.build(p.config, p.channels)
    model.arch = p.arch
    for name, m in model.named_modules():   # stable keys for per-layer buffers (stale K/V, halos)
        m.lid = name
    return model.eval().requires_grad_(False)


@dataclass
class Conditioning:
    """Text embeddings of the prompt (cond) and of the empty prompt (uncond)."""

    cond: torch.Tensor            # [T, text_dim]
    uncond: torch.Tensor
    cond_pooled: torch.Tensor | None = None     # [pooled_dim] (MM-DiT)
    uncond_pooled: torch.Tensor | None = None

    def batch(self, branches: tuple[str, ...], images: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text (and pooled) for `images` images of each branch, branch-major."""
        text = torch.cat([(self.cond if b == "cond" else self.uncond)[None].expand(images, -1, -1)
                          for b in branches])
        if self.cond_pooled is None:
            return text, None
        pooled = torch.cat([(self.cond_pooled if b == "cond" else self.uncond_pooled)[None].expand(images, -1)
                            for b in branches])
        return text, pooled


def conditioning(model_id: str, text_tokens: int, seed: int = 0) -> Conditioning:
    cfg = PRESETS[model_id].config
    g = torch.Generator().manual_seed(10_000 + seed)
    cond = torch.randn(text_tokens, cfg.text_dim, generator=g)
    uncond = 0.5 * torch.randn(text_tokens, cfg.text_dim, generator=g)
    pooled_dim = getattr(cfg, "pooled_dim", 0)
    if not pooled_dim:
        return Conditioning(cond, uncond)
    return Conditioning(cond, uncond, torch.randn(pooled_dim, generator=g), 0.5 * torch.randn(pooled_dim, generator=g))
