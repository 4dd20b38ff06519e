"""Strategy registry: one module per plan key, shared by name with the executor."""
from __future__ import annotations

from .asyncdiff import AsyncDiff
from .base import Strategy
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

STRATEGIES: dict[str, Strategy] = {s.key: s for s in (
    Serial(), DataParallel(), CfgParallel(), Ulysses(), Ring(), TensorParallel(), PipeFusion(),
    DistriFusion(), SyncPatch(), NaivePatch(), AsyncDiff(), ParaDiGMS(), ParaStep(), Hybridiff(),
    DynamicSequence())}


def scheduling_strategy(plan) -> Strategy | None:
    """The plan's strategy that owns the step schedule (at most one; see combines_with)."""
    for k in plan.keys:
        if STRATEGIES[k].driver:
            return STRATEGIES[k]
    return None


def warmup_steps(plan) -> int:
    """Synchronous warm-up steps the plan runs first: the longest of its strategies'."""
    return max((STRATEGIES[k].warmup(plan) for k in plan.keys), default=0)


def approx_steps(plan, steps: int) -> int:
    """Steps run by "approx"-fidelity strategies (see Strategy.fidelity)."""
    def one(p, n):
        return max((STRATEGIES[k].approx_steps(d, p, n) for k, d in p.degrees), default=0)
    if not plan.schedule:
        return one(plan, steps)
    inside = sum(one(s.plan, s.last - s.first + 1) for s in plan.schedule)
    outside = steps - sum(s.last - s.first + 1 for s in plan.schedule)
    return inside + (one(plan.base(), steps) * outside // steps if outside > 0 else 0)


def is_exact(plan) -> bool:
    return all(STRATEGIES[k].exact for p in plan.plans() for k in p.keys)
