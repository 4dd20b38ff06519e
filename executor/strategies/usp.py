"""usp: Ulysses and Ring in one plan (unified sequence parallelism), and the ctx of every
plan whose only layer strategies are ulysses and/or ring (with tp beside them).

Layout (planner.layout: tp < ulysses < ring, inner to outer): a Ulysses group is u
consecutive sequence slices, a Ring group takes one rank from each Ulysses group. The
image is cut into u*r slices in order; the rank with Ulysses index a and Ring index b
holds slice b*u + a, so after the Ulysses all-to-all the Ring group circulates u
consecutive slices at a time (for the heads this rank handles).

For the U-Net, convs and group norms see the rest of the image through spatial.Rows in
synchronous mode: the row above and below each slice and the per-row statistics are
all-gathered over the whole sequence group before each conv / norm. Exact.
"""
from __future__ import annotations

from ..context import Ctx, sdpa_text
from ..spatial import Rows
from . import ring, ulysses
from .runner import Runner


class SequenceCtx(Ctx):
    def __init__(self, *args, uly, ring_group, seq, **kw):
        super().__init__(*args, **kw)
        self.uly, self.ring, self.seq = uly, ring_group, seq
        self.rows = Rows(self.comm, seq, exchange="sync", table=False)

    def _inner(self, q, k, v, text):
        if self.ring.size > 1:
            return ring.attention(self.comm, self.ring, q, k, v, text)
        return sdpa_text(q, k, v, text)

    def attention(self, mod, q, k, v, text=None):
        if self.uly.size > 1:
            return ulysses.attention(self.comm, self.uly, q, k, v, text, self._inner)
        return self._inner(q, k, v, text)

    def halo(self, mod, x):
        return self.rows.halo(self, mod, x)

    def group_norm(self, mod, x):
        return self.rows.group_norm(self, mod, x)


def ctx(setup):
    return setup.rt.new_ctx(SequenceCtx, tp=setup.group("tp"), uly=setup.group("ulysses"),
                            ring_group=setup.group("ring"), seq=setup.seq)


# Ulysses and Ring share one ctx, with or without each other
RUNNERS = (Runner("ulysses", ctx=ctx), Runner("ring", ctx=ctx))
