"""asyncdiff: asynchronous denoising (AsyncDiff, NeurIPS'24).

The denoiser is cut into N components of equal cost, one per device. After `warmup`
synchronous steps (default 3: the paper's SDXL N=3 S=2 setting), component n at step t
takes component n-1's output from step t-1, so all components run at once on
different timesteps. After every parallel round each device broadcasts its component's
output (with the U-Net skip tensors it hands on) to all devices. Stride S: one round
finishes S steps, using N+S-1 devices. Every device holds the whole model. Approximate.
"""
from __future__ import annotations

import math

from ..timeline import Timeline, run_pass, summarise
from .base import WARMUP, Modifier, Strategy
from .checks import stale_steps


class AsyncDiff(Strategy):
    key = "asyncdiff"
    plan_rank = 9
    combines_with = "cfg dp"
    exact = False
    fidelity = "approx"
    splits = "the denoiser into components on staggered timesteps"
    default_warmup = 3
    layout_rank = 8
    modifiers = (WARMUP, Modifier("stride"))
    collectives = frozenset({"broadcast"})
    owns_loop = True
    stage_cuts = True

    def cap(self, model, sc):
        return len(model.blocks)

    def variants(self, degrees):
        g = degrees[self.key]          # GPUs along the AsyncDiff dimension
        out = [{}] if g >= 2 else []
        if g >= 3:                     # stride 2: N components on N + 1 GPUs
            out.append({self.key: g - 1, "stride": 2})
        return out

    def gpus(self, d, plan):
        return d + int(plan.get("stride", 1)) - 1

    def round_steps(self, d, plan):
        return int(plan.get("stride", 1))

    def check(self, d, plan, model, sc):
        errs = []
        if d > len(model.blocks):
            errs.append(f"asyncdiff={d} needs at least {d} blocks; {model.id} has {len(model.blocks)}")
        if int(plan.get("stride", 1)) > d:
            errs.append(f"stride={plan.get('stride')} must not exceed the components (asyncdiff={d})")
        return errs + stale_steps(plan, sc, "asyncdiff", self.warmup(plan))

    def loop(self, d, eng, detail):

        sc, local = eng.sc, eng.local
        stride = int(eng.plan.get("stride", 1))
        warm = min(self.warmup(eng.plan), sc.steps)
        costs = eng.block_costs()
        # component i runs on its own GPU (mixed clusters); the cuts balance the
        # components' times (Engine.stage_cuts)
        parts = [e.block_costs() for e in eng.stage_engines(self.key)[:d]]
        cuts = eng.stage_cuts([p.compute for p in parts], self.key).cuts
        comp_t = [parts[i].pass_time(c) for i, c in enumerate(cuts)]
        other = eng.step_overhead()
        _, gather_b = eng.after_step()

        # each component's output (and the skips it passes on) goes to every device
        sizes = []
        for c in cuts:
            b = eng.model.blocks[c.stop - 1]
            sizes.append((b.tokens * b.hidden + b.skip_elems) * local.batch * local.elem)
        rounds = math.ceil((sc.steps - warm) / stride)

        n = d + stride - 1
        tl = Timeline(n, [f"component {min(r, d - 1)}" + (" (stride)" if r >= d else "") for r in range(n)])
        gathers = eng.after_step_dims()

        def everyone(t: float, secs: float, label: str, step: int, dim: str | None = None) -> float:
            """A collective (or the scheduler) on every device, after all reach `t`."""
            ends = [tl.block(r, secs, after=t, label=label, step=step, dim=dim) if dim else
                    tl.host(r, secs, after=t, label=label, step=step) for r in range(n)]
            return max(ends)

        def unit(step: int, label: str, pass_of) -> None:
            t = max(run_pass(tl, r, *pass_of(r), eng.eta, label, step) for r in range(n))
            if step:                      # a round ends with every component's output broadcast
                for i, size in enumerate(sizes):
                    t = everyone(t, eng.collective("broadcast", self.key, size), f"broadcast component {i}",
                                 step, self.key)
            for dim, secs in gathers.items():
                t = everyone(t, secs, "noise-prediction gather", step, dim)
            everyone(t, other, "scheduler", step)

        units = []
        if warm:
            unit(0, "warm-up (whole model)", lambda r: (costs, slice(None)))
            units.append((0, warm))
        if rounds:
            unit(1, "round", lambda r: (parts[min(r, d - 1)], cuts[min(r, d - 1)]))
            units.append((1, rounds))
        critical = max(range(n), key=lambda r: comp_t[min(r, d - 1)])
        per_step = rounds / sc.steps     # rounds per step of the schedule
        return summarise(tl, units, critical=critical, warmup={0}, comm_bytes_per_step=sum(sizes) / stride + gather_b,
                         cuts=cuts, notes=[f"{d} components by cost {[c.stop - c.start for c in cuts]} blocks, "
                                           f"{rounds} parallel rounds of {stride} step(s) after {warm} warm-up steps"
                                           f" ({per_step:.2f} rounds per step)"])


STRATEGY = AsyncDiff()
