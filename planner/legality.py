"""Is a plan legal for this model, scenario and cluster? One list of reasons if not."""
from __future__ import annotations

from .plan import Plan
from .spec import ModelSpec, Scenario
from .strategies import STRATEGIES
from .strategies.hybridiff import cfg_phase


def plan_errors(plan: Plan, model: ModelSpec, sc: Scenario, gpus: int) -> list[str]:
    errs: list[str] = []
    if plan.gpus != gpus:
        errs.append(f"plan '{plan}' uses {plan.gpus} GPUs but the cluster has {gpus}; "
                    f"the degrees must multiply to the GPU count")
    for seg in plan.schedule:
        if seg.last > sc.steps:
            errs.append(f"schedule segment '{seg}' must end by the last step ({sc.steps})")
        if "hybridiff" in seg.plan.keys:
            k, span = seg.plan.get("k"), seg.last - seg.first + 1
            if k is not None and k > span:
                errs.append(f"schedule segment '{seg}': hybridiff k={k} must be at most the segment's {span} "
                            f"step{'s' if span > 1 else ''}")
            cfg = cfg_phase(seg.plan)
            if seg.first == 1 or str(plan.plan_at(seg.first - 1)) != str(cfg):
                where = "it cannot start at step 1" if seg.first == 1 else f"step {seg.first - 1} must run '{cfg}'"
                errs.append(f"schedule segment '{seg}': Hybridiff's window opens out of its CFG-parallel "
                            f"phase '{cfg}', so {where}")
    for p in plan.plans():
        errs += _single(p, model, sc)
    return list(dict.fromkeys(errs))


def _single(plan: Plan, model: ModelSpec, sc: Scenario) -> list[str]:
    errs = []
    keys = plan.keys
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if b not in STRATEGIES[a].combines_with or a not in STRATEGIES[b].combines_with:
                errs.append(f"'{a}' and '{b}' cannot be combined in one plan")
    schedulers = [k for k in keys if STRATEGIES[k].driver]
    if len(schedulers) > 1:
        errs.append(f"{' and '.join(schedulers)} each own the step schedule; use one")
    for k, d in plan.degrees:
        errs += STRATEGIES[k].check(d, plan, model, sc)
    return errs
