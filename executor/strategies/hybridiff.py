"""hybridiff: condition-based partitioning with adaptive pipeline switching (Hybridiff).

Two ranks. Outside the window they run CFG parallel: rank 0 the conditional branch,
rank 1 the unconditional one, whole model each, and all-gather the two predictions.
Both track the gap between the branches, rel-MAE_t = mean|e_c - e_u| / mean|e_u|, and
open the window after the first step whose slope over the last L steps,
(M_t - M_{t-L}) / L, lies in [0, g) -- or at step tau_cap at the latest -- with the
paper's SDXL settings scaled to the step count (L = 12/50, g = 0.4e-3, tau_cap = 15/50
of the steps), never before `warmup` CFG steps and so that the k window steps fit.

Inside the window of k + 1 steps (tau1..tau1 + k inclusive, as Hybridiff's unet_forward;
k default 5, planner.strategies.hybridiff.window) the two ranks form an AsyncDiff-style two-stage
pipeline on the conditional branch only: rank 0 runs the first half of the blocks (the
cut planner.cost.predict chose) on the current latent, rank 1 the second half on rank
0's output from the previous step, with the conditioning vector of the current step.
Rank 0 broadcasts its boundary State, rank 1 the conditional prediction; the
unconditional prediction is the one of the last CFG step (this is how the planner
models the window). On entering the window rank 0 hands over its boundary State from
the last CFG step. In a step schedule (`cfg=2 | 3-7: hybridiff=2 k=5`, the planner's
schedule search places the window itself) the CFG segment before keeps that State and its
unconditional prediction at its last step (serial.Layerwise, `handover_cut`), and the
window opens at the segment's first step. Approximate.
"""
from __future__ import annotations

import time

from planner.strategies import STRATEGIES

from ..blocks import State
from ..sampler import guide
from .runner import Runner


def handover_cut(setup) -> int | None:
    """If the plan's next schedule segment is a Hybridiff window and this segment is plain
    CFG parallel on the same ranks, the block where the window cuts the model (the caller
    keeps its State there at its last step), else None."""
    nxt = setup.rt.next_plan
    if nxt is None or nxt.degree("hybridiff") != 2:
        return None
    dp = {"dp": nxt.degree("dp")} if nxt.degree("dp") > 1 else {}
    if dict(setup.plan.degrees) != {"cfg": 2} | dp or not setup.job.cfg:
        return None
    return setup.job.stages[str(nxt)][0][1]


def rel_mae(c, u) -> float:
    return float((c - u).abs().mean() / u.abs().mean().clamp_min(1e-30))


class Hybridiff:
    key = "hybridiff"

    def model(self, setup):
        return setup.rt.build_model()

    def window_opens(self, history: list[float], n: int, total: int, k: int, warm: int) -> bool:
        """After CFG step n (0-based), does the window start at step n + 1?"""
        span = max(2, round(0.24 * total))
        cap = max(1, round(0.3 * total))
        start = n + 1
        if start >= total - k:           # the last start that leaves room for the window
            return True
        if start < max(warm, 1) or len(history) <= span:
            return False
        slope = (history[-1] - history[-1 - span]) / span
        return 0.0 <= slope < 0.4e-3 or start >= cap

    def run(self, setup, x, steps):
        rt, comm, job = setup.rt, setup.rt.world.comm, setup.job
        g = setup.group("hybridiff")
        me = g.index
        steps = list(steps)
        k = STRATEGIES["hybridiff"].window(setup.plan, len(steps))
        warm = STRATEGIES["hybridiff"].warmup(setup.plan)
        (a0, b0), (a1, b1) = setup.stages
        ctx = rt.new_ctx()
        lat = setup.take(x, (0, rt.units))
        history, start, last_u, cut = [], None, None, None
        hand = rt.carry.pop("hybridiff", None)
        if hand is not None and hand["step"] == steps[0] - 1:
            # the CFG segment before this one ended with the handover: the window opens now
            start, cut, last_u = 0, hand["cut"], hand["uncond"]
        branch = ("cond",) if me == 0 else ("uncond",)
        times = []
        for n, i in enumerate(steps):
            times.append(time.perf_counter())
            in_window = start is not None and start <= n < start + k
            if not in_window:                                   # CFG parallel step
                s = setup.model(setup.inputs(lat, i, branch), ctx, a0, b0)
                cut = s.tensors()                               # rank 0: the handover; rank 1: shapes
                s = setup.model(s, ctx, a1, b1)
                both = comm.all_gather(s.x.float(), g)
                c, last_u = both[0], both[1]
                lat = rt.sched.step(lat, guide(c, last_u, job.guidance), i)
                history.append(rel_mae(c, last_u))
                # (a window needs at least one step left in this segment)
                if start is None and n + 1 < len(steps) and self.window_opens(history, n, len(steps), k, warm):
                    start = n + 1
                continue
            if n == start:                                      # switch: rank 0's State at the cut
                cut = comm.broadcast_tensors(cut, 0, g)
            inp = setup.inputs(lat, i, ("cond",))
            if me == 0:
                out = setup.model(inp, ctx, a0, b0).tensors()
                eps = [lat.to(rt.dtype)]                        # shape of the prediction to receive
            else:
                s = State.from_tensors(cut)
                s.c = setup.model.condition(inp.t, inp.pooled)
                eps = [setup.model(s, ctx, a1, b1).x]
                out = cut
            cut = comm.broadcast_tensors(out, 0, g)             # rank 1's input for the next step
            (e,) = comm.broadcast_tensors(eps, 1, g)
            lat = rt.sched.step(lat, guide(e.float(), last_u, job.guidance), i)
        if start is not None:
            rt.extra["hybridiff_window"] = [steps[start] + 1, steps[min(start + k, len(steps)) - 1] + 1]
            times.append(time.perf_counter())
            dur = [b - a for a, b in zip(times, times[1:])]
            win = dur[start:start + k]
            rest = dur[:start] + dur[start + k:]
            ms = {"window": round(1e3 * sum(win) / len(win), 1)}
            if rest:
                ms["cfg"] = round(1e3 * sum(rest) / len(rest), 1)
            rt.extra["hybridiff_step_ms"] = ms
        return setup.gather(lat)


RUNNER = Runner("hybridiff", loop=Hybridiff)
