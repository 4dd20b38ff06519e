"""The adapter of a pipeline's denoiser class: build it, hook it, name its blocks."""
from __future__ import annotations

import importlib

from . import hooks
from .denoiser import Denoiser, name_modules

NEEDS_IMAGE_SIZE = ("unet", "pixart", "animatediff", "svd")     # added size conditioning (SDXL, PixArt-alpha)
NEEDS_FRAMES = ("animatediff", "svd")     # frames folded into the batch: the blocks must know how many


def _build(fam, family: str, net, binding, image_size, frames: int):
    kw = {"frames": frames} if family in NEEDS_FRAMES else {}
    return fam.build(net, binding, image_size, **kw) if family in NEEDS_IMAGE_SIZE else fam.build(net, binding, **kw)


def adapt(net, family: str, image_size: tuple[int, int], frames: int = 1) -> Denoiser:
    """The diffusers module `net` as planner-named blocks, its modules hooked into the ctx."""
    name_modules(net)
    binding = hooks.Binding()
    fam = importlib.import_module(f"{__package__}.{family}")
    den = _build(fam, family, net, binding, image_size, frames)
    hooks.attach(net, binding, den.attention, den.across_heads)
    den.family = family
    return den.eval().requires_grad_(False)


def build_denoiser(pipeline, image_size: tuple[int, int]) -> Denoiser:
    return adapt(pipeline.denoiser(), pipeline.family, image_size, pipeline.frames)


def meta_denoiser(pc):
    """The configs' denoiser module on the meta device (no weights)."""
    import diffusers
    import torch
    from .scale import family_of
    fam = importlib.import_module(f"{__package__}.{family_of(pc)}")
    if hasattr(fam, "meta_denoiser"):         # a denoiser made of several components (AnimateDiff)
        return fam.meta_denoiser(pc)
    with torch.device("meta"):
        return getattr(diffusers, pc.cls(pc.denoiser)).from_config(pc.config(pc.denoiser))


def block_names(pc, image_size=(1024, 1024)) -> list[str]:
    """The blocks of the configs' denoiser, built on the meta device (no weights)."""
    from .scale import family_of
    family = family_of(pc)
    fam = importlib.import_module(f"{__package__}.{family}")
    return list(_build(fam, family, meta_denoiser(pc), hooks.Binding(), image_size, 1).names)
