"""dp: data parallel over the images of the batch.

The rank with dp coordinate k generates images [k b/d, (k+1) b/d) of the batch of b
(runtime.Setup.images) with the rest of the plan; nothing is exchanged while denoising,
and the images are all-gathered once at the end (runtime.Setup.gather). Exact.
"""
from __future__ import annotations

from .runner import Runner


def images(coord: int, degree: int, batch: int) -> tuple[int, int]:
    per = batch // degree
    return coord * per, (coord + 1) * per


RUNNER = Runner("dp")
