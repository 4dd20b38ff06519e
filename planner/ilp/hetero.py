"""Unequal GPUs: split tokens by speed, give pipeline stages their own GPU's costs, and
allocate steps by speed (STADI's two ideas, as integer programs).

Without this the cost engine runs every rank at the pace of the slowest GPU. Here:

- Token split (sequence/patch parallel: ulysses, ring, distrifusion, sync_patch,
  naive_patch, dsp). The ranks that share one sample's tokens (a *token group*) get
  whole latent rows in proportion to speed, as STADI's "elastic" patches do. A rank of
  GPU type g holding r of the group's R rows computes a block in a_g + b_g r/R seconds
  (fitted on the cost model at the even share and half of it: token-wise ops and Ring's
  attention scale with the rows, Ulysses' head-split attention does not). Program:
      r_i in Z, r_i >= 1, sum_i r_i = R;  a_g(i) + b_g(i) r_i / R <= T;  minimise T
  Every layer synchronises the group (all-to-all or ring steps), so each block takes the
  slowest rank's time: the engine's block costs become the maximum over the ranks'
  (Engine.block_costs calls TokenSplit.block_compute). Traffic stays the even split's.
- Pipeline stages (pipefusion, asyncdiff): stage s runs on the slowest GPU at position
  s of its groups; `stage_engines` gives each stage an engine on that GPU, and the cuts
  come from planner/ilp/partition.py with one cost row per stage.
- Step allocation (`allocate_steps`, STADI's temporal part): after warm-up a GPU that
  refreshes its patch only every k-th step does 1/k of the work; choose k_r in
  {1..k_max} and rows r_r to balance time per step. Approximate (stale patches), so it
  is reported as an option and never costed into a plan.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pulp

from ..cost import compute
from ..strategies.base import Shard
from .solver import SolveError, SolveInfo, new_var, solve, value

TIME_LIMIT = 2.0
_SPLITS: dict = {}


@dataclass(frozen=True)
class RowSplit:
    rows: tuple[int, ...]          # per rank of the group, in rank order
    time: float                    # the slowest rank's predicted time (the objective)
    info: SolveInfo | None = None


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


def greedy_rows(a, b, total: int) -> RowSplit:
    """Fallback when CBC finds nothing in time: one row each, then every further row to
    the rank that would finish it first (optimal for unit jobs on machines with affine
    times, so the answer is the program's optimum as well)."""
    n = len(a)
    rows = [1] * n
    for _ in range(total - n):
        i = min(range(n), key=lambda j: (a[j] + b[j] * (rows[j] + 1) / total, j))
        rows[i] += 1
    return RowSplit(tuple(rows), max(a[i] + b[i] * rows[i] / total for i in range(n)), None)


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


def token_groups(layout, keys) -> list[tuple[int, ...]]:
    """Ranks sharing one sample's tokens: equal coordinates on every other dimension."""
    groups: dict[tuple, list[int]] = {}
    for r in range(layout.ranks):
        c = layout.coords(r)
        groups.setdefault(tuple(v for k, v in c.items() if k not in keys), []).append(r)
    return [tuple(g) for g in groups.values()]


class TokenSplit:
    """Per-rank row shares of the token groups, and block costs at those shares."""

    def __init__(self, groups, gpus, rows_total: int, splits: list[RowSplit], seq_degree: int):
        self.groups, self.gpus, self.rows_total = groups, gpus, rows_total
        self.splits, self.seq_degree = splits, seq_degree
        # distinct (GPU, rows) classes: the ranks whose costs must be evaluated
        self.classes = sorted({(gpus[r].id, rows) for g, s in zip(groups, splits) for r, rows in zip(g, s.rows)})
        self._gpu = {gpus[r].id: gpus[r] for g in groups for r in g}

    def to_dict(self) -> dict:
        return {"rows_total": self.rows_total,
                "groups": [{"ranks": list(g), "gpus": [self.gpus[r].id for r in g], "rows": list(s.rows)}
                           for g, s in zip(self.groups, self.splits)]}

    def block_compute(self, eng, local) -> tuple[np.ndarray, np.ndarray]:
        """Per-block compute and self-attention time: the slowest rank's, per block."""
        comp = attn = None
        for gid, rows in self.classes:
            times = _times(eng, local, self._gpu[gid], rows / self.rows_total * self.seq_degree)
            c = compute.per_block(eng.table, times)
            s = compute.per_block(eng.table, np.where(eng.table.self_attn, times, 0.0))
            comp = c if comp is None else np.maximum(comp, c)
            attn = s if attn is None else np.maximum(attn, s)
        return comp, attn


def _times(eng, local, gpu, share: float) -> np.ndarray:
    """Op times on `gpu` when the rank holds `share` x the even share of the tokens."""
    sh = local.shard
    q = sh.q / share if sh.q > 1 else sh.q
    scaled = Shard(sh.seq / share, q, sh.kv, sh.heads, sh.features, sh.groups)
    return compute.op_times(eng.table, scaled, local.tp, local.batch, local.elem, eng.sc.dtype, gpu,
                            eng.profile, eng.sc.compiled)


def token_split(eng) -> TokenSplit | None:
    """Unequal token shares for a layer-wise plan on mixed GPUs, or None (uniform GPUs
    in every token group, no token-splitting dimension, or a pipeline/step schedule)."""
    from ..strategies import LATENT_SPLIT_KEYS, loop_strategy
    plan = eng.plan
    keys = tuple(k for k in LATENT_SPLIT_KEYS if plan.degree(k) > 1)
    if not keys or loop_strategy(plan) is not None:
        return None
    groups = token_groups(eng.layout, keys)
    gpus = eng.cluster.gpus
    if all(len({gpus[r].id for r in g}) == 1 for g in groups):
        return None
    seq_degree = 1
    for k in keys:
        seq_degree *= plan.degree(k)
    rows_total = eng.model.latent_rows()
    fits = {}
    for g in {gpus[r].id: gpus[r] for grp in groups for r in grp}.values():
        full = float(_times(eng, eng.local, g, 1.0).sum())
        half = float(_times(eng, eng.local, g, 0.5).sum())
        b = 2.0 * (full - half)                  # per even share of rows
        fits[g.id] = (full - b, b * seq_degree)  # a, and b per whole group's rows
    splits = []
    for grp in groups:
        key = (tuple(gpus[r].id for r in grp), rows_total, tuple(sorted(fits.items())))
        if key not in _SPLITS:
            a = [fits[gpus[r].id][0] for r in grp]
            b = [fits[gpus[r].id][1] for r in grp]
            _SPLITS[key] = split_rows(a, b, rows_total)
        splits.append(_SPLITS[key])
    return TokenSplit(groups, gpus, rows_total, splits, seq_degree)


def stage_engines(eng, key: str) -> list:
    """One engine per pipeline stage of dimension `key`, on the slowest GPU at that
    stage's position in its groups (the same engine for all stages on uniform GPUs)."""
    groups = eng.layout.groups(key)
    gpus = eng.cluster.gpus
    size = len(groups[0])
    per_stage = [min((gpus[g[s]] for g in groups), key=lambda x: x.peak(eng.sc.dtype)) for s in range(size)]
    if len({g.id for g in per_stage}) <= 1:
        return [eng] * size
    made = {}
    for g in per_stage:
        if g.id not in made:
            made[g.id] = eng.for_gpu(g)
    return [made[g.id] for g in per_stage]


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
