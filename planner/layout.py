"""Which ranks form which group: the plan's parallel dimensions laid onto rank numbers.

Ranks are numbered so that consecutive ranks are close in the cluster (same NVSwitch,
PCIe switch or socket, then node). A layout orders the plan's dimensions from innermost
(consecutive ranks) to outermost (strided), in mixed radix. xDiT's fixed order is
tp, sp (ulysses inside ring), pp, cfg, dp from inner to outer (xdit.md (a)); the
placement search (planner/ilp/placement.py) may choose another order.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from .plan import Plan
from .strategies import XDIT_ORDER


@dataclass(frozen=True)
class Layout:
    sizes: tuple[tuple[str, int], ...]      # (dimension, size), innermost first
    _groups: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.sizes)

    @property
    def ranks(self) -> int:
        n = 1
        for _, s in self.sizes:
            n *= s
        return n

    def groups(self, dim: str) -> tuple[tuple[int, ...], ...]:
        """Every group of ranks that `dim` communicates within (a tuple of rank tuples)."""
        if dim in self._groups:
            return self._groups[dim]
        sizes = dict(self.sizes)
        if dim not in sizes:
            g = tuple((r,) for r in range(self.ranks))
        else:
            # rank = sum of coordinate x stride, the first dimension innermost: as an array
            # indexed outermost-first, the groups of `dim` are its axis moved last, in
            # ascending order of their first rank
            axis = len(self.sizes) - 1 - self.order.index(dim)
            ranks = np.arange(self.ranks).reshape([s for _, s in reversed(self.sizes)])
            g = tuple(map(tuple, np.moveaxis(ranks, axis, -1).reshape(-1, sizes[dim]).tolist()))
        self._groups[dim] = g
        return g

    def neighbours(self, dim: str, position: int) -> tuple[tuple[int, int], ...]:
        """(rank at `position`, rank at the next position) of every group of `dim`: the
        point-to-point hops from one pipeline stage to the next, all pipelines at once."""
        key = ("neighbours", dim, position)
        if key not in self._groups:
            self._groups[key] = tuple((g[position], g[(position + 1) % len(g)]) for g in self.groups(dim))
        return self._groups[key]

    def ring_pairs(self, dim: str) -> tuple[tuple[int, int], ...]:
        """(rank, next rank in its group, cyclically) for every rank of the groups of `dim`
        that have more than one rank: a ring of point-to-point sends, all groups at once."""
        key = ("ring_pairs", dim)
        if key not in self._groups:
            self._groups[key] = tuple((g[i], g[(i + 1) % len(g)]) for g in self.groups(dim) if len(g) > 1
                                      for i in range(len(g)))
        return self._groups[key]

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def of(sizes: tuple[tuple[str, int], ...]) -> "Layout":
        """The Layout of these sizes, one object per sizes: its rank groups are built once
        and keep their identity, which the communication model's caches key on."""
        return Layout(sizes)

    def coords(self, rank: int) -> dict[str, int]:
        out, rest = {}, rank
        for k, s in self.sizes:
            out[k] = rest % s
            rest //= s
        return out

    def to_dict(self, plan: Plan) -> dict:
        """JSON form: the plan, and the rank groups of each of its dimensions."""
        return {"plan": str(plan), "ranks": self.ranks, "sizes": [[k, s] for k, s in self.sizes],
                "groups": {k: [list(gr) for gr in self.groups(k)] for k in self.order}}

    def describe(self) -> str:
        return " < ".join(f"{k}={s}" for k, s in self.sizes) + "  (inner < outer)"


def dimension_sizes(plan: Plan) -> dict[str, int]:
    """GPUs along each of the plan's dimensions (asyncdiff=N stride=S spans N+S-1)."""
    return dict(plan.dimensions)


def layout_for(plan: Plan, order: tuple[str, ...] = XDIT_ORDER) -> Layout:
    """The plan's dimensions in `order` (inner -> outer); a key's first place in `order`
    counts, and dimensions `order` does not name go outermost in xDiT's order."""
    sizes = dimension_sizes(plan)
    rank: dict[str, int] = {}
    for i, k in enumerate(tuple(order) + XDIT_ORDER):
        rank.setdefault(k, i)
    dims = sorted(sizes, key=lambda k: rank.get(k, len(order)))
    return Layout.of(tuple((k, sizes[k]) for k in dims))


def dimension_names(plans) -> tuple[str, ...]:
    """Every dimension any of `plans` has (e.g. a schedule's runs), in xDiT's order."""
    names = {k for p in plans for k in dimension_sizes(p)}
    return tuple(k for k in XDIT_ORDER if k in names)


def ordered_layout(plan: Plan, order: tuple[str, ...]) -> Layout:
    """The layout predict() takes for `plan` laid out in `order`: the plan's own layout;
    for a switching schedule, a layout that carries only the order (size-1 dimensions),
    in which each run lays out the dimensions it has (planner/cost/predict.py)."""
    if plan.segments:
        return Layout.of(tuple((k, 1) for k in order))
    return layout_for(plan, order)


def all_orders(plan: Plan):
    """Every order of the plan's dimensions (for the placement search)."""
    sizes = dimension_sizes(plan)
    for perm in itertools.permutations(sizes):
        yield Layout.of(tuple((k, sizes[k]) for k in perm))
