"""parastep: reuse-then-predict step parallelism (ParaStep).

After `warmup` ordinary steps (planner default 1, at least 1: the first round needs a
noise prediction to reuse), each round gives the n ranks of the parastep group n
consecutive steps t..t+n-1. Rank k first reaches its step by reusing the previous
round's last noise prediction for k scheduler updates from x_t (no network call), then
predicts the noise at its step. The n predictions are all-gathered (the only traffic)
and the round advances x_t through its n steps with them, in order. Rank 0's prediction
is exact; the others start from approximate latents. Approximate.
"""
from __future__ import annotations

import torch

from planner.strategies import STRATEGIES
from .runner import Runner


class ParaStep:
    key = "parastep"

    def model(self, setup):
        return setup.rt.build_model()

    def run(self, setup, x, steps):
        rt, comm = setup.rt, setup.rt.world.comm
        g = setup.group("parastep")
        steps = list(steps)
        warm = min(max(1, STRATEGIES["parastep"].warmup(setup.plan)), len(steps))
        ctx = rt.new_ctx()
        lat = setup.take(x, (0, rt.units))
        prev = None
        for n in range(warm):
            prev = setup.guided(setup.model(setup.inputs(lat, steps[n]), ctx).x)
            lat = rt.sched.step(lat, prev, steps[n])
        n, rounds = warm, 0
        while n < len(steps):
            todo = steps[n:n + g.size]
            k = g.index
            if k < len(todo):
                xk = lat
                for i in todo[:k]:                   # reuse: k updates with the last prediction
                    xk = rt.sched.step(xk, prev, i)
                eps = setup.guided(setup.model(setup.inputs(xk, todo[k]), ctx).x)
            else:
                eps = torch.zeros_like(prev)
            preds = comm.all_gather(eps, g)
            for m, i in enumerate(todo):             # predict: advance with the fresh predictions
                lat = rt.sched.step(lat, preds[m], i)
            prev = preds[len(todo) - 1]
            n += len(todo)
            rounds += 1
        rt.extra["parastep_rounds"] = rounds
        return setup.gather(lat)


RUNNER = Runner("parastep", loop=ParaStep)
