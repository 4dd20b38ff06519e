"""Inference engines the user deploys on, and which plans each can run.

    ENGINES                      name -> Engine (paradiff, xdit, diffusers, sglang, vllm-omni, cache-dit)
    get_engine(name)             the Engine, or UsageError naming the accepted names
    accepts(engine, model, sc, cluster)  a predicate over plans for planner.search(accept=...)
    require_model / require_plan one-line UsageErrors naming what the engine supports

One module per engine holds its data (strategy keys, models, rank order, sources) and
its launch adapter; base.py the shared rules; output.py the text and JSON of `plan`.
"""
from __future__ import annotations

from ..errors import UsageError
from .base import Engine, Refusal
from .cache_dit import CACHE_DIT
from .diffusers import DIFFUSERS_ENGINE
from .paradiff import PARADIFF
from .sglang import SGLANG
from .vllm_omni import VLLM_OMNI
from .xdit import XDIT

ENGINES: dict[str, Engine] = {e.name: e for e in (PARADIFF, XDIT, DIFFUSERS_ENGINE, SGLANG, VLLM_OMNI, CACHE_DIT)}

__all__ = ["ENGINES", "Engine", "Refusal", "get_engine", "accepts", "require_model", "require_plan", "no_plan", "why_no_plan"]


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise UsageError(f"--engine {name}: accepted: {', '.join(ENGINES)}")
    return ENGINES[name]


def accepts(engine: Engine, model, sc, cluster):
    """Plan -> bool: the engine can run the plan on this model and cluster."""
    return lambda plan: engine.can_run(plan, model, sc, cluster.nodes)


def require_model(engine: Engine, model) -> None:
    """UsageError (one line) when the engine does not run the model at all."""
    if engine.model_support(model.id) is None:
        raise UsageError(f"--engine {engine.name}: {engine.title} has no multi-GPU support for {model.id} "
                         f"[{engine.models_source(model.id)}]; it parallelizes: {', '.join(engine.models)}")


def require_plan(engine: Engine, plan, model, sc, cluster) -> None:
    """UsageError (one line) with the first rule the plan breaks, its source, and what
    the engine supports on the model."""
    refused = engine.refusals(plan, model, sc, cluster.nodes)
    if refused:
        raise UsageError(f"--engine {engine.name}: {engine.title} cannot run '{plan}' on {model.id}: "
                         f"{refused[0]}; {engine.describe_model(model.id)}")


def why_no_plan(engine: Engine, model, cluster) -> str:
    """Why no plan for the cluster passes: one node only, else what it supports on the model."""
    if cluster.nodes > 1 and not engine.multi_node.supported:
        return f"{engine.multi_node.note} [{engine.multi_node.source}]"
    return engine.describe_model(model.id)


def no_plan(engine: Engine, model, cluster) -> None:
    """UsageError (one line) when the search found no plan the engine can run."""
    raise UsageError(f"--engine {engine.name}: no plan {engine.title} can run for {model.id} on {cluster.n} GPUs; "
                     f"{why_no_plan(engine, model, cluster)}")
