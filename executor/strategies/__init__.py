"""The executor's strategies: one module per plan key, named as in planner/strategies/.

Each module registers a Runner (runner.py) under its planner key as RUNNER (usp.py
registers Ulysses and Ring, which share one ctx, as RUNNERS); the registry finds them,
so a new strategy is its module alone. Three kinds, as in the planner:
- batch strategies (cfg, dp) choose which images and guidance branches a rank computes
  (runtime.Setup applies them);
- layer strategies (ulysses, ring, tp, sync_patch, distrifusion, naive_patch, dsp) give
  the ctx that layers call for attention, conv halos, group norms and all-reduces;
- loop strategies (pipefusion, asyncdiff, paradigms, parastep, hybridiff) own the
  denoising loop (planner Strategy.owns_loop); every other plan runs the blocks in order
  each step (serial.py's Layerwise).

    loop_for(plan)   the object that advances a segment's steps:
                     loop.model(setup) -> the rank's model    loop.run(setup, x, steps) -> latent
    layer_ctx(setup) the ctx of a plan that runs its blocks in order

A planner strategy without a runner, or a runner whose loop disagrees with the
planner's `owns_loop`, fails at import.
"""
from __future__ import annotations

import importlib
import pkgutil

from planner.plan import Plan
from planner.strategies import STRATEGIES as PLANNER_STRATEGIES

from . import cfg, dp, serial
from .runner import Runner


def _discover() -> dict[str, Runner]:
    found: dict[str, Runner] = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{m.name}")
        for r in (getattr(mod, "RUNNER", None), *getattr(mod, "RUNNERS", ())):
            if isinstance(r, Runner):
                if r.key in found:
                    raise ImportError(f"two executor runners for '{r.key}'")
                found[r.key] = r
    return found


RUNNERS: dict[str, Runner] = _discover()


def _check() -> None:
    missing = sorted(set(PLANNER_STRATEGIES) - set(RUNNERS))
    unknown = sorted(set(RUNNERS) - set(PLANNER_STRATEGIES))
    if missing or unknown:
        raise ImportError(f"executor runners must match the planner's strategies: no runner for {missing}, "
                          f"no planner strategy for {unknown}")
    for key, r in RUNNERS.items():
        owns = PLANNER_STRATEGIES[key].owns_loop or key == "serial"
        if owns != (r.loop is not None) or (r.loop is not None and r.ctx is not None):
            raise ImportError(f"executor runner '{key}': a loop exactly when the planner's strategy owns the "
                              f"denoising loop (owns_loop={owns}), and then no ctx")


_check()


def loop_for(plan: Plan):
    for key in plan.keys:
        if RUNNERS[key].loop is not None:
            return RUNNERS[key].loop()
    return serial.Layerwise()


def layer_ctx(setup):
    """The ctx of a plan that runs its blocks in order (no loop strategy): its layer
    strategy's (a legal plan has at most one, Ulysses and Ring sharing theirs), else the
    plain ctx with the plan's TP group."""
    for key in setup.plan.keys:
        if RUNNERS[key].ctx is not None:
            return RUNNERS[key].ctx(setup)
    return setup.rt.new_ctx(tp=setup.group("tp"))


__all__ = ["loop_for", "layer_ctx", "RUNNERS", "Runner", "cfg", "dp"]
