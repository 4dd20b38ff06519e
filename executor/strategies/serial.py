"""serial: the whole model on one rank, and the default step loop of every plan without a
schedule strategy (cfg, dp, ulysses, ring, tp, the patch methods, dsp and their mixes).

Layerwise runs each step as: the rank's slice of the latent through all blocks (the ctx
of the plan's layer strategies handles what crosses ranks), classifier-free guidance,
the scheduler update of the slice. Stale-activation methods (distrifusion) run their
first `warmup` steps synchronously. At the end the slices are gathered into the full
latent (the planner's "one all-gather of the latent at the end of denoising").
"""
from __future__ import annotations

from planner.strategies import warmup_steps

from . import hybridiff, tp
from .runner import Runner


class Layerwise:
    key = "serial"

    def model(self, setup):
        return tp.build_sharded(setup)

    def run(self, setup, x, steps):
        sched = setup.rt.sched
        ctx = setup.layer_ctx()
        units = setup.chunk(setup.seq.index, setup.seq.size)
        ctx.set_units(*units)
        xl = setup.take(x, units)
        warm = warmup_steps(setup.plan)
        cut = hybridiff.handover_cut(setup)
        for n, i in enumerate(steps):
            ctx.begin_step(warm=n < warm)
            if cut is not None and n == len(steps) - 1:
                # a Hybridiff window starts next step: keep the State at its cut
                s = setup.model(setup.inputs(xl, i), ctx, 0, cut)
                state = s.tensors()
                eps = setup.model(s, ctx, cut).x
            else:
                eps = setup.model(setup.inputs(xl, i), ctx).x
            xl = sched.step(xl, setup.guided(eps), i)
        if cut is not None:
            setup.rt.carry["hybridiff"] = {"step": steps[-1], "cut": state, "uncond": setup.last_uncond}
        ctx.finish()
        return setup.gather(xl)


RUNNER = Runner("serial", loop=Layerwise)   # also the loop of every plan no strategy owns
