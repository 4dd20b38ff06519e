"""asyncdiff: asynchronous denoising (AsyncDiff).

The blocks are cut into N components (the cost-balanced cuts of planner.cost.predict,
in Job.stages); every rank of the asyncdiff group holds the whole model. The first
`warmup` steps (planner default 3, at least 1: the components need inputs) run the whole
model on every rank, which leaves each rank with every component's output. Then each
parallel round runs all components at once on staggered inputs:

    component 0        the current latent at the round's first step
    component c > 0    component c-1's output from the previous round, with the
                       conditioning vector refreshed for the current timestep

and broadcasts every component's output (with the U-Net skips it carries) to the whole
group. The last component's output is the noise prediction that advances the latent.

Stride S uses N+S-1 ranks: ranks N-1 .. N+S-2 all run the last component, from the same
input, for the S consecutive steps of the round, so one round advances S steps (the
early components run once per round). Approximate.
"""
from __future__ import annotations

from planner.strategies import STRATEGIES

from ..blocks import State
from .runner import Runner


class AsyncDiff:
    key = "asyncdiff"

    def model(self, setup):
        return setup.rt.build_model()

    def run(self, setup, x, steps):
        rt, comm = setup.rt, setup.rt.world.comm
        g = setup.group("asyncdiff")
        comps = setup.stages
        ncomp, stride = len(comps), int(setup.plan.get("stride", 1))
        steps = list(steps)
        warm = min(max(1, STRATEGIES["asyncdiff"].warmup(setup.plan)), len(steps))
        ctx = rt.new_ctx()
        lat = setup.take(x, (0, rt.units))
        hidden: list = [None] * (ncomp - 1)        # each component's latest output (State tensors)

        for n in range(warm):                      # the whole model on every rank
            s = setup.inputs(lat, steps[n])
            for c, (a, b) in enumerate(comps):
                s = setup.model(s, ctx, a, b)
                if c < ncomp - 1:
                    hidden[c] = s.tensors()
            lat = rt.sched.step(lat, setup.guided(s.x), steps[n])

        n, rounds = warm, 0
        comp = min(g.index, ncomp - 1)             # which component this rank runs
        offset = g.index - comp                    # last component: which step of the round
        while n < len(steps):
            todo = steps[n:n + stride]
            inp = setup.inputs(lat, todo[0])
            out = None
            if comp == 0:
                out = setup.model(inp, ctx, *comps[0]).tensors()
            elif offset < len(todo):
                s = State.from_tensors(hidden[comp - 1])
                t = inp.t if comp < ncomp - 1 else setup.inputs(lat, todo[offset]).t
                s.c = setup.model.condition(t, inp.pooled)
                out = setup.model(s, ctx, *comps[comp]).tensors()
            # every rank's output to every rank: components 0..N-2, then the S predictions
            eps = []
            for src in range(g.size):
                c = min(src, ncomp - 1)
                if c == ncomp - 1 and src - c >= len(todo):
                    continue
                if c < ncomp - 1:
                    template = out if src == g.index else hidden[c]
                    hidden[c] = comm.broadcast_tensors(template, src, g)
                else:
                    template = out if src == g.index else [lat.to(rt.dtype).repeat(len(setup.branches), *[1] * (lat.dim() - 1))]
                    eps += comm.broadcast_tensors(template[:1], src, g)
            for e, i in zip(eps, todo):
                lat = rt.sched.step(lat, setup.guided(e), i)
            n += len(todo)
            rounds += 1
        rt.extra["asyncdiff_rounds"] = rounds
        rt.extra["asyncdiff_warmup_steps"] = warm
        return setup.gather(lat)


RUNNER = Runner("asyncdiff", loop=AsyncDiff)
