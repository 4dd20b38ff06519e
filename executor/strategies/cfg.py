"""cfg: the two classifier-free-guidance branches on the two halves of the ranks.

The rank with cfg coordinate 0 evaluates the conditional branch, coordinate 1 the
unconditional one, each with the whole model (and whatever the plan's other strategies
do inside the branch). After each evaluation the two noise predictions are all-gathered
over the cfg group (a latent-sized tensor) and both ranks apply the guidance and the
scheduler update, so their latents stay identical. Exact.

The work is done by runtime.Setup: `branches` picks the rank's branch from its cfg
coordinate and `guided` all-gathers and combines. This module names the rule.
"""
from __future__ import annotations

from .runner import Runner

BRANCHES = ("cond", "uncond")    # cfg coordinate -> branch


def branch(coord: int) -> str:
    return BRANCHES[coord]


RUNNER = Runner("cfg")
