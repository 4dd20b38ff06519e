"""Unequal GPUs in the cost model: token shares by speed, and each pipeline stage on its
own GPU (STADI's spatial idea; planner/ilp/hetero.py has the integer programs).

Without this the cost engine runs every rank at the pace of the slowest GPU. Here:

- Token split (the strategies that split the latent, Strategy.latent_split). The ranks
  that share one sample's tokens (a *token group*) get whole latent rows in proportion
  to speed, as STADI's "elastic" patches do. A rank of GPU type g holding r of the
  group's R rows computes a block in a_g + b_g r/R seconds (fitted on the cost model at
  the even share and half of it: token-wise ops and Ring's attention scale with the
  rows, Ulysses' head-split attention does not). The rows minimise the slowest rank:
      r_i in Z, r_i >= 1, sum_i r_i = R;  a_g(i) + b_g(i) r_i / R <= T;  minimise T
  solved by the engine's `split_rows` (greedy here, exact for this problem; the
  integer program of planner/ilp/hetero.py when the search injects it). Every layer
  synchronises the group (all-to-all or ring steps), so each block takes the slowest
  rank's time: the engine's block costs become the maximum over the ranks'
  (TokenSplit.block_compute). Traffic stays the even split's.
- Pipeline stages (Strategy.stage_cuts): stage s runs on the slowest GPU at position s
  of its groups (Engine.stage_engines).
"""
from __future__ import annotations

import dataclasses

import functools
from dataclasses import dataclass

import numpy as np

from ..strategies import LATENT_SPLIT_KEYS, loop_strategy
from . import compute


@dataclass(frozen=True)
class RowSplit:
    rows: tuple[int, ...]          # per rank of the group, in rank order
    time: float                    # the slowest rank's predicted time (the objective)
    info: object | None = None     # planner.ilp.solver.SolveInfo of an integer program


def greedy_rows(a, b, total: int) -> RowSplit:
    """One row each, then every further row to the rank that would finish it first:
    optimal for unit jobs on machines with affine times, so the answer is the integer
    program's optimum as well."""
    n = len(a)
    if total < n:
        raise ValueError(f"{total} rows cannot give each of {n} ranks at least one")
    rows = [1] * n
    for _ in range(total - n):
        i = min(range(n), key=lambda j: (a[j] + b[j] * (rows[j] + 1) / total, j))
        rows[i] += 1
    return RowSplit(tuple(rows), max(a[i] + b[i] * rows[i] / total for i in range(n)), None)


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
    scaled = dataclasses.replace(sh, seq=sh.seq / share, q=q)
    return compute.op_times(eng.table, scaled, local.tp, local.batch, local.elem, eng.sc.dtype, gpu,
                            eng.profile, eng.sc.compiled, eng.model.eager.mem_factor)


@functools.lru_cache(maxsize=1024)
def _split(solver, a: tuple[float, ...], b: tuple[float, ...], total: int) -> RowSplit:
    """The solver's rows for one group's speeds (the same GPUs recur across plans)."""
    return solver(a, b, total)


def token_split(eng) -> TokenSplit | None:
    """Unequal token shares for a layer-wise plan on mixed GPUs, or None (uniform GPUs
    in every token group, no token-splitting dimension, or a loop strategy)."""
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
    splits = [_split(eng.solvers.split_rows, tuple(fits[gpus[r].id][0] for r in grp),
                     tuple(fits[gpus[r].id][1] for r in grp), rows_total) for grp in groups]
    return TokenSplit(groups, gpus, rows_total, splits, seq_degree)
