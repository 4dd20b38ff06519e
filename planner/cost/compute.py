"""Compute time of a rank's share of the denoiser: roofline x measured efficiency.

Each op's GPU time is the larger of its compute time (FLOPs over the dtype's peak at the
efficiency its op class reaches at that size; attention also by head dim and keys per
call) and its memory time (bytes over memory bandwidth at the memory-bound efficiency;
eager PyTorch moves EagerInventory.mem_factor x the fused norm/elementwise bytes). The
host issues each block's kernels (block_host: kernels x a per-kernel host cost per mode,
eager or compiled) on its own stream, asynchronously, ahead of the GPU (two_stream): many
small ops (patch micro-batches, small images, fast GPUs) become host-bound, big ones hide
the host.

The model's ops are turned into numpy columns once (`op_table`), so evaluating a shard
is a handful of vector operations: the search evaluates thousands of plans.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hardware import EfficiencyCurve, GpuSpec, Profile
from ..memo import per_object
from ..spec import ModelSpec, OpKind, Component
from ..strategies.base import Shard

KIND_CODE = {OpKind.GEMM: 0, OpKind.CONV: 1, OpKind.ATTN: 2, OpKind.NORM: 3, OpKind.ELEMWISE: 4}
CLASS_OF_CODE = ("gemm", "conv", "attn", "mem", "mem")
ROLE_CODE = {"rep": 0, "col": 1, "row": 2}


@dataclass(frozen=True)
class OpTable:
    """Numpy columns of a list of ops (field meanings: planner/spec.py Op)."""

    kind: np.ndarray
    tokens: np.ndarray
    in_f: np.ndarray
    out_f: np.ndarray
    taps: np.ndarray
    in_tokens: np.ndarray
    heads: np.ndarray
    head_dim: np.ndarray
    kv: np.ndarray
    ctx: np.ndarray
    q_ctx: np.ndarray
    groups: np.ndarray
    width: np.ndarray
    tensors: np.ndarray
    params: np.ndarray
    text: np.ndarray
    role: np.ndarray
    block_starts: np.ndarray     # index of each block's first op (for np.add.reduceat)
    self_attn: np.ndarray        # ATTN ops with keys from the split stream


def _table(ops_per_block) -> OpTable:
    ops = [o for ops in ops_per_block for o in ops]
    f = lambda attr: np.array([float(getattr(o, attr)) for o in ops])
    starts, n = [], 0
    for ops_b in ops_per_block:
        starts.append(n)
        n += len(ops_b)
    kind = np.array([KIND_CODE[o.kind] for o in ops])
    kv = f("kv_tokens")
    return OpTable(
        kind=kind, tokens=f("tokens"), in_f=f("in_features"), out_f=f("out_features"),
        taps=f("taps"), in_tokens=np.array([float(o.in_tokens or o.tokens) for o in ops]),
        heads=f("heads"), head_dim=f("head_dim"), kv=kv, ctx=f("ctx_tokens"), q_ctx=f("q_ctx"),
        groups=f("groups"), width=f("width"), tensors=f("tensors"), params=f("params"),
        text=np.array([o.text for o in ops]), role=np.array([ROLE_CODE[o.tp_role] for o in ops]),
        block_starts=np.array(starts), self_attn=(kind == 2) & (kv > 0),
    )


def _cached(obj, make) -> OpTable:
    """The op table of a model or component, built once per object (planner/memo.py)."""
    cache = per_object(obj)
    if "op_table" not in cache:
        cache["op_table"] = make()
    return cache["op_table"]


def op_table(model: ModelSpec) -> OpTable:
    """The denoiser's ops as columns, one block after another."""
    return _cached(model, lambda: _table([b.ops for b in model.blocks]))


def block_classes(model: ModelSpec) -> tuple[int, ...]:
    """For each block, the index of the first block equal to it but for its name (the same
    layer: same ops, sizes and skips), so that per-layer work is done once per class."""
    cache = per_object(model)
    if "block_classes" not in cache:
        first: dict = {}
        cache["block_classes"] = tuple(first.setdefault((b.kind, b.ops, b.tokens, b.hidden, b.skip_elems), i)
                                       for i, b in enumerate(model.blocks))
    return cache["block_classes"]


def block_params(model: ModelSpec) -> np.ndarray:
    """Parameters of each block (exact integers as floats), once per model."""
    cache = per_object(model)
    if "block_params" not in cache:
        cache["block_params"] = np.array([float(b.params) for b in model.blocks])
    return cache["block_params"]


def block_stream_elems(model: ModelSpec) -> np.ndarray:
    """Elements each block hands on per sample: its output plus the live long skips."""
    cache = per_object(model)
    if "block_stream" not in cache:
        cache["block_stream"] = np.array([float(b.tokens * b.hidden + b.skip_elems) for b in model.blocks])
    return cache["block_stream"]


def component_table(stage: Component) -> OpTable:
    return _cached(stage, lambda: _table([stage.ops]))


MAX_SHAPES = 4096      # local shapes remembered per op table (a 1,024-GPU search has ~2,000)


def local_work(t: OpTable, shard: Shard, tp: int, batch: float, elem: int):
    """FLOPs and bytes of every op on one rank, for `batch` samples (memoised per table:
    the same shapes recur across plans, profiles and calibration iterations)."""
    work = per_object(t)
    key = (shard, tp, batch, elem)
    hit = work.get(key)
    if hit is None:
        if len(work) > MAX_SHAPES:
            work.clear()
        hit = work[key] = _local_work(t, shard, tp, batch, elem)
    return hit


def _local_work(t: OpTable, shard: Shard, tp: int, batch: float, elem: int):
    # Every split is costed at its largest shard (ceil): an uneven split (remainder heads,
    # ulysses_anything, a pooled row every rank computes whole) waits for its slowest rank.
    seq = np.where(t.text, 1.0, shard.seq)
    col = t.role == 1
    row = t.role == 2
    fin = np.where(row, np.ceil(t.in_f / tp), t.in_f)
    fout = np.where(col, np.ceil(t.out_f / tp), t.out_f)
    tok = np.ceil(t.tokens / seq)
    k = t.kind

    # GEMM and conv (implicit GEMM): 2 * positions * Cin * Cout * taps. Ops with params=0
    # reuse another op's weights (the text-stream copy of a shared layer): no second read.
    weights = fin * fout * t.taps
    mm_flops = 2.0 * tok * weights * batch
    mm_bytes = elem * (batch * (np.ceil(t.in_tokens / seq) * fin + tok * fout) + np.where(t.params > 0, weights, 0.0))

    # attention: queries of the split stream (+ joint text queries) against keys
    textual = t.text
    q = np.where(textual, t.tokens, np.ceil(t.tokens / shard.q)) + t.q_ctx
    kv = np.where(textual, t.kv, np.ceil(t.kv / shard.kv)) + t.ctx
    heads = np.ceil(np.where(textual, t.heads / tp, t.heads / shard.heads))
    groups = np.where(textual, t.groups, np.ceil(t.groups / shard.groups))
    hd = groups * heads * t.head_dim * batch
    at_flops = 4.0 * hd * q * kv
    at_bytes = elem * hd * 2.0 * (q + kv)

    # norms and elementwise ops: bandwidth bound
    width = np.where(t.role > 0, np.ceil(t.width / tp), t.width)
    mem_bytes = elem * tok * width * t.tensors * batch
    mem_flops = np.where(k == 3, 5.0, 1.0) * tok * width * batch

    flops = np.select([k <= 1, k == 2], [mm_flops, at_flops], mem_flops)
    nbytes = np.select([k <= 1, k == 2], [mm_bytes, at_bytes], mem_bytes)
    return flops, nbytes


def curve_time(curve: EfficiencyCurve, size: np.ndarray, peak: float) -> np.ndarray:
    """Vectorised EfficiencyCurve.time (same two forms: parametric or measured points)."""
    size = np.maximum(size, 1e-30)
    if curve.points:
        xs = np.log10([p[0] for p in curve.points])
        ys = np.array([p[1] for p in curve.points])
        eff = np.interp(np.log10(size), xs, ys)
        return size / (peak * np.maximum(eff, 1e-4))
    return size / (peak * curve.e_max) + curve.t0_s


def op_times(t: OpTable, shard: Shard, tp: int, batch: float, elem: int, dtype: str,
             gpu: GpuSpec, profile: Profile, compiled: bool, eager_mem: float = 1.0) -> np.ndarray:
    """Seconds of every op on one rank (see the module docstring). eager_mem: the factor
    on the norm/elementwise bytes that eager PyTorch moves (EagerInventory.mem_factor);
    compiled, fusion removes all but Calibration.compiled_mem_factor of the extra traffic
    (0: the zoo's one kernel per op, 1: none removed)."""
    flops, nbytes = local_work(t, shard, tp, batch, elem)
    peak = gpu.peak(dtype)
    membound = t.kind >= 3
    scale = 1.0 + (eager_mem - 1.0) * profile.calibration.compiled_mem_factor if compiled else eager_mem
    nbytes = np.where(membound, nbytes * scale, nbytes)
    mem = curve_time(profile.curve(gpu, "mem"), nbytes, gpu.memory_bw)
    compute = np.zeros_like(flops)
    for code, cls in ((0, "gemm"), (1, "conv"), (2, "attn")):
        sel = t.kind == code
        if sel.any():
            eff_peak = peak
            if code == 2 and not profile.measured(gpu, cls):
                # the attention kernel's head-dim padding and keys-per-call ramp (AttentionKernel)
                eff_peak = peak * gpu.attention.factor(t.head_dim[sel], attention_keys(t, shard)[sel])
            compute[sel] = curve_time(profile.curve(gpu, cls), flops[sel], eff_peak)
    return np.maximum(compute, mem)


def attention_keys(t: OpTable, shard: Shard) -> np.ndarray:
    """Keys one attention call of each op sees on a rank: its K/V slice (one Ring block at
    a time) plus the text keys every rank holds."""
    kv = np.where(t.text, t.kv, np.ceil(t.kv / shard.kv / shard.kv_chunks))
    return kv + t.ctx


def per_block(t: OpTable, values: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, t.block_starts) if len(values) else values


def block_host(t: OpTable, kernels_per_op: float, kernel_s: float) -> np.ndarray:
    """Per block: the host's time to issue its kernels (the zoo's ops x kernels per op,
    each `kernel_s`: PyTorch dispatch, module and hook overhead, the launch)."""
    ops = np.diff(np.append(t.block_starts, len(t.kind)))
    return ops * kernels_per_op * kernel_s


def two_stream(host: np.ndarray, gpu: np.ndarray) -> float:
    """Host and GPU as two streams over a sequence of blocks: the host issues block i's
    kernels in host[i], the GPU runs them in gpu[i] once issued (it runs ahead of nothing);
    block i ends at max(end of block i-1 + gpu[i], host's issue of block i). The last end
    is max(total GPU, max over i of (host through i + GPU after i)): host-bound passes
    take the host's time, GPU-bound ones the GPU's, mixed ones more than either."""
    if not len(gpu):
        return 0.0
    g = np.cumsum(gpu)
    h = np.cumsum(host)
    return float(max(g[-1], np.max(h + g[-1] - g)))


def component_time(stage: Component, batch: float, elem: int, dtype: str, gpu: GpuSpec,
               profile: Profile, compiled: bool) -> float:
    """One pass of a text encoder or the VAE decoder on one GPU (its op list as one block)."""
    if not stage.ops:
        return 0.0
    t = component_table(stage)
    gpu_time = op_times(t, Shard(), 1, batch, elem, dtype, gpu, profile, compiled)
    return max(float(gpu_time.sum()), float(block_host(t, 1.0, profile.launch_s(compiled)).sum()))


def activation_peak(t: OpTable, shard: Shard, tp: int, batch: float, elem: int, sel=slice(None)) -> float:
    """Largest live activation of one op among `sel` (its inputs + outputs on this rank).
    Flash/memory-efficient attention keeps only Q, K, V and O: nothing quadratic."""
    flops, nbytes = local_work(t, shard, tp, batch, elem)
    col, row = t.role == 1, t.role == 2
    fin = np.where(row, t.in_f / tp, t.in_f)
    fout = np.where(col, t.out_f / tp, t.out_f)
    weights = elem * np.where(t.params > 0, fin * fout * t.taps, 0.0)
    act = np.where(t.kind <= 1, nbytes - weights, nbytes)
    return float(act[sel].max()) if len(act) else 0.0
