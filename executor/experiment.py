"""A plan's run from the planner's side: build the job the ranks execute, predict it, run
it and the serial baseline, and compare.

    hw_profile()            planner.profile_io.local_profile() when `cli.py profile` has
                            written one, else planner.hardware.default_profile()
    local_cluster(n, ...)   this machine as the planner sees it: build_cluster("cpu", n,
                            intra="shm") on CPU, the GPU id on CUDA
    scaled_run(model, scale, ...)  the ModelSpec, Scenario and Job fields of a model's
                            diffusers classes at --scale tiny | small | full with random
                            weights (what `run --model ID --scale S` predicts with)
    prepare(...)            legality (planner.legality.plan_errors + the executor's own
                            checks), the prediction, and the Job -- with the pipeline cuts
                            predict() chose for every pipelined segment
    measure(prep, ...)      launch the ranks, run the serial baseline here, Measurement
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.cluster import Cluster, build_cluster
from planner.errors import UsageError
from planner.plan import Plan, parse_plan
from planner.spec import ModelSpec, Prediction, Scenario
from planner.strategies import STRATEGIES

from .legality import job_errors

if TYPE_CHECKING:      # torch-side modules, imported where they run
    from .measure import Measurement
    from .runtime import Job


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


def scaled_run(model_id: str, scale: str, *, height: int | None = None, width: int | None = None,
               frames: int | None = None, steps: int | None = None, batch: int = 1, cfg: bool | None = None,
               text_tokens: int | None = None, dtype: str = "fp32",
               prompt: str = "a red cube") -> tuple[ModelSpec, Scenario, dict]:
    """(ModelSpec, Scenario, Job fields) of `model_id`'s diffusers classes at `scale` with
    random weights: the scale's scenario defaults (executor/diffusers/scale.py) where a size
    is not given, and the zoo's builders on the shrunk configs, as `cli.py run` does for
    --model ID --scale S. For tests and benchmarks; needs torch and diffusers (the block
    names are checked on the meta device)."""
    from planner import zoo

    from .diffusers import configs
    from .diffusers.legality import latent_frames
    from .diffusers.options import _text_tokens
    from .diffusers.scale import scaled_configs, scenario_defaults
    from .diffusers.spec import run_spec
    f = zoo.facts(model_id)
    d = scenario_defaults(f, scale)
    h = height or (d.height if d else f.default_height)
    w = width or (d.width if d else f.default_width)
    fr = frames or (d.frames if d else f.default_frames)
    text = text_tokens or (_text_tokens(model_id, d.text) if d else f.text_tokens)
    sc = Scenario(model=model_id, height=h, width=w, frames=fr, steps=steps or (d.steps if d else f.default_steps),
                  batch=batch, cfg=f.cfg_default if cfg is None else cfg, text_tokens=text, dtype=dtype,
                  scope="denoise")
    pc = scaled_configs(configs.pipeline_configs(model_id), scale, text, latent_frames(model_id, fr))
    spec, _ = run_spec(zoo.build(model_id, h, w, fr, text), pc, (h, w), scale, fr, text)
    return spec, sc, {"scale": scale, "prompt": prompt, "negative_prompt": "", "decode": False}


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
            order: tuple[str, ...] = (), diffusers: dict) -> Prepared:
    """order: layout order of the plan's dimensions, inner -> outer (default xDiT's); the
    ranks form their groups and the prediction lays the plan out in it. diffusers: the
    Job fields of the run (scale, weights, prompt, negative_prompt, decode, cp); `model` is
    the ModelSpec executor/diffusers/spec.py made for that scale (scaled_run)."""
    from planner.cost.predict import predict
    from planner.layout import XDIT_ORDER, ordered_layout
    from planner.legality import plan_errors

    from .runtime import Job
    plan = parse_plan(plan_text)
    job = Job(model=model.id, plan=str(plan), height=sc.height, width=sc.width, frames=sc.frames, steps=sc.steps,
              batch=sc.batch, text_tokens=sc.text_tokens if sc.text_tokens is not None else model.facts.text_tokens,
              cfg=sc.cfg, guidance=guidance, dtype=sc.dtype, seed=seed, repeats=repeats,
              warmup_runs=warmup_runs, tolerance=tolerance, order=tuple(order), **diffusers)
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
