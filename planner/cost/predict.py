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


def serial_gpu(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile) -> str:
    """The GPU id "one GPU" means: the cluster's GPU, or on a mixed cluster its fastest for
    this scenario (over rank 0's, a speed-up could exceed the GPU count)."""
    if cluster.uniform:
        return cluster.gpus[0].id
    from ..cluster import build_cluster
    ids = sorted({g.id for g in cluster.gpus})
    return min(ids, key=lambda g: serial_latency(model, sc, build_cluster(g, 1), profile))


def serial_latency(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile) -> float:
    """One GPU running the whole scenario: the speed-up reference (serial_gpu: on a mixed
    cluster, its fastest GPU alone). Cached by object identity: hashing a ModelSpec's
    thousand ops would cost more than the evaluation."""
    key = (id(model), sc, id(cluster), profile)
    if not cluster.uniform:
        hit = _SERIAL.get(key)
        if hit is None or hit[0] is not model or hit[1] is not cluster:
            from ..cluster import build_cluster
            one = build_cluster(serial_gpu(model, sc, cluster, profile), 1)
            hit = _SERIAL[key] = (model, cluster, serial_latency(model, sc, one, profile))
        return hit[2]
    hit = _SERIAL.get(key)
    if hit is None or hit[0] is not model or hit[1] is not cluster:
        eng = Engine(model, sc, cluster, profile, Plan(), layout_for(Plan()))
        text_s, vae_s = _stages(eng)
        hit = (model, cluster, text_s + schedule(eng, False).total + vae_s)
        _SERIAL[key] = hit
    return hit[2]


# Plan keys that leave each rank with a slice of the latent between steps.
LATENT_SPLIT_KEYS = ("ulysses", "ring", "distrifusion", "sync_patch", "naive_patch", "dsp")


def reshard_s(eng: Engine) -> float:
    """Seconds to leave `eng`'s plan between two steps so that another plan can take
    over: the next plan needs the whole latent on every rank (it slices its own share
    locally, for free). Sequence and patch splits keep their latent slices until the end
    of the loop (xDiT gathers once, after the last step), so they all-gather them; a
    PipeFusion pipeline's last stage holds the updated latent and broadcasts it to the
    other stages; CFG, data, tensor, AsyncDiff and step-parallel plans already hold it
    whole on every rank. Stale K/V and activations are not moved: a strategy switched in
    rebuilds them in its own synchronous warm-up steps, which its run already pays.
    Used by _predict_schedule and by planner/ilp/schedule_modes.py, so that the schedule
    integer program and predict() cost a switch the same way."""
    latent = eng.model.latent_elems() * eng.sc.batch / eng.plan.degree("dp") * eng.sc.elem_bytes
    t = sum(eng.collective("all_gather", k, latent) for k in LATENT_SPLIT_KEYS if eng.plan.degree(k) > 1)
    if eng.plan.degree("pipefusion") > 1:
        t += eng.collective("broadcast", "pipefusion", latent)
    return t


def schedule_runs(plan: Plan, steps: int) -> list[tuple[Plan, int]]:
    """(plan, steps) of each run of a schedule plan, in order; neighbouring runs of the
    same plan are one run (no switch between them, one warm-up)."""
    runs: list[tuple[Plan, int]] = []
    step = 1

    def add(p: Plan, n: int):
        if runs and runs[-1][0] == p:
            runs[-1] = (p, runs[-1][1] + n)
        elif n > 0:
            runs.append((p, n))
    for seg in plan.schedule:
        add(plan.base(), seg.first - step)
        add(seg.plan, seg.last - seg.first + 1)
        step = seg.last + 1
    add(plan.base(), steps - step + 1)
    return runs


def _predict_schedule(plan, model, sc, cluster, profile, layout, detail) -> Prediction:
    """Each run's plan for its steps (its warm-up included: a stale-activation strategy
    switched in must warm up again), plus re-sharding the latents at every switch.
    A run is costed as that plan's own denoising loop over the run's steps, so a run's
    pipeline fill and drain are inside it. `layout` orders the dimensions of every run
    (dimensions a run does not have are skipped)."""
    order = tuple(layout.order) if layout is not None else ()   # layout_for fills in xDiT's order
    runs = schedule_runs(plan, sc.steps)
    parts = []
    for p, n in runs:
        one = dataclasses.replace(sc, steps=n)
        eng = Engine(model, one, cluster, profile, p, layout_for(p, order))
        parts.append((eng, schedule(eng, False)))
    switch_s = sum(reshard_s(e) for e, _ in parts[:-1])
    base_eng = Engine(model, sc, cluster, profile, plan.base(), layout_for(plan.base(), order))
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
        pred.timeline = schedule(base_eng, True).timeline
    return pred
