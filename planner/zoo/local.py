"""`plan --model-dir DIR`: a local diffusers folder planned through the zoo's builders.

Only configs are read (model_index.json and each component's config.json), never weights.
The scenario defaults (steps, guidance, text tokens, frames, resolution) come from the
pipeline class: the zoo model of that pipeline holds its __call__ defaults (or, for a
pipeline the zoo does not list, the zoo model whose denoiser has the same class); the
resolution follows the folder's own sample_size where the pipeline derives it so. The
facts' name says which, so the plan's first line shows it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from planner.spec import ModelFacts, ModelSpec
from planner.zoo import pipelines
from planner.zoo.facts import FACTS
from planner.zoo.hub import PipelineConfig, ZooError, read_folder
from planner.zoo.scenario import grid


@dataclass(frozen=True)
class LocalModel:
    facts: ModelFacts
    pipeline: PipelineConfig

    def build(self, height: int, width: int, frames: int = 1, text_tokens: int | None = None) -> ModelSpec:
        return pipelines.build_spec(self.facts, self.pipeline, grid(self.facts, height, width, frames, text_tokens))


def load_model_dir(path, model: str | None = None) -> LocalModel:
    """The folder's facts and configs, checked by building it once at its default size.
    `model`: a --model also given (refused: one or the other)."""
    if model:
        raise ZooError(f"--model {model} and --model-dir {path}: give one of them, not both")
    pipe = read_folder(path)
    kind = pipelines.kind_of(pipe)
    base = FACTS[kind.zoo_id]
    channels, patch = pipelines.latent_of(pipe, kind)
    _, _, (spatial, temporal) = pipelines.vae_of(pipe)
    height, width = base.default_height, base.default_width
    denoiser = pipe.component(kind.denoiser).config
    if kind.size_from == "sample_size" and isinstance(denoiser.get("sample_size"), int):
        height = width = denoiser["sample_size"] * spatial
    elif isinstance(kind.size_from, int):
        height = width = kind.size_from * spatial
    how = ("scenario defaults of " + (f"{pipe.class_name}, as zoo model {kind.zoo_id}"
                                      if pipe.class_name in pipelines.PIPELINES else
                                      f"zoo model {kind.zoo_id} (same denoiser class)"))
    name = Path(path).resolve().name
    facts = dataclasses.replace(
        base, id=name, name=f"{name} ({pipe.class_name}; {how})", latent_channels=channels, patch=patch,
        vae_spatial=spatial, vae_temporal=temporal, default_height=height, default_width=width,
        source=f"model folder {path} (configs only); {how}: {base.source}")
    local = LocalModel(facts, pipe)
    try:
        local.build(height, width, facts.default_frames)
    except ZooError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as e:   # a config the builders cannot take
        raise ZooError(f"--model-dir {path}: cannot build the {pipe.class_name} at its defaults "
                       f"({type(e).__name__}: {e})") from None
    return local
