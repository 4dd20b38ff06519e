"""predict(): one plan's latency, memory and exactness on one scenario and cluster.

    latency = text encoders + denoising loop + VAE decode     (scope "pipeline")
            = denoising loop                                   (scope "denoise")

The denoising loop comes from the plan's schedule (planner/cost/engine.py). A plan with
a step schedule (`cfg=2 | 15-20: hybridiff=2 k=5`) runs each segment's plan for its
steps, plus the cost of re-sharding the latents at every switch.
"""
from __future__ import annotations

import dataclasses

from ..cluster import Cluster
from ..hardware import Profile
from ..layout import Layout, layout_for
from ..plan import Plan
from ..spec import Breakdown, ModelSpec, Prediction, Scenario
from ..strategies import STRATEGIES, approx_steps, is_exact
from . import compute
from .engine import Denoise, Engine, schedule
from .memory import memory


def predict(plan: Plan, model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile,
            layout: Layout | None = None, detail: bool = False) -> Prediction:
    """Assumes the plan is legal (planner/legality.py)."""
    if plan.schedule:
        return _predict_schedule(plan, model, sc, cluster, profile, layout, detail)
    layout = layout or layout_for(plan)
    eng = Engine(model, sc, cluster, profile, plan, layout)
    den = schedule(eng, detail)
    text_s, vae_s = _stages(eng)
    mem = memory(eng, den.rank_blocks)
    return _prediction(plan, eng, den, text_s, vae_s, mem, detail)


def _stages(eng: Engine) -> tuple[float, float]:
    """Text encoders (each rank encodes the prompts of its branches) and VAE decode
    (one rank per image group decodes its images)."""
    sc, plan = eng.sc, eng.plan
    if sc.scope == "denoise":
        return 0.0, 0.0
    split = 1
    for k, d in plan.degrees:
        split *= STRATEGIES[k].batch_split(d)
    prompts = sc.branches / split
    args = (sc.elem_bytes, sc.dtype, eng.gpu, eng.profile, sc.compiled)
    text = sum(compute.stage_time(e, prompts, *args) for e in eng.model.text_encoders)
    vae = compute.stage_time(eng.model.vae_decoder, sc.batch / plan.degree("dp"), *args)
    return text, vae


def _prediction(plan, eng, den: Denoise, text_s, vae_s, mem, detail) -> Prediction:
    bd = Breakdown(compute=den.compute, comm=den.comm, bubble=den.bubble, text_encoders=text_s,
                   vae=vae_s, other=den.other)
    capacity = min(eng.cluster.gpus[r].memory_bytes for r in range(plan.gpus))
    return Prediction(
        plan=str(plan), latency_s=text_s + den.total + vae_s, step_s=den.steady_step,
        serial_latency_s=serial_latency(eng.model, eng.sc, eng.cluster, eng.profile),
        memory_bytes=mem.total(), capacity_bytes=capacity, exact=is_exact(plan), breakdown=bd,
        memory=mem, comm_bytes_per_step=den.comm_bytes_per_step, notes=list(den.notes),
        timeline=den.timeline if detail else None,
        stages=tuple((c.start, c.stop) for c in den.cuts or ()),
        approx_steps=approx_steps(plan, eng.sc.steps))


_SERIAL: dict = {}


def serial_latency(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile) -> float:
    """One GPU (rank 0's) running the whole scenario: the speed-up reference.
    Cached by object identity: hashing a ModelSpec's thousand ops would cost more than
    the evaluation."""
    key = (id(model), sc, id(cluster), profile)
    hit = _SERIAL.get(key)
    if hit is None or hit[0] is not model or hit[1] is not cluster:
        eng = Engine(model, sc, cluster, profile, Plan(), layout_for(Plan()))
        text_s, vae_s = _stages(eng)
        hit = (model, cluster, text_s + schedule(eng, False).total + vae_s)
        _SERIAL[key] = hit
    return hit[2]


def _predict_schedule(plan, model, sc, cluster, profile, layout, detail) -> Prediction:
    """Each segment's plan for its steps, the base plan for the rest, plus switches."""
    runs: list[tuple[Plan, int]] = []
    step = 1
    for seg in plan.schedule:
        if seg.first > step:
            runs.append((plan.base(), seg.first - step))
        runs.append((seg.plan, seg.last - seg.first + 1))
        step = seg.last + 1
    if step <= sc.steps:
        runs.append((plan.base(), sc.steps - step + 1))
    parts = []
    for p, n in runs:
        one = dataclasses.replace(sc, steps=n)
        eng = Engine(model, one, cluster, profile, p, layout_for(p))
        parts.append((eng, schedule(eng, False)))
    # switching re-shards the latents (and nothing else: stale buffers restart with their
    # strategy's warm-up, which its own segment already pays)
    switches = len(runs) - 1
    base_eng = Engine(model, sc, cluster, profile, plan.base(), layout or layout_for(plan.base()))
    latent = model.latent_elems() * sc.branches * sc.elem_bytes
    switch_s = switches * base_eng.p2p_time([(0, cluster.n - 1)], latent)
    total = sum(d.total for _, d in parts) + switch_s
    den = Denoise(total=total, steady_step=total / sc.steps,
                  compute=sum(d.compute for _, d in parts), comm=sum(d.comm for _, d in parts) + switch_s,
                  other=sum(d.other for _, d in parts),
                  comm_bytes_per_step=max(d.comm_bytes_per_step for _, d in parts),
                  notes=[f"steps {n}: {p}" for p, n in runs])
    text_s, vae_s = _stages(base_eng)
    mems = [memory(e, d.rank_blocks) for e, d in parts]
    mem = max(mems, key=lambda m: m.total())
    pred = _prediction(plan, base_eng, den, text_s, vae_s, mem, detail)
    if detail:
        pred.timeline = schedule(Engine(model, sc, cluster, profile, plan.base(), layout_for(plan.base())),
                                 True).timeline
    return pred
