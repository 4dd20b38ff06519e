"""`profile --model ID`: time a model's own blocks, text encoders and VAE decode on this device.

    request = ModelRequest(model="sd3-medium", scale="small", ...)
    job = check_model(request, dtype)           # every check, before anything is measured
    table = measure_model(job, device, dtype, preset, progress)   # profile_io's block table

The model is the executor's (executor/diffusers): the diffusers classes built from the
zoo's configs at --scale (random weights) or a --weights folder, its denoiser presented
as the planner's blocks (the names and order of planner/zoo's ModelSpec of the same
configs). Only the first block of each distinct class is timed (planner/cost/compute.py
block_classes: a DiT's layers repeat), at a few token-shard sizes: the whole latent and
1/2, 1/4, 1/8 of its split units (image rows, video frames) on this process with a
serial ctx, so attention runs over the slice's own tokens (executor/context.py Ctx, as
naive_patch runs a slice). The shard sizes are those the executor can run (a U-Net's
slices must stay whole through its downsampling; videos split by whole latent frames);
factorised spatial/temporal attention (Latte) is measured whole only, because a frame
slice there splits attention groups, which the planner's shard does not describe.
Each block runs on a fresh copy of its input state; timing is profiler/timing.time_op
(warm-up, median of repeats, CUDA events and synchronisation on GPUs). Text encoders
run their forward on one prompt of the token count the planner's component has; the
VAE decode is the pipeline's (executor/diffusers/pipeline.py decode) of the scenario's
images.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass, field

from planner.errors import UsageError

from .timing import TimingConfig

SHARDS = (1, 2, 4, 8)          # token-shard divisors measured (Vidur-style: a few shapes per block)
TIMING = {"full": TimingConfig(warmup=2, repeats=7, target_s=0.02),
          "quick": TimingConfig(warmup=1, repeats=3, target_s=0.005),
          "tiny": TimingConfig(warmup=1, repeats=2, target_s=0.001)}
PROMPT = "a photograph of an astronaut riding a horse on the moon"


@dataclass
class ModelRequest:
    """What `profile --model` was asked (None: the default of the scale, as `run` has it)."""

    model: str
    scale: str | None = None
    weights: str | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    batch: int | None = None
    text_tokens: int | None = None


@dataclass
class ModelJob:
    """A checked request: the configs that will be built and the planner's view of them."""

    model: str
    scale: str
    weights: str
    height: int
    width: int
    frames: int                 # video frames (1 for images)
    latent_frames: int
    text_tokens: int
    batch: int
    cfg: bool
    configs: object             # executor.diffusers.configs.PipelineConfigs (scaled, or the folder's)
    spec: object                # planner ModelSpec of those configs at this shape
    shards: tuple[int, ...]     # token-shard divisors the executor can run here
    encoders: tuple = ()        # (pipeline component name, planner Component) of each text encoder
    notes: list = field(default_factory=list)

    @property
    def branches(self) -> int:
        return self.batch * (2 if self.cfg else 1)


def config_hash(pc) -> str:
    """sha256 of the component configs that are built (the scaled ones, or a folder's)."""
    comps = {n: [lib, cls, cfg] for n, (lib, cls, cfg) in sorted(pc.components.items())}
    return "sha256:" + hashlib.sha256(json.dumps(comps, sort_keys=True, default=str).encode()).hexdigest()


def check_model(req: ModelRequest, dtype: str) -> ModelJob:
    """Refuse what cannot be profiled (UsageError, one line) before anything is measured."""
    from types import SimpleNamespace

    from executor.diffusers import configs, options
    from executor.diffusers.legality import arch_errors, latent_frames
    from executor.diffusers.scale import scaled_configs
    from executor.diffusers.spec import zoo_pipeline
    from executor.diffusers.weights import folder_configs
    from planner import inputs, zoo
    from planner.limits import show
    from planner.plan import parse_plan
    from planner.zoo import pipelines

    if req.model not in zoo.model_ids():
        raise UsageError(f"--model {show(req.model)}: unknown; known: {', '.join(configs.model_ids())} "
                         f"(the zoo models with an executor adapter; `cli.py models` lists the zoo)")
    if not options.is_model(req.model):
        raise UsageError(f"--model {show(req.model)}: no executor adapter builds its denoiser class yet, so it cannot be "
                         f"profiled; accepted: {', '.join(configs.model_ids())}")
    ns = SimpleNamespace(model=req.model, scale=req.scale, weights=req.weights, cp="auto", out=None,
                         height=req.height, width=req.width, frames=req.frames, steps=None,
                         text_tokens=req.text_tokens, prompt=PROMPT, negative_prompt="")
    options.check(ns)                    # scale, weights folder; the scale's default sizes
    full, sc = inputs.scenario(req.model, height=ns.height, width=ns.width, frames=ns.frames, batch=req.batch,
                               text_tokens=ns.text_tokens, dtype=dtype, scope="pipeline")
    text_tokens = sc.text_tokens or full.facts.text_tokens
    errs = arch_errors(req.model, ns.scale, sc.height, sc.width, sc.frames, text_tokens, parse_plan("serial"),
                       ns.weights or "")
    if errs:
        raise UsageError(f"--model {req.model} at {sc.height}x{sc.width}: {errs[0]}")
    spec, _, _ = options.model_spec(ns, full)          # the ModelSpec `run` predicts this model with
    lf = latent_frames(req.model, sc.frames)
    units = lf if full.facts.arch.startswith("video") else spec.latent_rows()
    shards = [1]
    if not full.facts.factorised_attention:
        shards += [n for n in SHARDS[1:] if units % n == 0 and not arch_errors(
            req.model, ns.scale, sc.height, sc.width, sc.frames, text_tokens, parse_plan(f"naive_patch={n}"),
            ns.weights or "")]
    pc = folder_configs(ns.weights, req.model) if ns.weights else \
        scaled_configs(configs.pipeline_configs(req.model), ns.scale, text_tokens, lf)
    names = [n for n, _ in pipelines.kind_of(zoo_pipeline(pc)).encoders]
    return ModelJob(req.model, ns.scale, ns.weights or "", sc.height, sc.width, sc.frames, lf, text_tokens,
                    sc.batch, sc.cfg, pc, spec, tuple(shards), tuple(zip(names, spec.text_encoders)))


def check_memory(job: ModelJob, device: str, dtype: str) -> None:
    """Refuse a model this machine cannot hold (the planner's one-GPU memory estimate)."""
    from planner.cluster import build_cluster
    from planner.cost.predict import predict
    from planner.hardware import default_profile
    from planner.plan import parse_plan
    from planner.spec import Scenario
    sc = Scenario(job.model, job.height, job.width, job.frames, 1, job.batch, job.cfg, job.text_tokens, dtype)
    need = predict(parse_plan("serial"), job.spec, sc, build_cluster("cpu", 1, intra="shm"),
                   default_profile()).memory_bytes
    have = _available_bytes(device)
    if have is not None and need > have:
        raise UsageError(f"--model {job.model} --scale {job.scale} at {job.height}x{job.width} needs about "
                         f"{need / 2**30:.1f} GB and this {device} has {have / 2**30:.1f} GB available; use a "
                         f"smaller --scale or size")


def _available_bytes(device: str) -> float | None:
    if device == "cuda":
        import torch
        return float(torch.cuda.mem_get_info()[0])
    from planner.limits import available_memory
    return available_memory()


def _fresh(state):
    """A copy of a block's input state that the block may change (U-Net blocks push and
    pop the skip list)."""
    c = copy.copy(state)
    c.skips = list(state.skips)
    return c


def _bar(total: int, enabled: bool, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, file=sys.stderr, disable=not enabled, desc=desc, unit="case", dynamic_ncols=True,
                leave=False)


def measure_model(job: ModelJob, device: str, gpu_id: str, dtype: str, preset: str = "full",
                  progress: bool = True, argv: list[str] | None = None) -> dict:
    """Time the job's blocks, text encoders and VAE decode; the profile_io block table."""
    import time

    import torch

    from executor.context import Ctx
    from executor.diffusers.denoiser import State
    from executor.diffusers.families import build_denoiser
    from executor.diffusers.pipeline import Pipeline
    from planner.cost import compute, measured

    from .compute import _torch_dtype
    from .timing import time_op

    timing = TIMING[preset]
    spec = job.spec
    firsts = sorted(set(compute.block_classes(spec)))
    counts = {c: compute.block_classes(spec).count(c) for c in firsts}
    sigs = measured.signatures(spec)
    t0 = time.perf_counter()
    bar = _bar(1 + len(job.shards) * len(firsts) + len(job.encoders) + 1, progress, f"profile {job.model}")
    tdt = _torch_dtype(dtype)
    if dtype == "tf32" and device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    with torch.no_grad():
        bar.set_postfix_str("building the pipeline")
        pipe = Pipeline(job.model, job.scale, job.weights, 0, tdt, device, frames=job.latent_frames,
                        text_tokens=job.text_tokens)
        cond = pipe.encode(PROMPT, "")
        den = build_denoiser(pipe, (job.height, job.width))
        bar.update()
        video = pipe.family in ("wan", "cogvideox", "latte")
        vae_cfg = pipe.configs.config("vae")
        ch = vae_cfg.get("latent_channels") or vae_cfg.get("z_dim")
        h, w = job.height // 8, job.width // 8
        shape = (job.batch, ch, job.latent_frames, h, w) if video else (job.batch, ch, h, w)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, tdt)
        branches = ("cond", "uncond") if job.cfg else ("cond",)
        text, pooled = cond.batch(branches, job.batch)
        lat_all = torch.cat([x] * len(branches)) if len(branches) > 1 else x
        times: dict[int, list] = {c: [] for c in firsts}
        for n in sorted(job.shards, reverse=True):          # increasing rows
            ctx = Ctx(h // pipe.patch, job.latent_frames, video)
            ctx.set_units(0, ctx.U // n)
            lat = lat_all[:, :, :ctx.U // n] if video else lat_all[:, :, :(ctx.U // n) * pipe.patch]
            s = State(latent=lat, t=torch.full((lat.shape[0],), 500.0, device=device), text=text.to(device, tdt),
                      pooled=None if pooled is None else pooled.to(device, tdt))
            for i, block in enumerate(den.blocks):
                if i in times:
                    bar.set_postfix_str(f"{den.names[i]} at 1/{n}")
                    secs = time_op(lambda: block(_fresh(s), ctx), device, timing)
                    times[i].append({"seq_div": n, "tokens": _r(spec.tokens / n), "batch": job.branches,
                                     "time_us": _r(secs * 1e6)})
                    bar.update()
                s = block(s, ctx)
        components = []
        for comp_name, stage in job.encoders:
            bar.set_postfix_str(comp_name)
            enc = getattr(pipe.pipe, comp_name)
            ids = torch.randint(3, max(enc.config.vocab_size - 3, 4), (1, stage.ops[0].tokens), device=device)
            secs = time_op(lambda: enc(ids), device, timing)
            components.append({"name": comp_name, "label": stage.name, "signature": measured.component_signature(stage),
                               "batch": 1, "time_us": _r(secs * 1e6)})
            bar.update()
        bar.set_postfix_str("vae decode")
        z = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(device, tdt)
        secs = time_op(lambda: pipe.decode(z), device, timing)
        components.append({"name": "vae", "label": spec.vae_decoder.name,
                           "signature": measured.component_signature(spec.vae_decoder), "batch": job.batch,
                           "time_us": _r(secs * 1e6)})
        bar.update()
    bar.close()
    blocks = [{"name": spec.blocks[i].name, "signature": sigs[i], "count": counts[i],
               "modules": _modules(den, i), "points": times[i]} for i in firsts]
    return {
        "model": job.model, "scale": job.scale, "config_hash": config_hash(job.configs), "gpu_id": gpu_id,
        "dtype": dtype,
        "shape": {"height": job.height, "width": job.width, "frames": job.frames, "batch": job.batch,
                  "branches": job.branches, "text_tokens": job.text_tokens, "tokens": spec.tokens},
        "provenance": _provenance(job, device, preset, time.perf_counter() - t0, argv),
        "blocks": blocks, "components": components,
    }


def _modules(den, i: int) -> list[str]:
    """The diffusers classes block i runs (the modules it owns)."""
    out = []
    for n in getattr(den.blocks[i], "owned", ()):
        try:
            out.append(type(den.net.get_submodule(n)).__name__)
        except AttributeError:
            pass
    return out


def _provenance(job: ModelJob, device: str, preset: str, seconds: float, argv) -> dict:
    import datetime

    import diffusers
    import torch
    import transformers

    from .device import provenance
    base = provenance(device, torch.get_num_threads() if device == "cpu" else None, None, argv)
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device_name": base["device_name"], "threads": base["threads"], "torch": torch.__version__,
            "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "command": base["command"], "configs": job.configs.source,
            "weights": job.weights or "random (seed 0)", "preset": preset, "shards": list(job.shards),
            "seconds": round(seconds, 2)}


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def merge_table(doc: dict, table: dict) -> dict:
    """doc with `table` in its blocks section, replacing the table of the same model and scale."""
    tables = [t for t in doc.get("blocks", {}).get("tables", [])
              if (t.get("model"), t.get("scale")) != (table["model"], table["scale"])]
    return doc | {"blocks": {"tables": tables + [table]}}


def summary(doc: dict, table: dict, spec) -> list[str]:
    """Measured against the roofline of this profile's own op curves, per block class."""
    from planner.cost import compute, measured
    from planner.hardware import load_gpu
    from planner.profile_io import profile_from_doc
    from planner.spec import DTYPE_BYTES

    shape = table["shape"]
    prof = profile_from_doc({k: v for k, v in doc.items() if k != "blocks"})
    gpu = load_gpu(doc["device"]["gpu_id"])
    elem = DTYPE_BYTES[table["dtype"]]
    lines = [f"  {table['model']} --scale {table['scale']} at {shape['height']}x{shape['width']}"
             + (f"x{shape['frames']}f" if shape["frames"] > 1 else "")
             + f", batch {shape['branches']} (images x CFG branches), {shape['text_tokens']} text tokens, "
               f"{shape['tokens']} split-stream tokens; shards 1/{', 1/'.join(str(p['seq_div']) for p in table['blocks'][0]['points'][::-1])}",
             f"  {'block':<22}{'x':>3}{'measured':>11}{'roofline':>11}{'ratio':>7}   measured at the smaller shards"]
    tot_m = tot_r = 0.0
    rows = {}
    for b in table["blocks"]:
        p = b["points"][-1]
        key = (p["tokens"], p["batch"])
        if key not in rows:
            rows[key] = measured.roofline_at(spec, p["tokens"], p["batch"], elem, table["dtype"], gpu, prof)
        i = next(k for k, blk in enumerate(spec.blocks) if blk.name == b["name"])
        roof = float(rows[key][i])
        tot_m += b["count"] * p["time_us"]
        tot_r += b["count"] * roof * 1e6
        rest = "  ".join(f"1/{q['seq_div']}: {_ms(q['time_us'])}" for q in b["points"][-2::-1])
        lines.append(f"  {b['name']:<22}{b['count']:>3}{_ms(p['time_us']):>11}{_ms(roof * 1e6):>11}"
                     f"{p['time_us'] / (roof * 1e6):>7.2f}   {rest}")
    lines.append(f"  {'denoiser pass':<25}{_ms(tot_m):>11}{_ms(tot_r):>11}{tot_m / tot_r:>7.2f}")
    for c in table["components"]:
        stage = next((s for s in [*spec.text_encoders, spec.vae_decoder]
                      if measured.component_signature(s) == c["signature"]), None)
        roof = compute.component_time(stage, c["batch"], elem, table["dtype"], gpu, prof, False) * 1e6 \
            if stage is not None else float("nan")
        lines.append(f"  {c['name']:<25}{_ms(c['time_us']):>11}{_ms(roof):>11}{c['time_us'] / roof:>7.2f}   "
                     f"{c['label']}, batch {c['batch']}")
    return lines


def _ms(us: float) -> str:
    if us != us:
        return "-"
    return f"{us / 1e3:.3g} ms" if us >= 1e3 else f"{us:.3g} us"
