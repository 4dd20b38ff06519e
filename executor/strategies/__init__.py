"""The executor's strategies: one module per plan key, named as in planner/strategies/.

Three kinds, as in the planner:
- batch strategies (cfg, dp) choose which images and guidance branches a rank computes;
- layer strategies (ulysses, ring, tp, sync_patch, distrifusion, naive_patch, dsp; usp.py
  composes ulysses with ring) give the ctx that layers call for attention, conv halos,
  group norms and all-reduces;
- schedule strategies (pipefusion, asyncdiff, paradigms, parastep, hybridiff) own the
  step loop ("driver" in planner/strategies/base.py); every other plan runs the blocks
  in order each step (serial.py's Layerwise).

`driver_for(plan)` returns the object that advances a segment's steps:
    driver.model(setup) -> the rank's model     driver.run(setup, x, steps) -> latent
"""
from __future__ import annotations

from planner.plan import Plan
from planner.strategies import STRATEGIES as PLANNER_STRATEGIES

from . import (asyncdiff, cfg, distrifusion, dp, dsp, hybridiff, naive_patch, paradigms, parastep, pipefusion, ring,
               serial, sync_patch, tp, ulysses, usp)

# plan key -> module; the same keys as the planner's registry (tests check it)
MODULES = {"serial": serial, "cfg": cfg, "dp": dp, "ulysses": ulysses, "ring": ring, "tp": tp,
           "pipefusion": pipefusion, "distrifusion": distrifusion, "sync_patch": sync_patch,
           "naive_patch": naive_patch, "asyncdiff": asyncdiff, "paradigms": paradigms, "parastep": parastep,
           "hybridiff": hybridiff, "dsp": dsp}

DRIVERS = {"pipefusion": pipefusion.PipeFusion, "asyncdiff": asyncdiff.AsyncDiff, "paradigms": paradigms.ParaDiGMS,
           "parastep": parastep.ParaStep, "hybridiff": hybridiff.Hybridiff}

assert set(MODULES) == set(PLANNER_STRATEGIES), "executor and planner strategies must share their keys"


def driver_for(plan: Plan):
    for key in plan.keys:
        if key in DRIVERS:
            return DRIVERS[key]()
    return serial.Layerwise()


def layer_ctx(setup):
    """The ctx of a plan that runs its blocks in order (no schedule strategy)."""
    p = setup.plan
    tp_group = setup.group("tp")
    if p.degree("dsp") > 1:
        return dsp.ctx(setup)
    for key, mod in (("distrifusion", distrifusion), ("sync_patch", sync_patch), ("naive_patch", naive_patch)):
        if p.degree(key) > 1:
            return mod.ctx(setup)
    if p.degree("ulysses") > 1 or p.degree("ring") > 1:
        return usp.ctx(setup)
    return setup.rt.new_ctx(tp=tp_group)


__all__ = ["driver_for", "layer_ctx", "MODULES", "DRIVERS", "usp"]
