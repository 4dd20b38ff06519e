"""naive_patch: independent patches (a baseline of the DistriFusion paper).

Each rank denoises its slice of the image as if it were the whole image: attention only
within the slice, zero padding at the cut for convs, group-norm statistics of the slice.
Nothing is exchanged until the slices are gathered at the end. Fast and visibly seamed;
approximate. (distrifusion.PatchCtx in mode "none".)
"""
from __future__ import annotations

from . import distrifusion
from .runner import Runner


def ctx(setup):
    return distrifusion.ctx(setup, mode="none")


RUNNER = Runner("naive_patch", ctx=ctx)
