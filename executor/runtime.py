"""One job on one rank: process groups laid out by planner.layout.layout_for(plan), the
model, the latent slices, and the timed runs.

    Job         what to run (model, sizes, steps, plan, ...): identical on every rank
    World       this process's rank, device, Comm and the process groups it created
    Setup       one plan (the whole plan, or one schedule segment's) on this rank: its
                groups, the images and CFG branches it computes, the units of the image
                it holds, its model and the strategy driving its steps
    Runtime     a job's Setups, schedule and conditioning; run_job() times the repeats

Every rank creates every process group of every segment's layout in the same order
(torch requires that), so switching plans between steps only picks other groups.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from planner.layout import Layout, layout_for
from planner.plan import Plan, parse_plan

from planner.strategies import LATENT_SPLIT_KEYS

from . import legality, measure, strategies
from .comm import Comm, Group, solo
from .context import Ctx
from .blocks import State
from .sampler import denoise, guide, segments
from .source import source_for

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Job:
    model: str
    plan: str
    height: int
    width: int
    frames: int = 1
    steps: int = 8
    batch: int = 1
    text_tokens: int = 8
    cfg: bool = True
    guidance: float = 4.5
    dtype: str = "fp32"
    seed: int = 0
    repeats: int = 1
    warmup_runs: int = 0
    tolerance: float = 0.0          # ParaDiGMS Picard tolerance (0: iterate to the serial result)
    stages: dict = field(default_factory=dict)   # plan string -> [(first, last)) block cuts from predict()
    # layout order of the parallel dimensions, inner -> outer (planner/layout.layout_for;
    # empty: xDiT's), shared by every schedule segment as in predict()
    order: tuple = ()
    label: str = ""
    # the model's diffusers classes (executor/diffusers) at scale tiny | small | full, from a
    # local diffusers folder ("" = random weights from `seed`), the prompts, and whether
    # rank 0 decodes the final latent with the VAE (experiment.prepare sets the scale)
    scale: str = ""
    weights: str = ""
    cp: str = "auto"        # Ulysses via diffusers' ContextParallelConfig where it applies (diffusers/native_cp.py)
    prompt: str = ""
    negative_prompt: str = ""
    decode: bool = False
    # tests only: {"rank": R, "step": S, "kind": "raise" | a signal name ("SIGKILL",
    # "SIGSTOP", ...)} makes rank R fail at denoising step S (0-based) of this job
    fault: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def job_errors(job: Job, plan: Plan) -> list[str]:
    return legality.job_errors(job.model, job.height, job.frames, plan, scale=job.scale, width=job.width,
                               text_tokens=job.text_tokens, weights=job.weights)


def _inject(fault: dict, step: int) -> None:
    """Job.fault (tests only): raise, or send this rank a signal (as a user or the OOM
    killer would)."""
    kind = fault.get("kind", "raise")
    if kind == "raise":
        raise RuntimeError(f"injected fault at step {step}")
    import signal
    os.kill(os.getpid(), getattr(signal, kind))


# ---------------------------------------------------------------- process groups
class World:
    def __init__(self, rank: int = 0, size: int = 1, device: str = "cpu", timeout_s: float = 60.0):
        self.rank, self.size, self.device = rank, size, torch.device(device)
        self.timeout = timedelta(seconds=timeout_s)     # a collective waiting longer fails the run
        self.comm = Comm(rank)
        self._groups: dict[tuple[int, ...], Group] = {}

    def group(self, ranks: tuple[int, ...]) -> Group:
        """The Group of these ranks (created by make_groups), as this rank sees it."""
        if self.rank not in ranks:
            raise ValueError(f"rank {self.rank} is not in group {ranks}")
        if len(ranks) == 1:
            return solo(self.rank)
        return self._groups[tuple(ranks)]

    def make_groups(self, all_groups: list[tuple[int, ...]]) -> None:
        """Create the process groups, every rank the same list in the same order."""
        for ranks in all_groups:
            ranks = tuple(sorted(ranks))
            if len(ranks) < 2 or ranks in self._groups:
                continue
            pg = dist.group.WORLD if len(ranks) == self.size else dist.new_group(list(ranks), timeout=self.timeout)
            if self.rank in ranks:
                self._groups[ranks] = Group(ranks, pg, ranks.index(self.rank))
            else:
                self._groups[ranks] = None


def combined(layout: Layout, dims: tuple[str, ...], rank: int) -> tuple[int, ...]:
    """Ranks that differ from `rank` only along `dims` (e.g. the Ulysses x Ring group)."""
    mine = layout.coords(rank)
    return tuple(r for r in range(layout.ranks)
                 if all(v == mine[k] for k, v in layout.coords(r).items() if k not in dims))


def plan_groups(plan: Plan, order=()) -> list[tuple[int, ...]]:
    """Every group any segment of the plan uses, in a fixed order."""
    out = []
    for seg in plan.plans():
        lay = layout_for(seg, tuple(order))
        for dim in lay.order:
            out += list(lay.groups(dim))
        dims = tuple(k for k in LATENT_SPLIT_KEYS if seg.degree(k) > 1)
        if len(dims) > 1:
            out += sorted({combined(lay, dims, r) for r in range(lay.ranks)})
    return out


# ---------------------------------------------------------------- one plan on one rank
class Setup:
    def __init__(self, rt: "Runtime", plan: Plan):
        self.rt, self.plan, self.job = rt, plan, rt.job
        world = rt.world
        self.layout = layout_for(plan, tuple(self.job.order))
        self.coords = self.layout.coords(world.rank)
        self.groups = {dim: world.group(next(g for g in self.layout.groups(dim) if world.rank in g))
                       for dim in self.layout.order}
        self.images = strategies.dp.images(self)
        self.branches = strategies.cfg.branches(self)
        dims = tuple(k for k in LATENT_SPLIT_KEYS if plan.degree(k) > 1)
        self.seq = world.group(combined(self.layout, dims, world.rank)) if dims else solo(world.rank)
        self.stages = [tuple(s) for s in self.job.stages.get(str(plan), [])]
        self.last_uncond = None
        native = getattr(rt.source, "native_loop", None)     # diffusers' own Ulysses (diffusers/native_cp.py)
        self.loop = (native and native(plan)) or strategies.loop_for(plan)
        self.model = self.loop.model(self)

    def group(self, dim: str) -> Group:
        return self.groups.get(dim) or solo(self.rt.world.rank)

    def layer_ctx(self):
        """The ctx of this plan's layer strategy (strategies.layer_ctx)."""
        return strategies.layer_ctx(self)

    # ---- the units (rows or frames) of the image a slice holds
    def chunk(self, index: int, count: int, span: tuple[int, int] | None = None) -> tuple[int, int]:
        u0, u1 = span or (0, self.rt.units)
        n = (u1 - u0) // count
        return u0 + index * n, u0 + (index + 1) * n

    def take(self, x: torch.Tensor, units: tuple[int, int]) -> torch.Tensor:
        """This rank's images and units [u0, u1) of a full latent."""
        i0, i1 = self.images
        return self.rt.units_slice(x[i0:i1], units)

    def inputs(self, x: torch.Tensor, i: int, branches: tuple[str, ...] | None = None) -> State:
        """The model input State for step i: the latent slice once per CFG branch."""
        fault = self.job.fault
        if fault and fault["rank"] == self.rt.world.rank and fault["step"] == i:
            _inject(fault, i)
        branches = branches or self.branches
        n = x.shape[0]
        dt = self.rt.dtype
        lat = torch.cat([x] * len(branches)) if len(branches) > 1 else x
        text, pooled = self.rt.cond.batch(branches, n)
        t = torch.full((n * len(branches),), self.rt.sched.timestep(i), device=x.device)
        return State(latent=lat.to(dt), t=t, text=text.to(x.device, dt),
                     pooled=None if pooled is None else pooled.to(x.device, dt))

    def guided(self, eps: torch.Tensor, branches: tuple[str, ...] | None = None) -> torch.Tensor:
        """Classifier-free guidance of this rank's model output: the CFG branches are in
        this output (cfg=1) or on the cfg peer (cfg=2: all-gather the noise predictions)."""
        branches = branches or self.branches
        eps = eps.float()
        if len(branches) == 2:
            c, u = eps.chunk(2)
        elif not self.job.cfg:
            return eps
        else:
            c, u = strategies.cfg.gather_branches(self, eps)
        self.last_uncond = u          # a following Hybridiff window reuses it
        return guide(c, u, self.job.guidance)

    def gather(self, x: torch.Tensor, seq: Group | None = None) -> torch.Tensor:
        """The full latent from every rank's slice: along the split units within the
        sequence group, then the images over dp."""
        comm = self.rt.world.comm
        seq = self.seq if seq is None else seq
        if seq.size > 1:
            x = self.rt.units_cat(comm.all_gather(x, seq).unbind(0))
        return strategies.dp.gather(self, x)


class Runtime:
    def __init__(self, job: Job, world: World):
        self.job, self.world = job, world
        self.plan = parse_plan(job.plan)
        errs = job_errors(job, self.plan)
        if errs:
            raise ValueError(errs[0])
        self.dtype = DTYPES[job.dtype]
        self.source = src = source_for(job, world.device, self.dtype)
        self.video, self.patch, self.frames = src.video, src.patch, src.latent_frames
        self.rows = job.height // 8 // src.patch          # grid rows after patchify
        self.units = self.frames if self.video else self.rows
        self.sched = src.schedule(job.steps)
        self.cond = src.conditioning()
        world.make_groups(plan_groups(self.plan, job.order))
        self._setups: dict[str, Setup] = {}
        self.carry: dict = {}        # handed from one schedule segment to the next (sampler.denoise)
        self.next_plan: Plan | None = None
        self.extra: dict = {}        # what drivers report besides timings (Picard iterations, windows)

    def setup(self, plan: Plan) -> Setup:
        key = str(plan)
        if key not in self._setups:
            self._setups[key] = Setup(self, plan)
        return self._setups[key]

    def build_model(self):
        return self.source.build_model()

    def initial_latent(self) -> torch.Tensor:
        j, ch = self.job, self.source.channels
        h, w = j.height // 8, j.width // 8
        shape = (j.batch, ch, self.frames, h, w) if self.video else (j.batch, ch, h, w)
        g = torch.Generator().manual_seed(j.seed)
        return torch.randn(shape, generator=g).to(self.world.device)

    # ---- latent slices along the split units
    def units_slice(self, x: torch.Tensor, units: tuple[int, int]) -> torch.Tensor:
        u0, u1 = units
        if self.video:
            return x[:, :, u0:u1]
        p = self.patch
        return x[:, :, u0 * p:u1 * p]

    def units_cat(self, parts) -> torch.Tensor:
        return torch.cat(list(parts), dim=2)

    def new_ctx(self, cls=None, **kw):
        cls = cls or Ctx
        return cls(self.rows, self.frames, self.video, comm=self.world.comm, **kw)


# ---------------------------------------------------------------- timed runs
def run_job(job: Job, world: World) -> dict:
    """Build, run job.warmup_runs untimed and job.repeats timed denoising loops; returns
    this rank's measurements (and the output latent on rank 0)."""
    world.comm.forget_shapes()
    rt = Runtime(job, world)
    for plan, _, _ in segments(rt.plan, job.steps):
        rt.setup(plan)                       # build models and groups before timing
    x0 = rt.initial_latent()
    for _ in range(job.warmup_runs):
        denoise(rt, x0.clone())
    mem = measure.MemoryPeak(world.device)
    sent0, kinds0, secs0 = world.comm.sent, dict(world.comm.by_kind), dict(world.comm.seconds)
    rt.extra.clear()
    times, out = [], None
    for _ in range(job.repeats):
        world.comm.barrier()
        t0 = time.perf_counter()
        out = denoise(rt, x0.clone())
        if world.device.type == "cuda":
            torch.cuda.synchronize(world.device)
        world.comm.barrier()
        times.append(time.perf_counter() - t0)
    peak = mem.peak_mb()
    result = {"rank": world.rank, "times": times, "memory_peak_mb": peak, "memory_method": mem.method,
              "comm_bytes": (world.comm.sent - sent0) / max(1, job.repeats),
              "comm_by_kind": {k: (v - kinds0.get(k, 0)) / max(1, job.repeats)
                               for k, v in world.comm.by_kind.items()},
              "comm_seconds": {k: (v - secs0.get(k, 0)) / max(1, job.repeats)
                               for k, v in world.comm.seconds.items()},
              "extra": dict(rt.extra)}
    if world.rank == 0:
        result["output"] = out.float().cpu()
        if job.decode:
            result["pixels"] = rt.source.decode(out)
        result["model"] = rt.source.describe()
    result["component_s"] = dict(rt.source.component_s)
    return result
