"""Which ranks form which group: the plan's parallel dimensions laid onto rank numbers.

Ranks are numbered so that consecutive ranks are close in the cluster (same NVSwitch,
PCIe switch or socket, then node). A layout orders the plan's dimensions from innermost
(consecutive ranks) to outermost (strided), in mixed radix. xDiT's fixed order is
tp, sp (ulysses inside ring), pp, cfg, dp from inner to outer (xdit.md (a)); the
placement search (planner/ilp/placement.py) may choose another order.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

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
            stride = 1
            for k, s in self.sizes:
                if k == dim:
                    break
                stride *= s
            size = sizes[dim]
            g = tuple(tuple(base + i * stride for i in range(size))
                      for base in range(self.ranks)
                      if (base // stride) % size == 0)
        self._groups[dim] = g
        return g

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
    return Layout(tuple((k, sizes[k]) for k in dims))


def dimension_names(plans) -> tuple[str, ...]:
    """Every dimension any of `plans` has (e.g. a schedule's runs), in xDiT's order."""
    names = {k for p in plans for k in dimension_sizes(p)}
    return tuple(k for k in XDIT_ORDER if k in names)


def ordered_layout(plan: Plan, order: tuple[str, ...]) -> Layout:
    """The layout predict() takes for `plan` laid out in `order`: the plan's own layout;
    for a switching schedule, a layout that carries only the order (size-1 dimensions),
    in which each run lays out the dimensions it has (planner/cost/predict.py)."""
    if plan.segments:
        return Layout(tuple((k, 1) for k in order))
    return layout_for(plan, order)


def all_orders(plan: Plan):
    """Every order of the plan's dimensions (for the placement search)."""
    sizes = dimension_sizes(plan)
    for perm in itertools.permutations(sizes):
        yield Layout(tuple((k, sizes[k]) for k in perm))
