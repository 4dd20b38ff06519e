"""What the executor cannot run beyond planner/legality.py (torch-free, so the CLI can
reject bad input before importing torch).

The planner checks a plan against the ModelSpec; the executor runs the model's diffusers
classes at a --scale (or from a --weights folder), whose head counts, widths, GroupNorm
groups, U-Net levels and latent frames are what the shrunk architecture has. Those checks
are executor/diffusers/legality.py's (arch_errors: heads for Ulysses / TP, MLP features and
GroupNorm groups for TP, U-Net rows through the downsampling, whole latent frames of a
video, DSP only on factorised attention, Latte's frame table).
"""
from __future__ import annotations

from planner.plan import Plan


def job_errors(model: str, height: int, frames: int, plan: Plan, *, scale: str, width: int | None = None,
               text_tokens: int = 0, weights: str = "") -> list[str]:
    """Why the executor cannot run `plan` on `model` at `scale` (empty: it can)."""
    from .diffusers.legality import arch_errors
    return arch_errors(model, scale, height, width or height, frames, text_tokens, plan, weights)
