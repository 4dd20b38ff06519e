"""A plan's run from the planner's side: build the job the ranks execute, predict it, run
it and the serial baseline, and compare.

    hw_profile()            planner.profile_io.local_profile() when `cli.py profile` has
                            written one, else planner.hardware.default_profile()
    local_cluster(n, ...)   this machine as the planner sees it: build_cluster("cpu", n,
                            intra="shm") on CPU, the GPU id on CUDA
    prepare(...)            legality (planner.legality.plan_errors + the executor's own
                            checks), the prediction, and the Job -- with the pipeline cuts
                            predict() chose for every pipelined segment
    measure(prep, ...)      launch the ranks, run the serial baseline here, Measurement
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from planner.cluster import Cluster, build_cluster
from planner.errors import UsageError
from planner.plan import Plan, parse_plan
from planner.spec import ModelSpec, Prediction, Scenario
from planner.strategies import STRATEGIES

from .legality import job_errors


def hw_profile(path: str | None = None):
    from planner.hardware import default_profile
    try:
        from planner import profile_io
    except ImportError:
        return default_profile()
    if path:
        return profile_io.load_profile(path)
    local = getattr(profile_io, "local_profile", lambda: None)()
    return local if local is not None else default_profile()


def local_cluster(nproc: int, backend: str = "gloo", gpu: str | None = None) -> Cluster:
    if backend == "nccl":
        return build_cluster(gpu, nproc)
    return build_cluster("cpu", nproc, intra="shm")


@dataclass
class Prepared:
    job: "Job"
    plan: Plan
    model: ModelSpec
    sc: Scenario
    cluster: Cluster
    profile: object
    prediction: Prediction


def prepare(model: ModelSpec, sc: Scenario, plan_text: str, cluster: Cluster, profile, *, guidance: float = 4.5,
            seed: int = 0, repeats: int = 3, warmup_runs: int = 1, tolerance: float = 0.0,
            order: tuple[str, ...] = (), diffusers: dict | None = None) -> Prepared:
    """order: layout order of the plan's dimensions, inner -> outer (default xDiT's); the
    ranks form their groups and the prediction lays the plan out in it. diffusers: the
    Job fields of a diffusers model (scale, weights, prompt, negative_prompt, decode); the
    ModelSpec is then the one executor/diffusers/spec.py made for that scale."""
    from planner.cost.predict import predict
    from planner.layout import XDIT_ORDER, ordered_layout
    from planner.legality import plan_errors

    from .runtime import Job
    plan = parse_plan(plan_text)
    job = Job(model=model.id, plan=str(plan), height=sc.height, width=sc.width, frames=sc.frames, steps=sc.steps,
              batch=sc.batch, text_tokens=sc.text_tokens if sc.text_tokens is not None else model.facts.text_tokens,
              cfg=sc.cfg, guidance=guidance, dtype=sc.dtype, seed=seed, repeats=repeats,
              warmup_runs=warmup_runs, tolerance=tolerance, order=tuple(order), **(diffusers or {}))
    errs = plan_errors(plan, model, sc, cluster.n) + job_errors(job.model, job.height, job.frames, plan,
                                                                 scale=job.scale, width=job.width,
                                                                 text_tokens=job.text_tokens, weights=job.weights)
    if errs:
        raise UsageError(f"plan '{plan}': {errs[0]}")
    pred = predict(plan, model, sc, cluster, profile, layout=ordered_layout(plan, tuple(order) or XDIT_ORDER))
    # the cuts the planner chose, for every segment that pipelines blocks
    segs = [(plan.base(), sc.steps)] + [(s.plan, s.steps) for s in plan.segments]
    for p, n in segs:
        if any(STRATEGIES[k].stage_cuts for k in p.keys):
            cut = pred.stages if p == plan else predict(p, model, dataclasses.replace(sc, steps=n), cluster, profile,
                                                        layout=ordered_layout(p, tuple(order) or XDIT_ORDER)).stages
            job.stages[str(p)] = [list(c) for c in cut]
    return Prepared(job, plan, model, sc, cluster, profile, pred)


def run_serial(job: "Job", backend: str = "gloo") -> dict:
    """The serial baseline in this process: one thread on CPU, or the first GPU."""
    import torch

    from .runtime import World, run_job
    torch.set_num_threads(1)
    return run_job(dataclasses.replace(job, plan="serial", stages={}, decode=False),
                   World(device="cuda:0" if backend == "nccl" else "cpu"))


def measure(prep: Prepared, nproc: int, backend: str = "gloo", serial: dict | None = None,
            timeout_s: float = 60.0) -> "Measurement":
    """Run the plan on nproc ranks and the serial baseline (unless given); compare."""
    from .launch import in_torchrun, launch, run_here
    from .measure import Measurement, fidelity
    job = prep.job
    ranks = run_here([job], backend, timeout_s) if in_torchrun() else launch([job], nproc, backend, timeout_s)
    if ranks is None:          # a non-zero torchrun rank: rank 0 reports
        return None
    ranks = ranks[0]
    serial = serial or run_serial(job, backend)
    p = prep.prediction
    return Measurement(
        plan=job.plan, nproc=nproc, model=job.model, backend=backend, steps=job.steps, repeats=job.repeats,
        latencies_s=ranks[0]["times"], serial_latencies_s=serial["times"],
        predicted_latency_s=p.latency_s, predicted_speedup=p.speedup, predicted_serial_s=p.serial_latency_s,
        memory_peak_mb=[r["memory_peak_mb"] for r in ranks], memory_method=ranks[0]["memory_method"],
        comm_bytes=[r["comm_bytes"] for r in ranks], comm_seconds=[r["comm_seconds"] for r in ranks],
        fidelity=fidelity(ranks[0]["output"], serial["output"]),
        exact=p.exact, profile=getattr(prep.profile, "name", "?"),
        predicted_comm_bytes_per_step=p.comm_bytes_per_step, predicted_memory_gb=p.memory_bytes / 2**30,
        extra=ranks[0]["extra"], model_info=ranks[0].get("model", {}),
        components=_components(ranks, serial), pixels=ranks[0].get("pixels"))


def _components(ranks: list[dict], serial: dict) -> dict:
    """Seconds of the stages outside the denoising loop (diffusers models): the text
    encoders (slowest rank; every rank encodes the prompt) and the VAE decode (rank 0)."""
    out = {}
    text = [r["component_s"]["text_encoders"] for r in ranks if "text_encoders" in r.get("component_s", {})]
    if text:
        out["text_encoders_s"] = max(text)
        out["serial_text_encoders_s"] = serial.get("component_s", {}).get("text_encoders", 0.0)
    if "vae_decode" in ranks[0].get("component_s", {}):
        out["vae_decode_s"] = ranks[0]["component_s"]["vae_decode"]
    return out
