"""cfg: the two classifier-free-guidance branches on the two halves of the ranks.

The rank with cfg coordinate 0 evaluates the conditional branch, coordinate 1 the
unconditional one, each with the whole model (and whatever the plan's other strategies
do inside the branch). After each evaluation the two noise predictions are all-gathered
over the cfg group (a latent-sized tensor) and both ranks apply the guidance and the
scheduler update, so their latents stay identical. Exact.

runtime.Setup asks `branches` which branches a rank evaluates, and `gather_branches`
for the peer's prediction before it combines them (Setup.guided).
"""
from __future__ import annotations

from .runner import Runner

BRANCHES = ("cond", "uncond")    # cfg coordinate -> branch


def branches(setup) -> tuple[str, ...]:
    """The guidance branches this rank evaluates."""
    if not setup.job.cfg:
        return ("cond",)
    if setup.plan.degree("cfg") == 2:
        return (BRANCHES[setup.coords["cfg"]],)
    return BRANCHES


def gather_branches(setup, eps):
    """(conditional, unconditional) noise predictions from this rank's and its cfg peer's."""
    c, u = setup.rt.world.comm.all_gather(eps, setup.group("cfg")).unbind(0)
    return c, u


RUNNER = Runner("cfg")
