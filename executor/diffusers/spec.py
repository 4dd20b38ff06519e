"""The planner ModelSpec a diffusers run is predicted and cut with.

    run_spec(full, pc, image_size, scale) -> (ModelSpec, note)

The zoo builds a ModelSpec from any diffusers configs (planner/zoo/pipelines.py, one
builder per class), so the spec is built from the very configs the run instantiates: the
published ones at --scale full (then it is planner.zoo.build's), the shrunk ones at tiny
and small, or a --weights folder's. Its block list must be the adapter's (names and order:
pipeline cuts mean the same thing to the planner and the executor), which is checked here
and, for every supported model, in tests/test_executor_diffusers.py.
"""
from __future__ import annotations

from planner import zoo
from planner.zoo import hub, pipelines
from planner.zoo.scenario import grid

from .families import block_names

NO_CONFIG = ("tokenizer", "scheduler", "feature_extractor", "safety_checker")   # not part of the cost


def zoo_pipeline(pc) -> hub.PipelineConfig:
    """Our PipelineConfigs as the zoo's hub.PipelineConfig (its encoder labels from the
    shipped folder's sources.json)."""
    comps = {n: hub.Component(n, lib, cls, cfg) for n, (lib, cls, cfg) in pc.components.items()
             if not n.startswith(NO_CONFIG)}
    try:
        labels = hub.zoo_folder(pc.model_id).labels
    except hub.ZooError:
        labels = {}
    return hub.PipelineConfig(pc.pipeline, comps, pc.source, labels)


def run_spec(full, pc, image_size, scale: str, frames: int = 1, text_tokens: int | None = None):
    """`full`: the zoo's ModelSpec of the model id (for its id and facts)."""
    facts = zoo.facts(full.id)
    h, w = image_size
    spec = pipelines.build_spec(facts, zoo_pipeline(pc), grid(facts, h, w, frames, text_tokens))
    names, have = block_names(pc, image_size), [b.name for b in spec.blocks]
    if have != names:
        raise ValueError(f"{full.id}: the diffusers class's blocks {names[:4]}... are not the zoo's {have[:4]}...")
    note = "" if scale == "full" else f"predicted for the --scale {scale} configs (the zoo's builders, these widths)"
    return spec, note
