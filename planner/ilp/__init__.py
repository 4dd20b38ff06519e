"""Integer programs of the planner (pulp + CBC; docs/ilp.md):

    schedule.py        which strategy runs each denoising step (switching schedule)
    schedule_modes.py  the search's plans as schedule modes; the schedule as a plan string
    partition.py       pipeline stages by cost with memory caps and unequal GPUs
    placement.py       which parallel dimension is innermost (layout order)
    hetero.py          unequal GPUs: token splits by speed, per-stage GPUs, step allocation
    solver.py          time limits, best solution and gap

The search injects SOLVERS into the cost engine (planner/cost/engine.Solvers), so that
predict() cuts stages and splits tokens with these programs instead of the exact DPs.
"""
from __future__ import annotations

from ..cost.engine import Solvers
from . import hetero, partition

# The cost engine's stage cuts and token splits as integer programs (the search's choice;
# the engine's default is the exact DP and greedy rule, which reach the same optima)
SOLVERS = Solvers(partition=partition.partition, split_rows=hetero.split_rows)
