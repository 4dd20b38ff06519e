"""A scenario's sizes checked against a model's facts and turned into its latent Grid."""
from __future__ import annotations

import numbers

from planner.spec import ModelFacts
from planner.zoo.layers import Grid

# Open-Sora 1.2's VAE encodes 17-frame micro-batches into 5 latent frames each
# (configs/opensora-1.2/vae/config.json: micro_frame_size 17, temporal x4 causal).
_MICRO_BATCH = {"opensora-1.2": (17, 5)}


def latent_frames(f: ModelFacts, frames: int) -> int:
    if f.id in _MICRO_BATCH:
        size, latent = _MICRO_BATCH[f.id]
        whole, rest = divmod(frames, size)
        return whole * latent + (1 + (rest - 1) // f.vae_temporal if rest else 0)
    if f.vae_temporal == 1:
        return frames            # image model or per-frame 2D VAE
    return 1 + (frames - 1) // f.vae_temporal   # causal 3D VAE: first frame alone


def _integer(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def grid(f: ModelFacts, height: int, width: int, frames: int, text_tokens: int | None) -> Grid:
    """The latent Grid of one scenario; a ValueError naming the model and the value when the
    model cannot take these sizes."""
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
    return Grid(height=height, width=width, frames=frames, lf=latent_frames(f, frames),
                lh=height // f.vae_spatial, lw=width // f.vae_spatial, patch=f.patch, text=text)
