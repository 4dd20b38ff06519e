"""parastep: reuse-then-predict step parallelism (ParaStep, NeurIPS'25).

Denoising steps are spread over the ranks: in each round every rank takes one step,
starting from the previous round's noise prediction (reused) and then re-predicting, so
a round advances n steps in one network evaluation. Only step-level noise tensors are
exchanged (an all-gather per round): the least traffic of any method. After `warmup`
ordinary steps (default 1). Approximate: errors grow in the early and late steps.
"""
from __future__ import annotations

import math

from ..timeline import Timeline, run_pass, summarise
from .base import WARMUP, Strategy
from .checks import stale_steps


class ParaStep(Strategy):
    key = "parastep"
    plan_rank = 11
    combines_with = "cfg dp"
    exact = False
    fidelity = "approx"
    splits = "denoising steps (reuse the last noise prediction, then re-predict)"
    default_warmup = 1
    layout_rank = 10
    modifiers = (WARMUP,)
    collectives = frozenset({"all_gather"})
    owns_loop = True

    def cap(self, model, sc):
        return sc.steps

    def round_steps(self, d, plan):
        return d

    def check(self, d, plan, model, sc):
        errs = stale_steps(plan, sc, "parastep", self.warmup(plan))
        if d > sc.steps:
            errs.append(f"parastep={d} exceeds the {sc.steps} steps")
        return errs

    def loop(self, d, eng, detail):
        sc, local = eng.sc, eng.local
        warm = min(self.warmup(eng.plan), sc.steps)
        costs = eng.block_costs()
        noise = eng.model.latent_elems() * local.batch * local.elem * d
        gather = eng.collective("all_gather", self.key, noise)
        _, cfg_b = eng.after_step()
        rounds = math.ceil((sc.steps - warm) / d)
        tl = Timeline(1, [f"each of {d} ranks"])
        units = []
        for step, count, label in ((0, warm, "warm-up step"), (1, rounds, "round")):
            if count:
                run_pass(tl, 0, costs, slice(None), eng.eta, label, step)
                if step:              # a round ends with the ranks' noise predictions all-gathered
                    tl.block(0, gather, label="noise all-gather", step=step, dim=self.key)
                for dim, secs in eng.after_step_dims().items():
                    tl.block(0, secs, label="noise-prediction gather", step=step, dim=dim)
                tl.host(0, eng.step_overhead(), step=step)
                units.append((step, count))
        return summarise(tl, units, warmup={0}, comm_bytes_per_step=noise + cfg_b,
                         notes=[f"{rounds} rounds of {d} steps after {warm} warm-up step(s)"])


STRATEGY = ParaStep()
