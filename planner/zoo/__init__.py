"""Model zoo: a layer-level description of every model id the planner knows.

    model_ids()                      -> sorted ids
    facts(model_id)                  -> ModelFacts (scenario independent, with sources)
    build(model, height, width, frames=1, text_tokens=None) -> ModelSpec
    load_model_dir(path)             -> LocalModel: any local diffusers folder (configs only)

Every zoo model is a diffusers folder of configs (planner/zoo/configs/<id>/: model_index.json
and each component's config.json, with sources.json); `build` validates the scenario's
sizes, turns them into a latent Grid and hands both to planner.zoo.pipelines, which builds
each component with the builder of its class (the executor builds the same configs'
diffusers classes, executor/diffusers). Builds are cached: a ModelSpec is immutable, so
every caller may share it.
"""
from __future__ import annotations

import functools

from planner.spec import ModelFacts, ModelSpec
from planner.zoo.facts import FACTS
from planner.zoo.hub import ZooError, zoo_folder
from planner.zoo.local import LocalModel, load_model_dir
from planner.zoo.pipelines import build_spec
from planner.zoo.scenario import grid

__all__ = ["ZooError", "model_ids", "facts", "build", "load_model_dir", "LocalModel"]


def model_ids() -> tuple[str, ...]:
    return tuple(sorted(FACTS))


def facts(model_id: str) -> ModelFacts:
    try:
        return FACTS[model_id]
    except (KeyError, TypeError):
        raise ZooError(f"unknown model id {model_id!r}; known ids: {', '.join(model_ids())}") from None


def build(model: str, height: int, width: int, frames: int = 1,
          text_tokens: int | None = None) -> ModelSpec:
    """The model's denoiser, text encoders and VAE decoder at one scenario's sizes."""
    f = facts(model)
    g = grid(f, height, width, frames, text_tokens)    # checked before the cache: 1024.0 == 1024
    return _build(f, g)


@functools.lru_cache(maxsize=512)
def _build(f, g) -> ModelSpec:
    return build_spec(f, zoo_folder(f.id), g)
