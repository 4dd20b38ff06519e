"""The adapter of a pipeline's denoiser class: build it, hook it, name its blocks."""
from __future__ import annotations

import importlib

from . import hooks
from .denoiser import Denoiser, name_modules

NEEDS_IMAGE_SIZE = ("unet", "pixart")     # added size conditioning (SDXL, PixArt-alpha)


def adapt(net, family: str, image_size: tuple[int, int]) -> Denoiser:
    """The diffusers module `net` as planner-named blocks, its modules hooked into the ctx."""
    name_modules(net)
    binding = hooks.Binding()
    fam = importlib.import_module(f"{__package__}.{family}")
    den = fam.build(net, binding, image_size) if family in NEEDS_IMAGE_SIZE else fam.build(net, binding)
    hooks.attach(net, binding, den.attention, den.across_heads)
    den.family = family
    return den.eval().requires_grad_(False)


def build_denoiser(pipeline, image_size: tuple[int, int]) -> Denoiser:
    return adapt(pipeline.denoiser(), pipeline.family, image_size)


def block_names(pc, image_size=(1024, 1024)) -> list[str]:
    """The blocks of the configs' denoiser, built on the meta device (no weights)."""
    import diffusers
    import torch
    from .scale import family_of
    cls = getattr(diffusers, pc.cls(pc.denoiser))
    with torch.device("meta"):
        net = cls.from_config(pc.config(pc.denoiser))
    fam = importlib.import_module(f"{__package__}.{family_of(pc)}")
    b = hooks.Binding()
    den = fam.build(net, b, image_size) if family_of(pc) in NEEDS_IMAGE_SIZE else fam.build(net, b)
    return list(den.names)
