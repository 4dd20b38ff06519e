"""parastep: reuse-then-predict step parallelism (ParaStep, NeurIPS'25).

Denoising steps are spread over the ranks: in each round every rank takes one step,
starting from the previous round's noise prediction (reused) and then re-predicting, so
a round advances n steps in one network evaluation. Only step-level noise tensors are
exchanged (an all-gather per round): the least traffic of any method. After `warmup`
ordinary steps (default 1). Approximate: errors grow in the early and late steps.
"""
from __future__ import annotations

import math

from ..timeline import COMM, COMPUTE, LoopTime, Timeline
from .base import WARMUP, Strategy
from .checks import stale_steps


class ParaStep(Strategy):
    key = "parastep"
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
        eval_t = eng.block_costs().pass_time()
        noise = eng.model.latent_elems() * local.batch * local.elem * d
        gather = eng.collective("all_gather", self.key, noise)
        cfg_s, cfg_b = eng.after_step()
        other = eng.step_overhead()
        rounds = math.ceil((sc.steps - warm) / d)
        round_t = eval_t + gather + cfg_s + other
        total = warm * (eval_t + cfg_s + other) + rounds * round_t
        tl = None
        if detail:
            tl = Timeline(1, [f"each of {d} ranks"])
            for k in range(min(warm + rounds, warm + 2)):
                end = tl.add(0, COMPUTE, eval_t, label="warm-up step" if k < warm else f"round {k - warm}", step=k)
                if k >= warm:
                    end = tl.add(0, COMM, gather + cfg_s, after=end, label="noise all-gather", step=k)
                tl.wait(0, end)
                tl.add(0, COMPUTE, other, label="scheduler", step=k)
        return LoopTime(total, round_t, eval_t * rounds, (gather + cfg_s) * rounds, other * (rounds + warm),
                       noise + cfg_b, tl, notes=[f"{rounds} rounds of {d} steps after {warm} warm-up step(s)"])
