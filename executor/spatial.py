"""Row-split convs and group norms: what a 3x3 conv and a GroupNorm of the U-Net need from
the rows other ranks hold.

A rank holds rows [r0, r1) of an activation; the members of `group` hold the rows of a
span [s0, s1) in equal consecutive slices, in group order (the whole image, or one
PipeFusion patch). Two things cross slice boundaries:

    halo(x)        the row above r0 and the row below r1 (a 3x3 conv's padding)
    group_norm(x)  mean and variance of each group over the whole image

Each member sends its two boundary rows and the per-row (mean, M2) statistics of its
slice; statistics of whole rows combine exactly (Chan's parallel variance), so a
synchronous exchange reproduces the serial result. `exchange` says how:

    "sync"   all-gathered now (sequence parallelism, sync_patch, PipeFusion inside a patch)
    "async"  DistriFusion: use what the group sent at the previous step (stale) and send
             this step's values with an asynchronous all-gather, waited at the next use;
             synchronous during warm-up steps (ctx.warm)
    "none"   naive patches: zeros beyond the slice, statistics of the slice alone

`table=True` keeps every row's last known boundary values and statistics: the stale
source for "async", and for spans smaller than the image (PipeFusion) the rows of other
patches, fresh if their patch already went through this step, else a step old. When
ctx.fill_tables is set (PipeFusion's synchronous warm-up) whole activations are gathered
so the table knows every row, not only slice boundaries.
"""
from __future__ import annotations

import torch

from .comm import Comm, Group


class StaleGather:
    """All-gathers whose result is used one call later (DistriFusion's stale exchange):
    each call starts the gather of this call's values and returns the previous call's,
    waited for; K/V buffers and row exchanges share it."""

    def __init__(self, comm: Comm, group: Group):
        self.comm, self.group = comm, group
        self.pending: dict = {}    # key -> (gathered buffer, work) in flight

    def swap(self, key, fresh: torch.Tensor):
        """Start gathering `fresh` under `key`; the gathered values of the previous call
        with this key (None the first time)."""
        old = self.pending.pop(key, None)
        self.pending[key] = self.comm.all_gather_async(fresh, self.group)
        if old is None:
            return None
        buf, work = old
        if work is not None:
            work.wait()
        return buf

    def finish(self) -> None:
        """Wait for every gather still in flight."""
        for _, work in self.pending.values():
            if work is not None:
                work.wait()
        self.pending.clear()


class Rows:
    def __init__(self, comm: Comm, group: Group, exchange: str, table: bool):
        self.comm, self.group, self.exchange, self.use_table = comm, group, exchange, table
        self.halos: dict = {}      # layer -> [B, C, rows, W] last known rows
        self.stats: dict = {}      # layer -> [2, B, G, rows] last known per-row (mean, M2)
        self.stale = StaleGather(comm, group)   # the "async" exchange

    # ---------------------------------------------------------------- geometry
    @staticmethod
    def _geometry(ctx, x):
        lv = ctx.level(x)
        span = getattr(ctx, "span", (0, ctx.R))
        return lv, ctx.r0 >> lv, ctx.r1 >> lv, ctx.R >> lv, span[0] >> lv, span[1] >> lv

    def _mode(self, ctx) -> str:
        return "sync" if self.exchange == "async" and ctx.warm else self.exchange

    def _collect(self, key, store: dict, fresh: torch.Tensor, mode: str):
        """The members' `fresh` values for this call: gathered now ("sync"), or the ones
        gathered at the previous call ("async", None the first time). Starts the next
        asynchronous exchange when asked."""
        if mode == "sync":
            return self.comm.all_gather(fresh, self.group)
        return self.stale.swap(key, fresh)

    def finish(self) -> None:
        self.stale.finish()

    # ---------------------------------------------------------------- conv halos
    def halo(self, ctx, mod, x: torch.Tensor) -> torch.Tensor:
        lv, r0, r1, rows, s0, s1 = self._geometry(ctx, x)
        zero = torch.zeros_like(x[..., :1, :])
        if self.exchange == "none":
            return torch.cat([zero, x, zero], dim=-2)
        mode = self._mode(ctx)
        key = (mod.lid, lv)
        table = None
        if self.use_table:
            shape = x.shape[:-2] + (rows, x.shape[-1])
            table = self.halos.get(key)
            if table is None or table.shape != shape:
                table = self.halos[key] = torch.zeros(shape, dtype=x.dtype, device=x.device)
        if table is not None and getattr(ctx, "fill_tables", False):
            whole = self.comm.all_gather(x, self.group)              # every row of the span
            table[..., s0:s1, :] = torch.cat(whole.unbind(0), dim=-2)
        edges = torch.cat([x[..., :1, :], x[..., -1:, :]], dim=-2)   # my top and bottom rows
        got = self._collect(key, self.halos, edges, mode)
        h = r1 - r0
        if got is not None and table is not None:                   # remember the members' edges
            for j in range(self.group.size):
                a = s0 + j * h
                table[..., a:a + 1, :] = got[j][..., :1, :]
                table[..., a + h - 1:a + h, :] = got[j][..., 1:, :]
        if table is not None:
            table[..., r0:r0 + 1, :] = x[..., :1, :]
            table[..., r1 - 1:r1, :] = x[..., -1:, :]
        i = self.group.index
        if r0 == 0:
            above = zero
        elif mode == "sync" and r0 > s0:
            above = got[i - 1][..., 1:, :]
        else:
            above = table[..., r0 - 1:r0, :]
        if r1 == rows:
            below = zero
        elif mode == "sync" and r1 < s1:
            below = got[i + 1][..., :1, :]
        else:
            below = table[..., r1:r1 + 1, :]
        return torch.cat([above, x, below], dim=-2)

    # ---------------------------------------------------------------- group norm
    def group_norm(self, ctx, mod, x: torch.Tensor) -> torch.Tensor:
        lv, r0, r1, rows, s0, s1 = self._geometry(ctx, x)
        b, c, h, w = x.shape
        g = mod.num_groups
        xs = x.float().view(b, g, c // g, h, w)
        mean = xs.mean(dim=(2, 4))                                      # [B, G, h] per row
        m2 = ((xs - mean[:, :, None, :, None]) ** 2).sum(dim=(2, 4))
        own = torch.stack([mean, m2])                                   # [2, B, G, h]
        if self.exchange == "none":
            allrows = own
        else:
            mode = self._mode(ctx)
            key = (mod.lid, lv)
            got = self._collect(key, self.stats, own, mode)
            if self.use_table or got is None or (s0, s1) != (0, rows):
                table = self.stats.get(key)
                if table is None:
                    table = self.stats[key] = torch.zeros((2, b, g, rows), dtype=own.dtype, device=x.device)
                if got is not None:
                    table[..., s0:s1] = torch.cat(got.unbind(0), dim=-1)
                table[..., r0:r1] = own
                allrows = table
            else:
                allrows = torch.cat(got.unbind(0), dim=-1)
        n = (c // g) * w                                                 # elements per row and group
        means, m2s = allrows[0], allrows[1]
        mu = means.mean(dim=-1)                                          # equal rows: plain average
        var = (m2s.sum(dim=-1) + n * ((means - mu[..., None]) ** 2).sum(dim=-1)) / (n * means.shape[-1])
        y = (xs - mu[:, :, None, None, None]) * torch.rsqrt(var + mod.eps)[:, :, None, None, None]
        y = y.view(b, c, h, w).to(x.dtype)
        return y * mod.weight[:, None, None] + mod.bias[:, None, None]
