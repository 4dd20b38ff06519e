"""dp: data parallel over the images of the batch.

The rank with dp coordinate k generates images [k b/d, (k+1) b/d) of the batch of b
(runtime.Setup.images) with the rest of the plan; nothing is exchanged while denoising,
and the images are all-gathered once at the end (runtime.Setup.gather). Exact.
"""
from __future__ import annotations

import torch

from .runner import Runner


def images(setup) -> tuple[int, int]:
    """[first, last) of the batch's images this rank generates."""
    per = setup.job.batch // setup.plan.degree("dp")
    coord = setup.coords.get("dp", 0)
    return coord * per, (coord + 1) * per


def gather(setup, x: torch.Tensor) -> torch.Tensor:
    """Every image of the batch from every dp group's images, in order."""
    g = setup.group("dp")
    return torch.cat(setup.rt.world.comm.all_gather(x, g).unbind(0)) if g.size > 1 else x


RUNNER = Runner("dp")
