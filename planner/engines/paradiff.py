"""paradiff's own executor (executor/): every strategy key, schedules, any rank order.

It implements each key under the same name (executor/strategies/<key>.py; ulysses with
ring is executor/strategies/usp.py) and lays the ranks out in any order (`run --order`).
It runs the reference models (planner/zoo/reference.py PRESETS, random weights), not the
production checkpoints: for a zoo model its launch line checks the plan on the reference
model of the same architecture. `run` measures the machine it runs on (executor/cli.py
_check_options refuses --nodes), so it is one node.
"""
from __future__ import annotations

from ..strategies import STRATEGIES
from ..zoo import model_ids
from ..zoo.reference import PRESETS
from .base import Engine, Launch, ModelSupport, has, lacks

SRC = "paradiff executor/strategies (this repository)"
CLI = "paradiff executor/cli.py (_check_options)"
KEYS = {k: has(f"executor/strategies/{k}.py", SRC) for k in STRATEGIES}
# the reference model closest to each zoo architecture (same block types)
_REFERENCE = {"unet": "ref-unet-s", "video-unet": "ref-unet-s", "dit": "ref-dit-s", "mmdit": "ref-mmdit-s",
              "video-mmdit": "ref-mmdit-s", "video-dit": "ref-video-s"}


def _models() -> dict[str, ModelSupport]:
    from ..zoo import facts
    keys = frozenset(STRATEGIES) - {"serial"}
    out = {m: ModelSupport(m, keys, SRC, "reference model") for m in PRESETS}
    for m in model_ids():
        ref = _REFERENCE[facts(m).arch]
        out[m] = ModelSupport(ref, keys, SRC, f"checked on {ref} (random weights), not on {m}'s checkpoint")
    return out


class Paradiff(Engine):
    def launch(self, plan, model, sc, cluster) -> Launch:
        ms = self.model_support(model.id)
        ref = ms.name if ms else "ref-dit-s"
        cmd = f"python cli.py run --model {ref} --plan '{plan}' --backend nccl"
        notes = () if ref == model.id else (ms.note,)
        return Launch(cmd, {"model": ref, "plan": str(plan)}, notes=notes)


PARADIFF = Paradiff(
    name="paradiff", title="paradiff", version="executor/ of this repository", keys=KEYS, models=_models(), order=None,
    order_source="paradiff executor/runtime.py (layout_for(plan, job.order); run --order)",
    schedules=has("schedule segments (executor/sampler.py: plan.plan_at(step))", SRC),
    multi_node=lacks("`run` measures this machine: --nodes and --cluster do not apply", CLI))
