"""Model zoo: a layer-level description of every model id the planner knows.

    model_ids()                      -> sorted ids
    facts(model_id)                  -> ModelFacts (scenario independent, with sources)
    build(model, height, width, frames=1, text_tokens=None) -> ModelSpec

`build` validates the scenario's sizes, turns them into a latent Grid and hands it to
the family module that knows the architecture (unet, dit, mmdit, video). Builds are
cached: a ModelSpec is immutable, so every caller may share it.
"""
from __future__ import annotations

import functools
import importlib
import numbers

from planner.errors import UserError
from planner.spec import ModelFacts, ModelSpec
from planner.zoo.facts import FACTS
from planner.zoo.layers import Grid
from planner.zoo.reference import REFERENCE_FACTS   # executor reference models, not in models.csv

__all__ = ["ZooError", "model_ids", "facts", "build"]

# Open-Sora 1.2's VAE encodes 17-frame micro-batches into 5 latent frames each.
_MICRO_BATCH = {"opensora-1.2": (17, 5)}


class ZooError(UserError):
    """Unknown model id."""


def model_ids() -> tuple[str, ...]:
    return tuple(sorted(FACTS))


def facts(model_id: str) -> ModelFacts:
    try:
        return FACTS[model_id] if model_id in FACTS else REFERENCE_FACTS[model_id]
    except (KeyError, TypeError):
        raise ZooError(f"unknown model id {model_id!r}; known ids: {', '.join(model_ids())}") from None


def _latent_frames(f: ModelFacts, frames: int) -> int:
    if f.id in _MICRO_BATCH:
        size, latent = _MICRO_BATCH[f.id]
        whole, rest = divmod(frames, size)
        return whole * latent + (1 + (rest - 1) // f.vae_temporal if rest else 0)
    if f.vae_temporal == 1:
        return frames            # image model or per-frame 2D VAE
    return 1 + (frames - 1) // f.vae_temporal   # causal 3D VAE: first frame alone


def _integer(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _grid(f: ModelFacts, height: int, width: int, frames: int, text_tokens: int | None) -> Grid:
    step = f.vae_spatial * f.patch
    for what, v in (("height", height), ("width", width)):
        if not _integer(v) or v < step or v % step:
            raise ValueError(f"{f.id}: {what}={v!r} must be a positive multiple of {step} "
                             f"(vae {f.vae_spatial} x patch {f.patch})")
    if not _integer(frames) or frames < 1:
        raise ValueError(f"{f.id}: frames={frames!r} must be an integer >= 1")
    if not f.arch.startswith("video") and frames != 1:
        raise ValueError(f"{f.id}: frames={frames} but {f.id} is an image model (frames must be 1)")
    text = f.text_tokens if text_tokens is None else text_tokens
    if not _integer(text) or text < 0:
        raise ValueError(f"{f.id}: text_tokens={text_tokens!r} must be a non-negative integer")
    height, width, frames, text = int(height), int(width), int(frames), int(text)
    if f.text_tokens == 0 and text:
        raise ValueError(f"{f.id}: text_tokens={text} but {f.id} has no text conditioning (use 0)")
    if f.text_tokens > 0 and text < 1:
        raise ValueError(f"{f.id}: text_tokens={text} must be >= 1")
    return Grid(height=height, width=width, frames=frames, lf=_latent_frames(f, frames),
                lh=height // f.vae_spatial, lw=width // f.vae_spatial, patch=f.patch, text=text)


def build(model: str, height: int, width: int, frames: int = 1,
          text_tokens: int | None = None) -> ModelSpec:
    """The model's denoiser, text encoders and VAE decoder at one scenario's sizes."""
    f = facts(model)
    grid = _grid(f, height, width, frames, text_tokens)    # checked before the cache: 1024.0 == 1024
    return _build(f, grid)


@functools.lru_cache(maxsize=512)
def _build(f, grid) -> ModelSpec:
    family = importlib.import_module(f"planner.zoo.{f.family}")
    return family.build(f, grid)
