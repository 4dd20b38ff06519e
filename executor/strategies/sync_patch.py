"""sync_patch: synchronous patch parallelism (a baseline of the DistriFusion paper).

Like distrifusion, each rank computes one slice of the image with the whole model, but
every self-attention waits for a blocking all-gather of the fresh K/V of all slices, and
U-Net convs / group norms exchange fresh boundary rows and statistics. Exact.
(distrifusion.PatchCtx in mode "sync".)
"""
from __future__ import annotations

from . import distrifusion
from .runner import Runner


def ctx(setup):
    return distrifusion.ctx(setup, mode="sync")


RUNNER = Runner("sync_patch", ctx=ctx)
