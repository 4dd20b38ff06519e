"""paradigms: Picard iterations over a sliding window of timesteps (ParaDiGMS).

The sampler is a fixed-point problem: x_{j+1} = x_j + drift_j(x_j), with drift_j(x) =
step_j(x, eps(x, t_j)) - x. The whole trajectory starts as a guess (every point = the
initial noise). Each Picard iteration evaluates the drifts of the p window points
[s, s+p) at once, one per rank of the paradigms group, all-gathers them, and rewrites
the window as x_{s+m+1} = x_s + sum_{l<=m} drift_{s+l}. A point has converged when that
rewrite moved it by at most `tolerance` (relative L2 norm, Job.tolerance); x_{s+1} is
always exact, and so is every point after a run of converged ones, so the window slides
past them: s <- s + 1 + (leading converged points). Points entering the window start
from the last window point. With tolerance 0 the result is the serial trajectory (up to
the rounding of the sums); a larger tolerance trades fidelity for fewer iterations.
"""
from __future__ import annotations

import torch
from .runner import Runner


class ParaDiGMS:
    key = "paradigms"

    def model(self, setup):
        return setup.rt.build_model()

    def run(self, setup, x, steps):
        rt, comm = setup.rt, setup.rt.world.comm
        g = setup.group("paradigms")
        steps = list(steps)
        total, tol = len(steps), setup.job.tolerance
        ctx = rt.new_ctx()
        start = setup.take(x, (0, rt.units))
        xs = [start] + [start.clone() for _ in range(total)]    # x_0 .. x_T (x_j: before step j)
        s, iters, evals = 0, 0, 0
        while s < total:
            end = min(s + g.size, total)
            j = s + g.index
            if j < end:
                eps = setup.guided(setup.model(setup.inputs(xs[j], steps[j]), ctx).x)
                drift = rt.sched.step(xs[j], eps, steps[j]) - xs[j]
            else:                                               # the window is shorter than the group
                drift = torch.zeros_like(start)
            drifts = comm.all_gather(drift, g)
            iters += 1
            evals += end - s
            acc, converged, moving = xs[s], 0, False
            for m in range(end - s):
                acc = acc + drifts[m]
                err = float((acc - xs[s + m + 1]).norm() / acc.norm().clamp_min(1e-30))
                if not moving and err <= tol and m + 1 < end - s:
                    converged += 1
                else:
                    moving = True
                xs[s + m + 1] = acc
            new_s = min(s + 1 + converged, total)
            for k in range(end + 1, min(new_s + g.size, total) + 1):   # fresh window points
                xs[k] = xs[end].clone()
            s = new_s
        rt.extra["paradigms_iterations"] = iters
        rt.extra["paradigms_evaluations_per_rank"] = iters
        rt.extra["paradigms_window_evaluations"] = evals
        return setup.gather(xs[total])


RUNNER = Runner("paradigms", loop=ParaDiGMS)
