"""Measured block times (`cli.py profile --model`) in place of the roofline, where a profile has them.

A profile's block tables (planner/profile_io.BlockTable) hold, for one model at one scale
on the profile's device and dtype, the median seconds of each distinct denoiser block
class, each measured at a few token-shard sizes: the block run on 1/n of the split units
(image rows or video frames, n = 1, 2, 4, 8) with attention over its own tokens (what
naive_patch runs), at the serial batch (images x CFG branches); and the seconds of each
text encoder and of the VAE decode at the measured shape.

Which blocks take a measured time (`match`): the table's model id, GPU id and dtype are
the plan's, the scenario is eager (the profiler times eager PyTorch: torch.compile /
CUDA graphs would run faster than measured), and the block's signature (block_signature)
equals an entry's. The signature is the block's ops without the resolution: widths,
heads, head_dim, kernel taps, norms, TP roles, text lengths, and token counts as
fractions of the model's split-stream tokens. It carries the scale: a table measured at
--scale small has other widths and heads than the full model, so it never applies to
it, and a block the profiler did not see (another variant, another text length) keeps
its roofline time.

How a measured block is timed for a rank's share (a Vidur-style table keyed by shape):
its roofline time for that share (planner/cost/compute.py: the op shapes of the plan's
shard, tensor-parallel split and batch) times the measured / roofline ratio, the ratio
interpolated linearly in log(rows) between the measured points, rows = local batch x
split-stream tokens on the rank. At a measured point's own shape that is the measured
time; between points the measured efficiency is interpolated, and the roofline carries
what the points do not have: Ulysses' whole-sequence attention on heads/n, tensor
parallelism's narrower GEMMs, CFG's batch. Beyond the measured range (more tokens than
the profiled size, or fewer than its smallest shard) the nearest point's ratio scales
the roofline (np.interp holds the end values): an extrapolation the roofline's size
dependence carries, not a measurement.

A text encoder or the VAE decode takes a measured time only at the measured shape (its
signature includes its token counts): roofline x (measured / roofline at the measured
batch), so other batches follow the roofline.

All pure functions of (model, table, profile, GPU, shapes); per-model caches (memo.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..hardware import GpuSpec, Profile
from ..memo import per_object
from ..spec import Block, Component, ModelSpec, Op, Scenario
from ..strategies.base import Shard
from . import compute


def _frac(x: int, whole: int) -> str:
    return str(Fraction(int(x), int(whole))) if x else "0"


def _op_key(o: Op, whole: int) -> tuple:
    """An op without the resolution: image/video-stream token counts as fractions of the
    model's split-stream tokens; text-stream counts (a property of the prompt) as they are."""
    toks = (o.tokens, o.in_tokens, o.kv_tokens) if o.text else \
        tuple(_frac(x, whole) for x in (o.tokens, o.in_tokens, o.kv_tokens))
    return (o.kind.value, *toks, o.in_features, o.out_features, o.taps, o.heads, o.head_dim, o.ctx_tokens,
            o.q_ctx, o.groups, o.width, o.tensors, o.params, o.text, o.tp_role)


def _digest(parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def block_signature(block: Block, model_tokens: int) -> str:
    """16 hex digits naming a block class independently of the resolution (module doc);
    op names are left out (they do not change the cost)."""
    return _digest((block.kind, _frac(block.tokens, model_tokens), block.hidden,
                    _frac(block.skip_elems, model_tokens), tuple(_op_key(o, model_tokens) for o in block.ops)))


def component_signature(stage: Component) -> str:
    """16 hex digits naming a text encoder or VAE decoder at its shape (token counts
    included) and by its label (two shrunk CLIP towers can have the same ops); cached on
    the component."""
    cache = per_object(stage)
    if "signature" not in cache:
        cache["signature"] = _digest((stage.name, stage.params, tuple(_op_key(o, 1) for o in stage.ops)))
    return cache["signature"]


def signatures(model: ModelSpec) -> tuple[str, ...]:
    """block_signature of every block (cached on the model)."""
    cache = per_object(model)
    if "block_signatures" not in cache:
        classes = compute.block_classes(model)
        first: dict[int, str] = {}
        cache["block_signatures"] = tuple(first.setdefault(c, block_signature(model.blocks[c], model.tokens))
                                          for c in classes)
    return cache["block_signatures"]


@dataclass(frozen=True)
class Match:
    """A block table and, per block of the model, its measured entry (None: roofline)."""

    table: object                 # profile_io.BlockTable
    entries: tuple

    @property
    def measured(self) -> int:
        return sum(e is not None for e in self.entries)


def _applies(table, model: ModelSpec, gpu: GpuSpec, sc: Scenario) -> bool:
    return table.model == model.id and table.gpu_id == gpu.id and table.dtype == sc.dtype and not sc.compiled


def match(model: ModelSpec, profile: Profile, gpu: GpuSpec, sc: Scenario) -> Match | None:
    """The table of this model, GPU and dtype whose entries cover most blocks, or None."""
    if not profile.blocks:
        return None
    best = None
    for table in profile.blocks:
        if not _applies(table, model, gpu, sc):
            continue
        cache = per_object(model)
        key = ("measured_match", table)
        if key not in cache:
            by_sig = {b.signature: b for b in table.blocks}
            cache[key] = Match(table, tuple(by_sig.get(s) for s in signatures(model)))
        m = cache[key]
        if m.measured and (best is None or m.measured > best.measured):
            best = m
    return best


def roofline_at(model: ModelSpec, tokens: float, batch: int, elem: int, dtype: str, gpu: GpuSpec,
                profile: Profile) -> np.ndarray:
    """Roofline seconds of every block at a measured point's shape, on this model: 1/d of
    the split stream with attention over its own tokens, d = model tokens / `tokens`, for
    `batch` samples, eager."""
    t = compute.op_table(model)
    d = model.tokens / tokens
    times = compute.op_times(t, Shard(seq=d, q=d, kv=d), 1, batch, elem, dtype, gpu, profile, False,
                             model.eager.mem_factor)
    # the device lane's block time (Engine.block_costs); the measurement also holds the host's
    # launches, so a host-bound point's ratio says so, and the host lane adds nothing above it
    return compute.per_block(t, times)


def _ratio_curves(model: ModelSpec, m: Match, elem: int, dtype: str, gpu: GpuSpec, profile: Profile):
    """Per measured entry: (log rows, measured / roofline) at its points; cached on the model."""
    cache = per_object(model)
    key = ("measured_ratios", m.table, elem, dtype, gpu, profile)
    if key not in cache:
        at: dict = {}
        curves: dict[int, tuple] = {}
        for i, e in enumerate(m.entries):
            if e is None or id(e) in curves:
                continue
            ratios = []
            for p in e.points:
                k = (p.tokens, p.batch)
                if k not in at:
                    at[k] = roofline_at(model, p.tokens, p.batch, elem, dtype, gpu, profile)
                ratios.append(p.seconds / max(float(at[k][i]), 1e-30))
            curves[id(e)] = (np.log([p.rows for p in e.points]), np.array(ratios))
        cache[key] = curves
    return cache[key]


def block_ratios(model: ModelSpec, m: Match, shard: Shard, batch: float, elem: int, dtype: str, gpu: GpuSpec,
                 profile: Profile) -> np.ndarray:
    """Per block: measured / roofline at this rank's rows (module doc); 1 where unmeasured."""
    curves = _ratio_curves(model, m, elem, dtype, gpu, profile)
    x = np.log(max(batch * model.tokens / shard.seq, 1e-30))
    out = np.ones(len(model.blocks))
    for i, e in enumerate(m.entries):
        if e is not None:
            xs, ys = curves[id(e)]
            out[i] = float(np.interp(x, xs, ys))     # beyond the points: the nearest ratio
    return out


def component_ratio(stage: Component, model: ModelSpec, profile: Profile, gpu: GpuSpec, sc: Scenario) -> float:
    """measured / roofline of a text encoder or the VAE decode at its measured shape; 1 if unmeasured."""
    hit = _component_entry(stage, model, profile, gpu, sc)
    if hit is None:
        return 1.0
    roof = compute.component_time(stage, hit.batch, sc.elem_bytes, sc.dtype, gpu, profile, False)
    return hit.seconds / roof if roof > 0 else 1.0


def _component_entry(stage: Component, model: ModelSpec, profile: Profile, gpu: GpuSpec, sc: Scenario):
    if not profile.blocks or not stage.ops:
        return None
    sig = component_signature(stage)
    for table in profile.blocks:
        if _applies(table, model, gpu, sc):
            for c in table.components:
                if c.signature == sig:
                    return c
    return None


def describe(model: ModelSpec, profile: Profile, gpu: GpuSpec, sc: Scenario) -> str:
    """One line on what of the prediction is measured ('' when the profile has no table of
    this model): shown by `plan` and `run`, carried in the prediction's JSON."""
    mine = [t for t in profile.blocks if t.model == model.id]
    if not mine:
        return ""
    m = match(model, profile, gpu, sc)
    if m is None:
        t = mine[0]
        why = ("the scenario is compiled; the profiler times eager PyTorch" if sc.compiled else
               f"measured on {t.gpu_id} in {t.dtype}" if (t.gpu_id, t.dtype) != (gpu.id, sc.dtype) else
               "whose widths are not this model's")
        return (f"block times: roofline (profile {t.profile} has {model.id} --scale {t.scale} blocks, {why})")
    t = m.table
    stages = [*model.text_encoders, model.vae_decoder] if sc.scope == "pipeline" else []
    got = [s for s in stages if _component_entry(s, model, profile, gpu, sc) is not None]
    extra = f"; text encoders and VAE: {len(got)} of {len(stages)} measured" if stages else ""
    return (f"block times: measured (profile {t.profile}, {model.id} --scale {t.scale}) for {m.measured} of "
            f"{len(model.blocks)} blocks{extra}; roofline elsewhere")
