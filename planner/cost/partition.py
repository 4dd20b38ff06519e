"""Contiguous, cost-balanced cuts of the blocks into pipeline stages.

PipeFusion (xDiT) and AsyncDiff implementations cut by block count; blocks differ a lot
in cost (U-Net levels, Flux's double vs single blocks), so equal counts leave the
slowest stage far above the mean. Minimising the slowest stage over contiguous cuts is
solved exactly here by dynamic programming (O(parts x blocks^2)); planner/ilp/partition.py
adds memory caps and unequal GPUs as an integer program.
"""
from __future__ import annotations

import numpy as np


def balanced_cuts(costs, parts: int, speeds=None) -> list[slice]:
    """Cut `costs` (per block, seconds on a reference GPU) into `parts` contiguous
    non-empty slices minimising the slowest part; speeds[i] scales part i's time."""
    c = np.asarray(costs, dtype=float)
    n = len(c)
    if not 1 <= parts <= n:
        raise ValueError(f"cannot cut {n} blocks into {parts} stages")
    speeds = np.ones(parts) if speeds is None else np.asarray(speeds, dtype=float)
    prefix = np.concatenate([[0.0], np.cumsum(c)])
    inf = float("inf")
    # best[p][j]: slowest part when the first j blocks form p parts
    best = np.full((parts + 1, n + 1), inf)
    arg = np.zeros((parts + 1, n + 1), dtype=int)
    best[0][0] = 0.0
    for p in range(1, parts + 1):
        for j in range(p, n - (parts - p) + 1):
            i = np.arange(p - 1, j)
            cand = np.maximum(best[p - 1][i], (prefix[j] - prefix[i]) / speeds[p - 1])
            k = int(np.argmin(cand))
            best[p][j], arg[p][j] = cand[k], i[k]
    cuts, j = [], n
    for p in range(parts, 0, -1):
        i = arg[p][j]
        cuts.append(slice(int(i), int(j)))
        j = i
    return cuts[::-1]


def count_cuts(n: int, parts: int) -> list[slice]:
    """xDiT's cut: ceil(n/parts) blocks per stage, by count."""
    per = -(-n // parts)
    return [slice(i * per, min(n, (i + 1) * per)) for i in range(parts) if i * per < n]
