"""Unequal GPUs as integer programs: token splits by speed (the cost model's
planner/cost/hetero.py states the problem and solves it greedily; this is the program
the search injects), and STADI's step allocation.

- split_rows: integer rows per rank minimising the slowest rank,
      r_i in Z, r_i >= 1, sum_i r_i = R;  a_i + b_i r_i / R <= T;  minimise T
  (CBC; greedy_rows when CBC finds nothing in time, which is optimal as well).
- allocate_steps (STADI's temporal part): after warm-up a GPU that refreshes its patch
  only every k-th step does 1/k of the work; choose k_r in {1..k_max} and rows r_r to
  balance time per step. Approximate (stale patches), so it is reported as an option
  and never costed into a plan.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import pulp

from ..cost.engine import Engine, Solvers
from ..cost.hetero import RowSplit, TokenSplit, greedy_rows
from ..layout import layout_for
from .solver import SolveError, new_var, solve, value

TIME_LIMIT = 2.0


def split_rows(a, b, total: int, time_limit: float = TIME_LIMIT) -> RowSplit:
    """Integer rows per rank minimising the slowest rank: time_i = a[i] + b[i] * rows_i / total."""
    n = len(a)
    if total < n:
        raise ValueError(f"{total} rows cannot give each of {n} ranks at least one")
    prob = pulp.LpProblem("token_split", pulp.LpMinimize)
    r = [new_var(prob, f"r_{i}", lowBound=1, upBound=total, cat="Integer") for i in range(n)]
    t = new_var(prob, "T")
    prob += t
    prob += pulp.lpSum(r) == total
    for i in range(n):
        prob += float(a[i]) + float(b[i]) / total * r[i] <= t
    try:
        info = solve(prob, time_limit, "token split")
    except SolveError:
        return greedy_rows(a, b, total)
    rows = tuple(int(round(value(v))) for v in r)
    return RowSplit(rows, max(a[i] + b[i] * rows[i] / total for i in range(n)), info)


def brute_rows(a, b, total: int) -> tuple[float, tuple[int, ...]]:
    """Every split (tests, small instances)."""
    n, best = len(a), None
    for cut in itertools.combinations(range(1, total), n - 1):
        edges = (0,) + cut + (total,)
        rows = tuple(y - x for x, y in zip(edges, edges[1:]))
        worst = max(a[i] + b[i] * rows[i] / total for i in range(n))
        if best is None or worst < best[0] - 1e-15:
            best = (worst, rows)
    return best


def allocate_steps(speeds, rows_total: int, steps: int, k_max: int = 4,
                   time_limit: float = TIME_LIMIT) -> dict:
    """STADI-style temporal + spatial allocation for a patch-parallel group. After warm-up,
    GPU i refreshes its r_i rows every k_i-th step: slower GPUs run fewer steps, in
    proportion to speed (k_i <= round(fastest speed / speed_i), so the fastest GPUs run
    every step), with k_i dividing k_max (sync points line up: STADI keeps the least
    common multiple small). Rows then balance the time per step:
        z[i,k] in {0,1}, sum_k z[i,k] = 1;  w[i,k] in Z, z[i,k] <= w[i,k] <= R z[i,k]
        sum w = R;  sum_k w[i,k] / (k speed_i) <= T;  minimise T, then prefer small k
    Returns {"stride": [...], "rows": [...], "time_per_step": ...} (time in rows per unit
    speed), or {} when infeasible."""
    n = len(speeds)
    fastest = max(speeds)
    ks = [k for k in range(1, k_max + 1) if k_max % k == 0]
    prob = pulp.LpProblem("step_allocation", pulp.LpMinimize)
    allowed = {i: [k for k in ks if k <= max(1, round(fastest / speeds[i]))] for i in range(n)}
    z = {(i, k): new_var(prob, f"z_{i}_{k}", cat="Binary") for i in range(n) for k in allowed[i]}
    w = {(i, k): new_var(prob, f"w_{i}_{k}", lowBound=0, cat="Integer") for i in range(n) for k in allowed[i]}
    t = new_var(prob, "T")
    # the second term (tiny) prefers refreshing more often when the time is equal
    prob += t + 1e-6 / rows_total * pulp.lpSum(k * v for (i, k), v in z.items())
    prob += pulp.lpSum(w.values()) == rows_total
    for i in range(n):
        prob += pulp.lpSum(z[i, k] for k in allowed[i]) == 1
        for k in allowed[i]:
            prob += w[i, k] <= rows_total * z[i, k]
            prob += w[i, k] >= z[i, k]
        prob += pulp.lpSum(w[i, k] * (1.0 / (k * speeds[i])) for k in allowed[i]) <= t
    try:
        info = solve(prob, time_limit, "step allocation")
    except SolveError:
        return {}
    stride = [next(k for k in allowed[i] if value(z[i, k]) > 0.5) for i in range(n)]
    rows = [int(round(sum(value(w[i, k]) for k in allowed[i]))) for i in range(n)]
    return {"stride": stride, "rows": rows, "time_per_step": max(r / (k * s) for r, k, s in zip(rows, stride, speeds)),
            "steps": steps, "solver": info.to_dict()}


@dataclass
class HeteroSplit:
    """A plan's unequal splits on mixed GPUs: rows per rank of every token group (None when
    the plan splits no tokens), and a STADI-style step allocation for the first group."""

    gpus: tuple[str, ...]
    token_split: TokenSplit | None = None
    step_allocation: dict | None = None

    def to_dict(self) -> dict:
        out: dict = {"gpus": list(self.gpus)}
        if self.token_split is not None:
            out["token_split"] = self.token_split.to_dict()
            out["stadi_step_allocation"] = self.step_allocation
        return out


def hetero_split(plan, model, sc, cluster, profile, order: tuple[str, ...] = (),
                 solvers: Solvers | None = None) -> HeteroSplit | None:
    """The plan's HeteroSplit on a mixed cluster (its base plan's), None on uniform GPUs."""
    if cluster.uniform or plan is None:
        return None
    base = plan.base()
    eng = Engine(model, sc, cluster, profile, base, layout_for(base, tuple(order)),
                 solvers or Solvers(split_rows=split_rows))
    out = HeteroSplit(tuple(g.id for g in cluster.gpus))
    if eng.split is not None:
        grp = eng.split.groups[0]
        speeds = [cluster.gpus[r].peak(sc.dtype) / 1e12 for r in grp]
        out.token_split = eng.split
        out.step_allocation = allocate_steps(speeds, eng.split.rows_total, sc.steps)
    return out
