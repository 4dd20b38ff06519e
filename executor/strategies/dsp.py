"""dsp: dynamic sequence parallelism (VideoSys) for video models with factorised attention.

A video's tokens are [frames, positions]. Spatial blocks attend within a frame, temporal
blocks across frames at one position, so each block is local when the group shards the
axis it does not attend over: frames for spatial blocks, positions for temporal ones.
Switching between the two is one all-to-all of the block's activation slice; blocks call
ctx.switch(x, axis) on entry. The latent, the embed and the final block are sharded by
frames. No head-count limit. Exact.
"""
from __future__ import annotations

from ..context import Ctx
from .runner import Runner


class DspCtx(Ctx):
    def __init__(self, *args, group, **kw):
        super().__init__(*args, **kw)
        self.group = group
        self.axis = "frames"

    def switch(self, x, axis: str):
        if axis == self.axis or self.group.size == 1:
            self.axis = axis
            return x
        d = self.group.size
        b, fr, n, dim = x.shape
        if axis == "positions":     # [B, F/d, S, D] -> [B, F, S/d, D]
            y = x.view(b, fr, d, n // d, dim).permute(2, 0, 1, 3, 4)
            y = self.comm.all_to_all(y, self.group)                      # [source frames, B, F/d, S/d, D]
            out = y.permute(1, 0, 2, 3, 4).reshape(b, d * fr, n // d, dim)
        else:                       # [B, F, S/d, D] -> [B, F/d, S, D]
            y = x.view(b, d, fr // d, n, dim).permute(1, 0, 2, 3, 4)
            y = self.comm.all_to_all(y, self.group)                      # [source positions, B, F/d, S/d, D]
            out = y.permute(1, 2, 0, 3, 4).reshape(b, fr // d, d * n, dim)
        self.axis = axis
        return out

    def begin_step(self, warm: bool) -> None:
        super().begin_step(warm)
        self.axis = "frames"


def ctx(setup):
    return setup.rt.new_ctx(DspCtx, tp=setup.group("tp"), group=setup.group("dsp"))


RUNNER = Runner("dsp", ctx=ctx)
