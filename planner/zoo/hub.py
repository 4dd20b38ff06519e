"""Diffusers model folders as data: model_index.json and each component's config.json.

    Cfg                 one component's config.json with its class's defaults behind it
    PipelineConfig      a folder's pipeline class and components
    read_folder(path)   any local diffusers folder (configs only, never weights)
    zoo_folder(id)      the folder shipped for a zoo model (planner/zoo/configs/<id>/)

A diffusers folder is `model_index.json` ({"_class_name": pipeline, "<component>":
[library, class], ...}) plus `<component>/config.json` per component. Older files omit keys
their class added later; a Cfg falls back to the class defaults the builder registered
(tests/test_zoo_meta.py checks those against the installed diffusers/transformers). Every
problem with a folder is a ZooError naming the file and what is accepted.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import UserError, read_json

CONFIGS = Path(__file__).parent / "configs"
_MISSING = object()


class ZooError(UserError):
    """Unknown model id, or a model folder the zoo cannot read (one line: the value and what is accepted)."""


@dataclass(frozen=True)
class Cfg:
    """One component's config.json. `cfg[key]` is the file's value, else the class default,
    else a ZooError naming the file and the key."""

    class_name: str
    values: dict
    where: str                     # the file, for messages
    defaults: dict = field(default_factory=dict)

    def __getitem__(self, key: str):
        v = self.values.get(key, _MISSING)
        if v is _MISSING:
            v = self.defaults.get(key, _MISSING)
        if v is _MISSING:
            raise ZooError(f"{self.where}: no '{key}' (the {self.class_name} builder needs it)")
        return v

    def get(self, key: str, default=None):
        v = self.values.get(key, _MISSING)
        return self.defaults.get(key, default) if v is _MISSING else v

    def sub(self, key: str, class_name: str) -> "Cfg":
        """A nested config dict (Open-Sora 1.2's VAE parts)."""
        return Cfg(class_name, self[key], f"{self.where} [{key}]")


@dataclass(frozen=True)
class Component:
    name: str            # model_index key: "unet", "transformer", "text_encoder_2", "vae", ...
    library: str         # "diffusers", "transformers", or "opensora" (class names defined in this project)
    class_name: str
    config: dict         # the parsed config.json


@dataclass(frozen=True)
class PipelineConfig:
    class_name: str
    components: dict     # name -> Component, in model_index order
    where: str           # the folder, for messages
    labels: dict = field(default_factory=dict)   # component -> display name (zoo sources.json)

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise ZooError(f"{self.where}/model_index.json: no '{name}' component (a {self.class_name} "
                           f"has {', '.join(self.components)})") from None


def _read(path: Path, what: str) -> dict:
    doc = read_json(path, what, ZooError)
    if not isinstance(doc, dict):
        raise ZooError(f"{what}: must be a JSON object, not {type(doc).__name__}")
    return doc


def read_folder(path, labels: dict | None = None) -> PipelineConfig:
    """The pipeline described by a diffusers folder: model_index.json and the config.json of
    every component that has a library and a class (tokenizers, schedulers and feature
    extractors are listed but not read; their folders may be absent)."""
    root = Path(path)
    if not root.is_dir():
        raise ZooError(f"--model-dir {path}: not a folder (give a diffusers model folder with model_index.json)")
    if not (root / "model_index.json").exists():
        raise ZooError(f"--model-dir {path}: no model_index.json (a diffusers model folder has model_index.json "
                       f"and a config.json per component)")
    index = _read(root / "model_index.json", f"{root}/model_index.json")
    name = index.get("_class_name")
    if not isinstance(name, str):
        raise ZooError(f"{root}/model_index.json: no \"_class_name\" naming the pipeline class")
    components = {}
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list):
            continue
        if len(value) != 2 or value[0] is None or value[1] is None:
            continue                                # e.g. "safety_checker": [null, null]
        library, cls = value
        if not (isinstance(library, str) and isinstance(cls, str)):
            raise ZooError(f"{root}/model_index.json: \"{key}\" must be [library, class name], not {value!r}")
        if _needs_config(key):
            if not (root / key / "config.json").exists():
                raise ZooError(f"{root}/{key}/config.json: not found (model_index.json lists the {key} component "
                               f"{cls}; its folder needs a config.json)")
            components[key] = Component(key, library, cls, _read(root / key / "config.json",
                                                                 f"{root}/{key}/config.json"))
    return PipelineConfig(name, components, str(root), labels or {})


def _needs_config(component: str) -> bool:
    """Components with a model config.json (tokenizers, schedulers, feature extractors and
    safety checkers are not part of the cost)."""
    return not component.startswith(("tokenizer", "scheduler", "feature_extractor", "safety_checker"))


@functools.lru_cache(maxsize=64)
def zoo_folder(model_id: str) -> PipelineConfig:
    """The configs shipped for a zoo model; sources.json gives each file's provenance and the
    display names of the encoder stages."""
    root = CONFIGS / model_id
    labels = _read(root / "sources.json", f"{root}/sources.json").get("labels", {})
    return read_folder(root, labels)


def cfg(component: Component, defaults: dict, where: str) -> Cfg:
    return Cfg(component.class_name, component.config, f"{where}/{component.name}/config.json", defaults)


def require(cfg: Cfg, key: str, accepted) -> None:
    """A config value the builder cannot take is a ZooError naming it and the accepted values."""
    if cfg[key] not in accepted:
        raise ZooError(f"{cfg.where}: {key}={json.dumps(cfg[key])} is not supported by the zoo's {cfg.class_name} "
                       f"builder (accepted: {', '.join(json.dumps(a) for a in accepted)})")


def as_list(v, n: int) -> list:
    """diffusers' int-or-per-block convention (attention_head_dim 8 or [5, 10, 20])."""
    return list(v) if isinstance(v, (list, tuple)) else [v] * n
