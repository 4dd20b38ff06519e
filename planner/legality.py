"""Is a plan legal for this model, scenario and cluster? One list of reasons if not."""
from __future__ import annotations

from .plan import Plan
from .spec import ModelSpec, Scenario
from .strategies import STRATEGIES, compatible, row_slices
from .strategies.checks import split_errors


def plan_errors(plan: Plan, model: ModelSpec, sc: Scenario, gpus: int) -> list[str]:
    errs: list[str] = []
    if plan.gpus != gpus:
        errs.append(f"plan '{plan}' uses {plan.gpus} GPUs but the cluster has {gpus}; "
                    f"the degrees must multiply to the GPU count")
    for seg in plan.segments:
        if seg.last > sc.steps:
            errs.append(f"schedule segment '{seg}' must end by the last step ({sc.steps})")
        for k in seg.plan.keys:
            errs += STRATEGIES[k].segment_errors(seg, plan)
    for p in plan.plans():
        errs += _single(p, model, sc)
    return list(dict.fromkeys(errs))


def _single(plan: Plan, model: ModelSpec, sc: Scenario) -> list[str]:
    errs = []
    keys = plan.keys
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if not compatible(a, b):
                errs.append(f"'{a}' and '{b}' cannot be combined in one plan")
    owners = [k for k in keys if STRATEGIES[k].owns_loop]
    if len(owners) > 1:
        errs.append(f"{' and '.join(owners)} each own the denoising loop; use one")
    for k, d in plan.degrees:
        errs += STRATEGIES[k].check(d, plan, model, sc)
    n = row_slices(plan)
    if n > 1:
        errs += split_errors(n, plan, model)
    return errs
