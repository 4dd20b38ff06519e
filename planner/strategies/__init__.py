"""Strategy registry: one module per plan key, shared by name with the executor.

Each module of this package (but base.py and checks.py) defines one Strategy as
`STRATEGY`; the registry finds them, so a new strategy is its module alone. Everything
that lists strategies is derived from their traits: the plan grammar's keys and their
printed order (`plan_rank`, the order of the published plan strings), the modifiers and
who owns them, xDiT's layout order (`layout_rank`), the keys that split the latent, the
search's caps and variants. Compatibility is one symmetric relation (PAIRS), each pair
declared once, by the strategy later in plan order (`combines_with`); a bad declaration
fails at import.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import Modifier, Strategy


def _discover() -> dict[str, Strategy]:
    found: dict[str, Strategy] = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if m.name in ("base", "checks"):
            continue
        s = getattr(importlib.import_module(f"{__name__}.{m.name}"), "STRATEGY", None)
        if not isinstance(s, Strategy) or s.key != m.name:
            raise ImportError(f"planner/strategies/{m.name}.py must define STRATEGY, a Strategy with key "
                              f"'{m.name}'")
        found[s.key] = s
    return found


_FOUND = _discover()
SERIAL = _FOUND["serial"]
# In the order plan strings print their keys.
REGISTRY: tuple[Strategy, ...] = tuple(sorted((s for s in _FOUND.values() if s is not SERIAL),
                                              key=lambda s: s.plan_rank))
DEGREE_KEYS: tuple[str, ...] = tuple(s.key for s in REGISTRY)
STRATEGIES: dict[str, Strategy] = {"serial": SERIAL} | {s.key: s for s in REGISTRY}
for _trait in ("plan_rank", "layout_rank"):
    if len({getattr(s, _trait) for s in REGISTRY}) != len(REGISTRY):
        raise ImportError(f"every strategy needs its own {_trait} (planner/strategies/*.py)")


def _pairs() -> frozenset[frozenset[str]]:
    """Which strategies may share one plan: each strategy names the keys earlier in plan
    order that it composes with (Strategy.combines_with)."""
    out = set()
    for s in REGISTRY:
        for b in s.combines_with.split():
            if b not in STRATEGIES or b == "serial" or STRATEGIES[b].plan_rank >= s.plan_rank:
                raise ImportError(f"{s.key}.combines_with names '{b}': give known keys earlier in plan order "
                                  f"({', '.join(k for k in DEGREE_KEYS if STRATEGIES[k].plan_rank < s.plan_rank)})")
            out.add(frozenset((s.key, b)))
    return frozenset(out)


PAIRS = _pairs()


def compatible(a: str, b: str) -> bool:
    return frozenset((a, b)) in PAIRS


def _modifiers() -> dict[str, Modifier]:
    """Every modifier key with the strategies that own it, in the order plan strings print
    them (first owner's order, then declaration order)."""
    out: dict[str, Modifier] = {}
    for s in REGISTRY:
        for m in s.modifiers:
            known = out.get(m.key)
            if known is not None and known.minimum != m.minimum:
                raise ImportError(f"modifier '{m.key}' declared with two minimums")
            owners = (known.owners if known else ()) + (s.key,)
            out[m.key] = Modifier(m.key, m.minimum, owners)
    return out


MODIFIERS: dict[str, Modifier] = _modifiers()
# xDiT's fixed layout order, inner -> outer (planner/layout.py)
XDIT_ORDER: tuple[str, ...] = tuple(s.key for s in sorted(REGISTRY, key=lambda s: s.layout_rank))
# Keys that leave each rank with a part of the latent between steps (rows or frames)
LATENT_SPLIT_KEYS: tuple[str, ...] = tuple(s.key for s in REGISTRY if s.latent_split)


def loop_strategy(plan) -> Strategy | None:
    """The plan's strategy that owns the denoising loop (at most one in a legal plan)."""
    for k in plan.keys:
        if STRATEGIES[k].owns_loop:
            return STRATEGIES[k]
    return None


def warmup_steps(plan) -> int:
    """Synchronous warm-up steps the plan runs first: the longest of its strategies'."""
    return max((STRATEGIES[k].warmup(plan) for k in plan.keys), default=0)


def approx_steps(plan, steps: int) -> int:
    """Steps run by "approx"-fidelity strategies (see Strategy.fidelity)."""
    def one(p, n):
        return max((STRATEGIES[k].approx_steps(d, p, n) for k, d in p.degrees), default=0)
    if not plan.segments:
        return one(plan, steps)
    inside = sum(one(s.plan, s.steps) for s in plan.segments)
    outside = steps - sum(s.steps for s in plan.segments)
    return inside + (one(plan.base(), steps) * outside // steps if outside > 0 else 0)


def is_exact(plan) -> bool:
    return all(STRATEGIES[k].exact for p in plan.plans() for k in p.keys)


def is_recommendable(plan) -> bool:
    """No baseline (Strategy.recommend) in any of the plan's segments."""
    return all(STRATEGIES[k].recommend for p in plan.plans() for k in p.keys)


def row_slices(plan) -> int:
    """How many slices the latent rows are cut into at once (a pipeline's patches too)."""
    n = 1
    for k, d in plan.degrees:
        n *= STRATEGIES[k].row_slices(d, plan)
    return n


def latent_pieces(plan) -> int:
    """How many pieces (row slices or frame groups) one plan cuts the latent into at once."""
    n = row_slices(plan)
    for k, d in plan.degrees:
        if STRATEGIES[k].latent_split == "frames":
            n *= d
    return n


def samples_per_rank(plan, branches: int) -> float:
    """Samples (CFG branches x images) one rank evaluates per denoiser call."""
    split = 1
    for k, d in plan.degrees:
        split *= STRATEGIES[k].batch_split(d)
    return branches / split


def images_per_rank(plan, batch: int) -> float:
    """Images one rank holds at the end of the loop (and decodes)."""
    split = 1
    for k, d in plan.degrees:
        split *= STRATEGIES[k].image_split(d)
    return batch / split
