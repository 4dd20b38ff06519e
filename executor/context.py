"""How one rank's layers see the image: the `ctx` every block of a denoiser receives.

A ctx knows which part of the image stream this rank holds for the current call (grid rows
[r0, r1) of R, frames [f0, f1) of F) and answers the four questions a layer cannot answer
alone:

    attention(mod, q, k, v, text=None)  attention of the local queries over the image
                                         (plus the text tokens of joint attention)
    halo(mod, x)                         x with the row above and below its slice
    group_norm(mod, x)                   group norm with statistics of the whole image
    tp_reduce(y)                         the sum of a row-parallel projection over TP ranks
    switch(x, axis)                      DSP's change of sharded axis (identity otherwise)

`Ctx` is the whole image on one rank (serial, cfg, dp, tp, and the step-level methods).
Sequence strategies (executor/strategies/usp.py), patch strategies (spatial.py) and
PipeFusion subclass it. q/k/v are [batch, heads, tokens, head_dim]; a leading batch may
fold several independent sequences (video frames).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .comm import Comm, Group


def sdpa_text(q, k, v, text=None):
    """Attention of [text; image] queries over [text; image] keys; returns (image out,
    text out) with text, else the image output alone."""
    if text is None:
        return F.scaled_dot_product_attention(q, k, v)
    tq, tk, tv = text
    t = tq.shape[2]
    o = F.scaled_dot_product_attention(torch.cat([tq, q], 2), torch.cat([tk, k], 2), torch.cat([tv, v], 2))
    return o[:, :, t:], o[:, :, :t]


class Ctx:
    """The whole image stream on this rank (optionally with tensor parallelism)."""

    def __init__(self, rows: int, frames: int = 1, video: bool = False, comm: Comm | None = None,
                 tp: Group | None = None):
        self.R, self.F, self.video = rows, frames, video
        # The split axis: grid rows of an image, whole frames of a video. Strategies
        # slice units [u0, u1) of U; attention tokens come in equal runs per unit.
        self.U = frames if video else rows
        self.set_units(0, self.U)
        self.comm, self.tp = comm, tp
        self.warm = True          # a synchronous (warm-up) step: stale methods use fresh values

    def set_units(self, u0: int, u1: int) -> None:
        self.u0, self.u1 = u0, u1
        if self.video:
            self.f0, self.f1, self.r0, self.r1 = u0, u1, 0, self.R
        else:
            self.r0, self.r1, self.f0, self.f1 = u0, u1, 0, self.F

    # ---- step boundaries (stale-activation methods keep state between steps)
    def begin_step(self, warm: bool) -> None:
        self.warm = warm

    def finish(self) -> None:
        """Wait for anything still in flight (asynchronous gathers of stale methods)."""

    # ---- the four questions
    def tp_reduce(self, y: torch.Tensor) -> torch.Tensor:
        return self.comm.all_reduce(y, self.tp) if self.tp is not None and self.tp.size > 1 else y

    def attention(self, mod, q, k, v, text=None):
        return sdpa_text(q, k, v, text)

    def halo(self, mod, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, 1, 1))

    def group_norm(self, mod, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, mod.num_groups, mod.weight, mod.bias, mod.eps)

    def switch(self, x: torch.Tensor, axis: str) -> torch.Tensor:
        return x

    # ---- geometry helpers for subclasses
    def level(self, x: torch.Tensor) -> int:
        """How many times x (a [B, C, rows, W] conv input/output) is downsampled from the
        latent grid: the local slice holds (r1 - r0) >> level rows."""
        held, rows = self.r1 - self.r0, x.shape[-2]
        shift = 0
        while (held >> shift) > rows:
            shift += 1
        if (held >> shift) != rows or (held >> shift) << shift != held:
            raise ValueError(f"a {rows}-row slice does not come from {held} latent rows by halving: "
                             f"the rows per rank must stay divisible through the U-Net's downsampling")
        return shift
