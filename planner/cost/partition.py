"""Contiguous, cost-balanced cuts of the blocks into pipeline stages.

PipeFusion (xDiT) and AsyncDiff implementations cut by block count; blocks differ a lot
in cost (U-Net levels, Flux's double vs single blocks), so equal counts leave the
slowest stage far above the mean. Minimising the slowest stage over contiguous cuts is
solved exactly here by dynamic programming (O(parts x blocks^2)), also with per-stage
cost rows (unequal GPUs) and per-stage memory caps; planner/ilp/partition.py states the
same choice as an integer program and decides which of the two runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Partition:
    """Stage cuts and how they were found (the DP here, or planner/ilp/partition.py)."""

    cuts: list[slice]
    slowest: float                 # the objective: the slowest stage's time
    method: str                    # "dp" | "ilp"
    info: object | None = None     # planner.ilp.solver.SolveInfo of an integer program
    feasible: bool = True          # False: no cut meets the caps; cuts ignore them

    def sizes(self) -> list[int]:
        return [c.stop - c.start for c in self.cuts]


def cost_rows(costs, parts: int, speeds=None) -> np.ndarray:
    """A (parts x blocks) matrix of per-stage block times from a 1-D cost vector and
    stage speeds, or a given matrix as is."""
    c = np.asarray(costs, dtype=float)
    if c.ndim == 2:
        if c.shape[0] != parts:
            raise ValueError(f"cost matrix has {c.shape[0]} rows for {parts} stages")
        return c
    sp = np.ones(parts) if speeds is None else np.asarray(speeds, dtype=float)
    return c[None, :] / sp[:, None]


def meets_caps(cuts, mem, caps) -> bool:
    if mem is None:
        return True
    m, k = np.atleast_2d(mem), np.atleast_2d(caps)
    return all(m[r, c].sum() <= k[r, s] * (1 + 1e-12) for r in range(m.shape[0]) for s, c in enumerate(cuts))


def exact_partition(costs, parts: int, mem=None, caps=None) -> Partition:
    """The cost model's default stage partitioner: the exact DP (capped_cuts) for per-block
    or per-stage costs with memory caps. When no cut meets the caps, the uncapped optimum
    (the memory model then marks the plan as not fitting)."""
    rows = cost_rows(costs, parts)
    free_slowest, free = capped_cuts(rows, parts)
    if meets_caps(free, mem, caps):     # caps only remove cuts: the free optimum stands
        return Partition(free, free_slowest, "dp")
    slowest, cuts = capped_cuts(rows, parts, None, mem, caps)
    return Partition(cuts or free, slowest if cuts else free_slowest, "dp", feasible=cuts is not None)


def balanced_cuts(costs, parts: int, speeds=None) -> list[slice]:
    """Cut `costs` (per block, seconds on a reference GPU) into `parts` contiguous
    non-empty slices minimising the slowest part; speeds[i] scales part i's time.
    costs may also be a (parts x blocks) matrix: row p is each block's time on part p's
    GPU (unequal GPUs whose speed ratio differs by op type); the DP stays exact."""
    return capped_cuts(costs, parts, speeds)[1]


def capped_cuts(costs, parts: int, speeds=None, mem=None, caps=None):
    """(slowest part, cuts) as balanced_cuts, with memory caps: for every resource r,
    sum of mem[r][blocks of part p] <= caps[r][p]. The objective is a max over parts and
    the caps are per part, so masking the parts that break a cap keeps the DP exact.
    Returns (inf, None) when no cut meets the caps."""
    c = np.asarray(costs, dtype=float)
    rows = c if c.ndim == 2 else c[None, :]
    n = rows.shape[1]
    if not 1 <= parts <= n:
        raise ValueError(f"cannot cut {n} blocks into {parts} stages")
    if c.ndim == 2 and rows.shape[0] != parts:
        raise ValueError(f"cost matrix has {rows.shape[0]} rows for {parts} stages")
    speeds = np.ones(parts) if speeds is None else np.asarray(speeds, dtype=float)
    prefixes = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(rows, axis=1)], axis=1)
    if mem is not None:
        m = np.atleast_2d(np.asarray(mem, dtype=float))
        k = np.atleast_2d(np.asarray(caps, dtype=float))
        mem_prefix = np.concatenate([np.zeros((m.shape[0], 1)), np.cumsum(m, axis=1)], axis=1)
    inf = float("inf")
    # best[p][j]: slowest part when the first j blocks form p parts; one matrix per p
    # over all (i, j) with the last part = blocks i..j-1 (vectorised: the search calls
    # this for every pipeline plan)
    best = np.full((parts + 1, n + 1), inf)
    arg = np.zeros((parts + 1, n + 1), dtype=int)
    best[0][0] = 0.0
    ii, jj = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    valid = ii < jj
    if mem is not None:
        span = mem_prefix[:, None, :] - mem_prefix[:, :, None]          # [r, i, j]
    for p in range(1, parts + 1):
        prefix = prefixes[p - 1] if c.ndim == 2 else prefixes[0]
        part = (prefix[None, :] - prefix[:, None]) / speeds[p - 1]     # [i, j]
        cand = np.maximum(best[p - 1][:, None], part)
        mask = valid
        if mem is not None:
            mask = mask & ~(span > k[:, p - 1][:, None, None] * (1 + 1e-12)).any(axis=0)
        cand = np.where(mask, cand, inf)
        q = np.argmin(cand, axis=0)
        best[p] = cand[q, np.arange(n + 1)]
        arg[p] = q
    if not np.isfinite(best[parts][n]):
        return inf, None
    cuts, j = [], n
    for p in range(parts, 0, -1):
        i = arg[p][j]
        cuts.append(slice(int(i), int(j)))
        j = i
    return float(best[parts][n]), cuts[::-1]


def count_cuts(n: int, parts: int) -> list[slice]:
    """xDiT's cut: ceil(n/parts) blocks per stage, by count."""
    per = -(-n // parts)
    return [slice(i * per, min(n, (i + 1) * per)) for i in range(parts) if i * per < n]
