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

from ..timeline import COMPUTE, REDUNDANT, Timeline, run_pass, summarise
from .base import Strategy

# Total network evaluations over sequential ones (sources above). An assumption from
# published counts, not fitted: convergence depends on the sampler and tolerance.
PICARD_EVAL_RATIO = 2.0


def picard_iterations(steps: int, window: int) -> int:
    """Parallel iterations to converge `steps` with a window of `window` points."""
    return max(math.ceil(PICARD_EVAL_RATIO * steps / window), math.ceil(steps / window) + 1)


class ParaDiGMS(Strategy):
    key = "paradigms"
    plan_rank = 10
    combines_with = "cfg dp"
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
        drift = eng.model.latent_elems() * local.batch * local.elem * d   # gathered window
        gather = eng.collective("all_gather", self.key, drift)
        _, cfg_b = eng.after_step()
        iters = picard_iterations(sc.steps, d)
        # the sequential-equivalent iterations advance the trajectory; the extra Picard
        # iterations are redundant work (bubble: wasted evaluations)
        seq_equiv = math.ceil(sc.steps / d)
        tl = Timeline(1, [f"each of {d} window ranks"])
        units = []
        for step, count, part in ((0, seq_equiv, None), (1, iters - seq_equiv, REDUNDANT)):
            if count > 0:
                label = "Picard iteration" if part is None else "extra Picard iteration"
                if part is None:
                    run_pass(tl, 0, costs, slice(None), eng.eta, label, step)
                    tl.block(0, gather, label="drift all-gather", step=step, dim=self.key)
                    for dim, secs in eng.after_step_dims().items():
                        tl.block(0, secs, label="noise-prediction gather", step=step, dim=dim)
                else:
                    tl.add(0, COMPUTE, costs.pass_time(eta=eng.eta) + gather + eng.after_step()[0], label=label,
                           step=step, part=part)
                tl.host(0, eng.step_overhead(), label="window update", step=step)
                units.append((step, count))
        return summarise(tl, units, comm_bytes_per_step=drift + cfg_b,
                         notes=[f"{iters} Picard iterations of a {d}-step window "
                                f"(assumes {PICARD_EVAL_RATIO:g}x the sequential evaluations)"])


STRATEGY = ParaDiGMS()
