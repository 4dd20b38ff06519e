"""distrifusion: displaced patch parallelism (DistriFusion).

Each rank holds the whole model and computes one slice of the image (rows, or whole
frames of a video). Its self-attention uses its fresh K/V for its own slice and the
other slices' K/V from the previous step: every attention layer keeps a full-image K/V
buffer, starts an asynchronous all-gather of its fresh slice and folds the result into
the buffer when the layer runs again, one step later, so the traffic hides under the
step's compute. U-Net convs take their boundary rows and group norms their statistics
the same way (spatial.Rows "async"; DistriFusion corrects stale group-norm statistics
with the fresh local ones, which is what combining stale and fresh per-row statistics
does). The first `warmup` steps (planner default 4) are synchronous. Approximate.

PatchCtx is shared with sync_patch (mode "sync": blocking all-gather of fresh K/V in
every layer, exact) and naive_patch (mode "none": each slice alone).
"""
from __future__ import annotations

import torch

from ..context import Ctx, sdpa_text
from ..spatial import Rows, StaleGather
from .runner import Runner

EXCHANGE = {"stale": "async", "sync": "sync", "none": "none"}


class PatchCtx(Ctx):
    def __init__(self, *args, group, mode: str, **kw):
        super().__init__(*args, **kw)
        self.group, self.mode = group, mode
        self.rows = Rows(self.comm, group, exchange=EXCHANGE[mode], table=mode == "stale")
        self.kv: dict = {}          # layer -> [2, B, H, N, hd] full-image K/V (stale outside this slice)
        self.stale = StaleGather(self.comm, group)   # last step's K/V slices of every rank

    def attention(self, mod, q, k, v, text=None):
        if self.mode == "none":
            return sdpa_text(q, k, v, text)
        kv = torch.stack([k, v])
        n, i = kv.shape[3], self.group.index
        if self.mode == "sync" or self.warm:
            full = torch.cat(self.comm.all_gather(kv, self.group).unbind(0), dim=3)
            if self.mode == "stale":
                self.kv[mod.lid] = full
        else:
            full = self.kv[mod.lid]
            buf = self.stale.swap(mod.lid, kv)        # send this step's, get last step's slices
            if buf is not None:
                full.copy_(torch.cat(buf.unbind(0), dim=3))
            full[:, :, :, i * n:(i + 1) * n] = kv     # this rank's slice is fresh
        return sdpa_text(q, full[0], full[1], text)

    def halo(self, mod, x):
        return self.rows.halo(self, mod, x)

    def group_norm(self, mod, x):
        return self.rows.group_norm(self, mod, x)

    def finish(self) -> None:
        self.stale.finish()
        self.rows.finish()


def ctx(setup, mode: str = "stale"):
    key = {"stale": "distrifusion", "sync": "sync_patch", "none": "naive_patch"}[mode]
    return setup.rt.new_ctx(PatchCtx, tp=setup.group("tp"), group=setup.group(key), mode=mode)


RUNNER = Runner("distrifusion", ctx=ctx)
