"""paradiff's own executor (executor/): every strategy key, schedules, any rank order.

It implements each key under the same name (executor/strategies/<key>.py; ulysses with
ring is executor/strategies/usp.py), lays the ranks out in any order (`run --order`), and
runs the zoo models' real diffusers classes (executor/diffusers/: one adapter per
denoiser class) from a local weights folder (`--weights DIR`) or random weights. `run`
measures the machine it runs on (executor/cli.py refuses --nodes), so it is one node.
"""
from __future__ import annotations

from ..strategies import STRATEGIES
from .base import Engine, Launch, ModelSupport, has, lacks
from .models import DIFFUSERS

SRC = "paradiff executor/strategies (this repository)"
ADAPTERS = "paradiff executor/diffusers/scale.py FAMILY (this repository)"
CLI = "paradiff executor/cli.py (_check_options)"
KEYS = {k: has(f"executor/strategies/{k}.py", SRC) for k in STRATEGIES}
# The denoiser classes the executor has an adapter for (executor/diffusers/scale.py
# FAMILY; tests/test_engines.py checks that the two lists agree). AnimateDiff's
# UNet2DConditionModel runs with its motion adapter (executor/diffusers/animatediff.py).
EXECUTOR_CLASSES = ("UNet2DConditionModel", "SD3Transformer2DModel", "FluxTransformer2DModel",
                    "PixArtTransformer2DModel", "WanTransformer3DModel", "CogVideoXTransformer3DModel",
                    "LatteTransformer3DModel", "DiTTransformer2DModel", "HunyuanDiT2DModel",
                    "HunyuanVideoTransformer3DModel", "MochiTransformer3DModel", "UNetSpatioTemporalConditionModel")
NO_ADAPTER: tuple[str, ...] = ()


def _models() -> dict[str, ModelSupport]:
    keys = frozenset(STRATEGIES) - {"serial"}
    return {m: ModelSupport(m, keys, ADAPTERS) for m, c in DIFFUSERS.items()
            if c.denoiser in EXECUTOR_CLASSES and c.pipeline not in NO_ADAPTER}


class Paradiff(Engine):
    def launch(self, plan, model, sc, cluster) -> Launch:
        c = DIFFUSERS.get(model.id)
        cmd = (f"python cli.py run --model {model.id} --plan '{plan}' --backend nccl --nproc {cluster.n} "
               f"--weights DIR")
        notes = (f"DIR: a local diffusers folder of {c.repo} (save_pretrained or a Hugging Face snapshot); "
                 f"without --weights the classes run with random weights" if c else "",)
        return Launch(cmd, {"model": model.id, "plan": str(plan), "nproc": cluster.n}, notes=notes)


PARADIFF = Paradiff(
    name="paradiff", title="paradiff", version="executor/ of this repository", keys=KEYS, models=_models(), order=None,
    order_source="paradiff executor/runtime.py (layout_for(plan, job.order); run --order)",
    schedules=has("schedule segments (executor/sampler.py: plan.plan_at(step))", SRC),
    multi_node=lacks("`run` measures this machine: --nodes and --cluster do not apply", CLI))
