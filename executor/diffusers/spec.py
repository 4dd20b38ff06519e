"""The planner ModelSpec a diffusers run is predicted and cut with.

    run_spec(full, pc, image_size) -> (ModelSpec, note)

At --scale full (or with --weights) the executor runs the real architecture, and its block
list is exactly the zoo's (planner.zoo.build; tests/test_executor_diffusers.py compares the
names of every supported model), so the zoo's ModelSpec is used as it is.

At tiny / small scale the shrunk model keeps a subset of the real blocks, under the real
names (scale.py keeps the structure that names them), so the zoo's ModelSpec restricted to
those blocks gives predict() the same block list: pipeline cuts mean the same thing to the
planner and the executor. Its ops keep the real widths, though: the prediction is for the
real model's layers at this depth, resolution and text length, not for the narrower ones
that run (the zoo builds only the published configs), which the run's output says.
"""
from __future__ import annotations

import dataclasses

from .families import block_names


def run_spec(full, pc, image_size, scale: str):
    names = block_names(pc, image_size)
    if scale == "full":
        have = [b.name for b in full.blocks]
        if have != names:
            raise ValueError(f"{full.id}: the diffusers class's blocks {names[:4]}... are not the zoo's {have[:4]}...")
        return full, ""
    by_name = {b.name: b for b in full.blocks}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{full.id} at --scale {scale}: blocks {missing[:3]} are not in the zoo's ModelSpec")
    spec = dataclasses.replace(full, blocks=tuple(by_name[n] for n in names))
    return spec, (f"predicted for the zoo's {full.id} layers (real widths) at the {len(names)} blocks the "
                  f"--scale {scale} model keeps")
