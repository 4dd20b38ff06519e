"""Strategy registry: one module per plan key, shared by name with the executor.

Everything that lists strategies is derived from here: the plan grammar's keys and their
printed order (the registry's order, the order of the published plan strings), the
modifiers and who owns them, xDiT's layout order (`layout_rank`), the keys that split the
latent, the compatibility of two strategies (one symmetric table below), the search's
caps and variants. Adding a strategy: its module, one line in REGISTRY and one row in
COMPATIBLE; a missing row fails at import.
"""
from __future__ import annotations

from .asyncdiff import AsyncDiff
from .base import Modifier, Strategy
from .cfg import CfgParallel
from .distrifusion import DistriFusion
from .dp import DataParallel
from .dsp import DynamicSequence
from .hybridiff import Hybridiff
from .naive_patch import NaivePatch
from .paradigms import ParaDiGMS
from .parastep import ParaStep
from .pipefusion import PipeFusion
from .ring import Ring
from .serial import Serial
from .sync_patch import SyncPatch
from .tp import TensorParallel
from .ulysses import Ulysses

# In the order plan strings print their keys.
REGISTRY: tuple[Strategy, ...] = (
    CfgParallel(), DataParallel(), PipeFusion(), Ulysses(), Ring(), TensorParallel(), DistriFusion(),
    SyncPatch(), NaivePatch(), AsyncDiff(), ParaDiGMS(), ParaStep(), Hybridiff(), DynamicSequence())
SERIAL = Serial()
STRATEGIES: dict[str, Strategy] = {"serial": SERIAL} | {s.key: s for s in REGISTRY}
DEGREE_KEYS: tuple[str, ...] = tuple(s.key for s in REGISTRY)

# Which strategies may share one plan. Symmetric: a pair is written once, in the row of
# the key that comes first in REGISTRY; every key has a row. dp and cfg replicate the
# model over independent samples, so they compose with every strategy (Hybridiff already
# owns the CFG split); the layer splits of xDiT's hybrid (PipeFusion, Ulysses, Ring, TP)
# compose with each other; the patch, step-level and pipeline-of-components methods
# each need the whole model or the whole step to themselves.
COMPATIBLE: dict[str, str] = {
    "cfg": "dp pipefusion ulysses ring tp distrifusion sync_patch naive_patch asyncdiff paradigms parastep dsp",
    "dp": "pipefusion ulysses ring tp distrifusion sync_patch naive_patch asyncdiff paradigms parastep "
          "hybridiff dsp",
    "pipefusion": "ulysses ring tp",
    "ulysses": "ring tp",
    "ring": "tp",
    "tp": "",
    "distrifusion": "",
    "sync_patch": "",
    "naive_patch": "",
    "asyncdiff": "",
    "paradigms": "",
    "parastep": "",
    "hybridiff": "",
    "dsp": "",
}


def _pairs() -> frozenset[frozenset[str]]:
    if set(COMPATIBLE) != set(DEGREE_KEYS):
        raise ImportError(f"planner.strategies.COMPATIBLE needs one row per strategy: "
                          f"missing {sorted(set(DEGREE_KEYS) - set(COMPATIBLE))}, "
                          f"unknown {sorted(set(COMPATIBLE) - set(DEGREE_KEYS))}")
    out = set()
    for a, row in COMPATIBLE.items():
        for b in row.split():
            pair = frozenset((a, b))
            if b not in STRATEGIES or a == b or pair in out or DEGREE_KEYS.index(b) < DEGREE_KEYS.index(a):
                raise ImportError(f"planner.strategies.COMPATIBLE: '{b}' in the row of '{a}' must be another "
                                  f"known key that comes later in REGISTRY, written once")
            out.add(pair)
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
if len({s.layout_rank for s in REGISTRY}) != len(REGISTRY):
    raise ImportError("every strategy needs its own layout_rank (planner/strategies/*.py)")
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
