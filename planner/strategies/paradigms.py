"""paradigms: Picard-iteration timestep parallelism (ParaDiGMS, NeurIPS'23).

The whole trajectory is guessed, then a sliding window of p timesteps is refined in
parallel: each Picard iteration evaluates the p window points at once (one per GPU here)
and all-gathers their drifts; the window slides past the points that have converged.
Converging takes more evaluations than sequential sampling: about 2x in total
(ParaDiGMS: 2040 evaluations vs 1000 for SD-v2 DDPM; DistriFusion measured 657T vs
338T MACs for SDXL, 50 steps, window 8), so a window of p gives at most ~p/2x.
Tolerance-controlled, but approximate at any tolerance that gives a speed-up: DistriFusion
measured FID w/ original 10.8 for SDXL (Table 1), worse than its own displaced patches; so
its steps count against the --approx-steps budget.
"""
from __future__ import annotations

import math

from ..timeline import COMM, COMPUTE, LoopTime, Timeline
from .base import Strategy

# Total network evaluations over sequential ones (sources above). An assumption from
# published counts, not fitted: convergence depends on the sampler and tolerance.
PICARD_EVAL_RATIO = 2.0


def picard_iterations(steps: int, window: int) -> int:
    """Parallel iterations to converge `steps` with a window of `window` points."""
    return max(math.ceil(PICARD_EVAL_RATIO * steps / window), math.ceil(steps / window) + 1)


class ParaDiGMS(Strategy):
    key = "paradigms"
    exact = False
    fidelity = "approx"
    splits = "timesteps (a window refined by Picard iterations)"
    layout_rank = 11
    collectives = frozenset({"all_gather"})
    owns_loop = True
    in_segments = False       # the Picard window spans the whole trajectory

    def cap(self, model, sc):
        return sc.steps

    def check(self, d, plan, model, sc):
        if d > sc.steps:
            return [f"paradigms={d}: the window cannot exceed the {sc.steps} steps"]
        return []

    def loop(self, d, eng, detail):

        sc, local = eng.sc, eng.local
        costs = eng.block_costs()
        eval_t = costs.pass_time()
        drift = eng.model.latent_elems() * local.batch * local.elem * d   # gathered window
        gather = eng.collective("all_gather", self.key, drift)
        cfg_s, cfg_b = eng.after_step()
        other = eng.step_overhead()
        iters = picard_iterations(sc.steps, d)
        it_t = eval_t + gather + cfg_s + other
        tl = None
        if detail:
            tl = Timeline(1, [f"each of {d} window ranks"])
            for k in range(min(iters, 3)):
                end = tl.add(0, COMPUTE, eval_t, label=f"Picard iteration {k}", step=k)
                end = tl.add(0, COMM, gather + cfg_s, after=end, label="drift all-gather", step=k)
                tl.wait(0, end)
                tl.add(0, COMPUTE, other, label="window update", step=k)
        # steady state counted as the sequential-equivalent work; the extra Picard
        # iterations show up as bubble (wasted evaluations)
        seq_equiv = math.ceil(sc.steps / d)
        return LoopTime(iters * it_t, it_t, eval_t * seq_equiv, (gather + cfg_s) * seq_equiv, other * iters,
                       drift + cfg_b, tl,
                       notes=[f"{iters} Picard iterations of a {d}-step window "
                              f"(assumes {PICARD_EVAL_RATIO:g}x the sequential evaluations)"])
