"""Pipeline stages by cost, with memory caps and unequal GPUs, as an integer program.

Cut the denoiser's blocks into P contiguous, non-empty stages minimising the slowest
stage. Stage s may run on its own GPU: block i costs cost[s][i] there (a per-stage cost
row, so an attention-heavy block can be relatively cheaper on one GPU than another), or
cost[i] / speed[s]. Each stage has memory caps: for every resource r,
sum of mem[r][i] over its blocks <= cap[r][s].

Formulation (cumulative assignment; Alpa's inter-op pass is a DP over the same choice):
    u[i,s] in {0,1}  block i lies in stage <= s        (u[i,P-1] = 1)
    u[i,s] <= u[i,s+1]                                   (cumulative in s)
    u[i+1,s] <= u[i,s]                                   (stages are contiguous, in order)
    x[i,s] = u[i,s] - u[i,s-1]                           (block i is in stage s)
    sum_i x[i,s] >= 1                                    (no empty stage)
    sum_i cost[s][i] x[i,s] <= T,  sum_i mem[r][i] x[i,s] <= cap[r][s]
    minimise T
The DP of planner/cost/partition.py is the fast path where it provably gives the same
answer: uniform stages whose uncapped optimum meets the caps (caps only remove cuts, so
that optimum is optimal). The integer program runs when a cap binds or the stages' GPUs
differ. It is warm-started with the capped DP's cuts and bounded below by the uncapped
optimum, so CBC usually closes the gap at the root; when its time limit stops it, the
best cuts and the gap are returned. (The DP with per-part masks is exact too, and the
tests check DP, integer program and brute force against each other.)
"""
from __future__ import annotations

import numpy as np
import pulp

from ..cost.partition import Partition, capped_cuts, cost_rows, meets_caps
from .solver import SolveError, new_var, solve, value

TIME_LIMIT = 2.0


def stage_times(rows: np.ndarray, cuts: list[slice]) -> list[float]:
    return [float(rows[s, c].sum()) for s, c in enumerate(cuts)]


def partition(costs, parts: int, speeds=None, mem=None, caps=None, time_limit: float = TIME_LIMIT,
              use_ilp: bool | None = None, warm: bool = True) -> Partition:
    """Contiguous stages minimising the slowest (see the module doc).

    costs: per block (1-D, with optional speeds) or per stage and block (2-D).
    mem: (resources x blocks) or 1-D; caps: (resources x parts) or 1-D.
    use_ilp: None = the integer program only where a cap binds or the stages' cost
    rows differ; True/False force it on/off. warm=False solves the integer program
    without the DP's start and bound (tests: the ILP must find the optimum alone).
    """
    rows = cost_rows(costs, parts, speeds)
    n = rows.shape[1]
    if not 1 <= parts <= n:
        raise ValueError(f"cannot cut {n} blocks into {parts} stages")
    free_slowest, free = capped_cuts(rows, parts)
    binds = not meets_caps(free, mem, caps)
    differ = bool(np.ptp(rows / rows.sum(axis=1, keepdims=True).clip(1e-300), axis=0).max() > 1e-12) \
        if parts > 1 else False
    if use_ilp is False or (use_ilp is None and not binds and not differ):
        if not binds:
            return Partition(free, free_slowest, "dp")
        slowest, cuts = capped_cuts(rows, parts, None, mem, caps)
        return Partition(cuts or free, slowest if cuts else free_slowest, "dp", feasible=cuts is not None)
    start = None
    if warm:
        _, start = capped_cuts(rows, parts, None, mem, caps)
        if start is None:   # the exact DP proves that no cut meets the caps
            return Partition(free, free_slowest, "dp", feasible=False)
    try:
        return _ilp(rows, parts, mem, caps, start, free_slowest if warm else 0.0, time_limit)
    except SolveError as e:
        slowest, cuts = capped_cuts(rows, parts, None, mem, caps)
        if e.infeasible or cuts is None:
            # no cut meets the caps: the uncapped optimum; the memory model marks the plan
            # as not fitting
            return Partition(free, free_slowest, "dp", feasible=False)
        return Partition(cuts, slowest, "dp")   # no integer solution in time: the exact DP's


def _ilp(rows: np.ndarray, parts: int, mem, caps, start, lower: float, time_limit) -> Partition:
    n = rows.shape[1]
    prob = pulp.LpProblem("stage_partition", pulp.LpMinimize)
    t = new_var(prob, "T", lowBound=0)
    u = {(i, s): new_var(prob, f"u_{i}_{s}", cat="Binary") for i in range(n) for s in range(parts - 1)}

    def cum(i, s):
        if s < 0:
            return 0
        return 1 if s == parts - 1 else u[i, s]

    def x(i, s):
        return cum(i, s) - cum(i, s - 1)

    prob += t
    for i in range(n):
        for s in range(parts - 2):
            prob += u[i, s] <= u[i, s + 1]
        if i + 1 < n:
            for s in range(parts - 1):
                prob += u[i + 1, s] <= u[i, s]
    m = None if mem is None else np.atleast_2d(np.asarray(mem, dtype=float))
    k = None if caps is None else np.atleast_2d(np.asarray(caps, dtype=float))
    for s in range(parts):
        prob += pulp.lpSum(x(i, s) for i in range(n)) >= 1
        prob += pulp.lpSum(float(rows[s, i]) * x(i, s) for i in range(n)) <= t
        if m is not None:
            for r in range(m.shape[0]):
                prob += pulp.lpSum(float(m[r, i]) * x(i, s) for i in range(n)) <= float(k[r, s])
    # the uncapped optimum (the DP's) bounds the capped one from below: caps only remove
    # cuts. Without it CBC's LP bound is weak (about the mean stage) and the proof is slow.
    prob += t >= lower * (1 - 1e-9)
    # conflict cuts: a stage holding blocks a and b holds everything between, so if that
    # span breaks a cap, or costs more than a known solution (the warm start), a and b
    # cannot share the stage. Only the nearest such b per a is needed. These make the
    # LP relaxation much tighter (its fractional stages can no longer average out).
    upper = max(stage_times(rows, start)) if start is not None else float("inf")
    pre = np.concatenate([np.zeros((parts, 1)), np.cumsum(rows, axis=1)], axis=1)
    mpre = None if m is None else np.concatenate([np.zeros((m.shape[0], 1)), np.cumsum(m, axis=1)], axis=1)
    for s in range(parts):
        for a in range(n):
            span = pre[s, a + 1:] - pre[s, a] > upper * (1 + 1e-9)
            if mpre is not None:
                span |= ((mpre[:, a + 1:] - mpre[:, a][:, None]) > k[:, s][:, None] * (1 + 1e-12)).any(axis=0)
            hit = np.flatnonzero(span)
            if len(hit):
                b = a + int(hit[0])          # blocks a..b together are too much
                prob += x(a, s) + x(b, s) <= 1
    if start is not None:   # the capped DP's cuts: a time limit still returns the optimum
        for (i, s), var in u.items():
            var.setInitialValue(1 if i < start[s].stop else 0)
        t.setInitialValue(max(stage_times(rows, start)))
    info = solve(prob, time_limit, "stage partition", warm_start=start is not None)
    stage = [next(s for s in range(parts) if value(x(i, s)) > 0.5) for i in range(n)]
    cuts, first = [], 0
    for s in range(parts):
        last = max((i for i in range(n) if stage[i] == s), default=first - 1) + 1
        cuts.append(slice(first, last))
        first = last
    return Partition(cuts, max(stage_times(rows, cuts)), "ilp", info)


def brute_force(costs, parts: int, speeds=None, mem=None, caps=None) -> tuple[float, list[slice]] | None:
    """Every way to cut (for tests on small instances): (slowest, cuts) or None."""
    import itertools
    rows = cost_rows(costs, parts, speeds)
    n = rows.shape[1]
    best = None
    for bounds in itertools.combinations(range(1, n), parts - 1):
        edges = (0,) + bounds + (n,)
        cuts = [slice(a, b) for a, b in zip(edges, edges[1:])]
        if not meets_caps(cuts, mem, caps):
            continue
        worst = max(stage_times(rows, cuts))
        if best is None or worst < best[0] - 1e-15:
            best = (worst, cuts)
    return best
