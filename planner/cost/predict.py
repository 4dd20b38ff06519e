"""predict(): one plan's latency, memory and exactness on one scenario and cluster.

    latency = text encoders + denoising loop + VAE decode     (scope "pipeline")
            = denoising loop                                   (scope "denoise")

The denoising loop comes from the plan's loop (planner/cost/engine.py `denoise`). A plan
with step segments (`cfg=2 | 15-20: hybridiff=2 k=5`) runs each segment's plan for its
steps, plus the cost of re-sharding the latents at every switch. `solvers` cut pipeline
stages and split tokens over unequal GPUs (engine.Solvers: exact DPs by default, the
integer programs where planner/ilp injects them).
"""
from __future__ import annotations

import dataclasses

from ..cluster import Cluster, build_cluster
from ..hardware import Profile
from ..layout import Layout, layout_for
from ..memo import per_object
from ..plan import SERIAL, Plan
from ..spec import Breakdown, ModelSpec, Prediction, Scenario
from ..strategies import STRATEGIES, approx_steps, images_per_rank, is_exact, samples_per_rank
from ..timeline import LoopTime
from . import compute, measured
from .engine import EXACT, Engine, Solvers, denoise
from .memory import memory


def predict(plan: Plan, model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile,
            layout: Layout | None = None, detail: bool = False, solvers: Solvers = EXACT) -> Prediction:
    """Assumes the plan is legal (planner/legality.py)."""
    if plan.segments:
        return _predict_segments(plan, model, sc, cluster, profile, layout, detail, solvers)
    layout = layout or layout_for(plan)
    eng = Engine(model, sc, cluster, profile, plan, layout, solvers)
    den = denoise(eng, detail)
    text_s, vae_s = _components(eng)
    mem = memory(eng, den.rank_blocks)
    return _prediction(plan, eng, den, text_s, vae_s, mem, detail)


def _components(eng: Engine) -> tuple[float, float]:
    """Text encoders (each rank encodes the prompts of its branches) and VAE decode
    (one rank per image group decodes its images)."""
    sc, plan = eng.sc, eng.plan
    if sc.scope == "denoise":
        return 0.0, 0.0
    prompts = samples_per_rank(plan, sc.branches)
    args = (sc.elem_bytes, sc.dtype, eng.gpu, eng.profile, sc.compiled)
    # measured where the profile has them (`profile --model`): roofline x measured / roofline
    ratio = lambda stage: measured.component_ratio(stage, eng.model, eng.profile, eng.gpu, sc)
    text = sum(compute.component_time(e, prompts, *args) * ratio(e) for e in eng.model.text_encoders)
    vae = compute.component_time(eng.model.vae_decoder, images_per_rank(plan, sc.batch), *args) * \
        ratio(eng.model.vae_decoder)
    return text, vae


def _prediction(plan, eng, den: LoopTime, text_s, vae_s, mem, detail) -> Prediction:
    bd = Breakdown(compute=den.compute, comm=den.comm, bubble=den.bubble, text_encoders=text_s,
                   vae=vae_s, other=den.host, warmup=den.warmup, comm_dims=dict(den.comm_dims))
    capacity = eng.cluster.usable_memory(plan.gpus)
    return Prediction(
        plan=plan, latency_s=text_s + den.total + vae_s, step_s=den.steady_step,
        serial_latency_s=serial_latency(eng.model, eng.sc, eng.cluster, eng.profile),
        memory_bytes=mem.total(), capacity_bytes=capacity, exact=is_exact(plan), breakdown=bd,
        memory=mem, comm_bytes_per_step=den.comm_bytes_per_step, notes=list(den.notes),
        timeline=den.timeline if detail else None,
        stages=tuple((c.start, c.stop) for c in den.cuts or ()),
        approx_steps=approx_steps(plan, eng.sc.steps), fixed_s=text_s + den.fixed + vae_s,
        block_times=measured.describe(eng.model, eng.profile, eng.gpu, eng.sc) if eng.split is None else "")


def serial_gpu(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile) -> str:
    """The GPU id "one GPU" means: the cluster's GPU, or on a mixed cluster its fastest for
    this scenario (over rank 0's, a speed-up could exceed the GPU count)."""
    if cluster.uniform:
        return cluster.gpus[0].id
    ids = sorted({g.id for g in cluster.gpus})
    return min(ids, key=lambda g: serial_latency(model, sc, build_cluster(g, 1), profile))


def serial_latency(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile) -> float:
    """One GPU running the whole scenario: the speed-up reference (serial_gpu: on a mixed
    cluster, its fastest GPU alone). Cached on the model (planner/memo.py; the cluster is
    part of the key by identity)."""
    cache = per_object(model)
    key = ("serial_latency", sc, cluster, profile)
    if key not in cache:
        if cluster.uniform:
            eng = Engine(model, sc, cluster, profile, SERIAL, layout_for(SERIAL))
            text_s, vae_s = _components(eng)
            cache[key] = text_s + denoise(eng, False).total + vae_s
        else:
            one = build_cluster(serial_gpu(model, sc, cluster, profile), 1)
            cache[key] = serial_latency(model, sc, one, profile)
    return cache[key]


def reshard_s(eng: Engine) -> float:
    """Seconds to leave `eng`'s plan between two steps so that another plan can take
    over: the next plan needs the whole latent on every rank (it slices its own share
    locally, for free). Sequence and patch splits keep their latent slices until the end
    of the loop (xDiT gathers once, after the last step), so they all-gather them; a
    PipeFusion pipeline's last stage holds the updated latent and broadcasts it to the
    other stages; CFG, data, tensor, AsyncDiff and step-parallel plans already hold it
    whole on every rank (Strategy.leave_comm). Stale K/V and activations are not moved: a strategy switched in
    rebuilds them in its own synchronous warm-up steps, which its run already pays.
    Used by _predict_segments and by planner/ilp/schedule_modes.py, so that the schedule
    integer program and predict() cost a switch the same way."""
    return sum(reshard_dims(eng).values())


def reshard_dims(eng: Engine) -> dict[str, float]:
    """reshard_s by parallel dimension."""
    latent = eng.model.latent_elems() * images_per_rank(eng.plan, eng.sc.batch) * eng.sc.elem_bytes
    out = {}
    for k, d in eng.plan.degrees:
        kind = STRATEGIES[k].leave_comm(d)
        if kind is not None:
            out[k] = eng.collective(kind, k, latent)
    return out


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
    for seg in plan.segments:
        add(plan.base(), seg.first - step)
        add(seg.plan, seg.last - seg.first + 1)
        step = seg.last + 1
    add(plan.base(), steps - step + 1)
    return runs


def _predict_segments(plan, model, sc, cluster, profile, layout, detail, solvers) -> Prediction:
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
        eng = Engine(model, one, cluster, profile, p, layout_for(p, order), solvers)
        parts.append((eng, denoise(eng, False)))
    switches = [reshard_dims(e) for e, _ in parts[:-1]]
    base_eng = Engine(model, sc, cluster, profile, plan.base(), layout_for(plan.base(), order), solvers)
    total = sum(d.total for _, d in parts) + sum(sum(s.values()) for s in switches)
    comm: dict[str, float] = {}
    for part in [d.comm_dims for _, d in parts] + switches:
        for dim, secs in part.items():
            comm[dim] = comm.get(dim, 0.0) + secs
    den = LoopTime(total=total, steady_step=total / sc.steps, compute=sum(d.compute for _, d in parts),
                   comm_dims=comm, host=sum(d.host for _, d in parts), warmup=sum(d.warmup for _, d in parts),
                   bubble=sum(d.bubble for _, d in parts), fixed=sum(d.fixed for _, d in parts),
                   comm_bytes_per_step=max(d.comm_bytes_per_step for _, d in parts),
                   notes=[f"steps {n}: {p}" for p, n in runs])
    text_s, vae_s = _components(base_eng)
    mems = [memory(e, d.rank_blocks) for e, d in parts]
    mem = max(mems, key=lambda m: m.total())
    pred = _prediction(plan, base_eng, den, text_s, vae_s, mem, detail)
    if detail:
        pred.timeline = denoise(base_eng, True).timeline
    return pred
