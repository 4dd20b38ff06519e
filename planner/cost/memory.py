"""Peak memory per GPU: weights + text encoders + activations + strategy buffers +
VAE decode + runtime.

- Weights: the denoiser blocks a rank holds (a pipeline stage holds its blocks), divided
  by the tensor-parallel degree; text encoders and the VAE are loaded on every rank
  (what diffusers and xDiT do by default).
- Activations: the largest op's live inputs and outputs, plus the residual stream and
  the U-Net/U-ViT skip tensors alive at that point (inference frees the rest).
- Buffers: what strategies keep between steps (stale K/V, in-flight all-gathers).
- VAE decode runs after the loop, when activations and buffers are free again, so it
  counts only if its own peak is higher (and not at all when only the loop runs).
- Runtime: CUDA context, cuBLAS/cuDNN workspaces and allocator slack, plus NCCL buffers
  for every process group the plan creates.
"""
from __future__ import annotations

import math

import numpy as np

from ..spec import MemoryBreakdown
from ..strategies import STRATEGIES, images_per_rank
from ..strategies.base import Shard
from . import compute

GiB = 2**30
# ASSUMED: a CUDA context with PyTorch and cuBLAS/cuDNN workspaces is ~0.5-0.8 GiB, plus
# caching-allocator fragmentation; NCCL allocates ~0.2 GiB of buffers per communicator.
RUNTIME_BYTES = 1.0 * GiB
NCCL_BYTES_PER_GROUP = 0.2 * GiB


def weight_split(plan) -> int:
    """Divisor of the denoiser weights a rank holds (Strategy.weight_split: TP)."""
    n = 1
    for k, d in plan.degrees:
        n *= STRATEGIES[k].weight_split(d)
    return n


def vae_activations(model, images: float, elem: int, tiling: bool = False) -> float:
    """The VAE decoder's largest live activation for `images` images: one of its
    sequential tiles (Component.tiles), and with tiling one spatial tile of it."""
    vae = model.vae_decoder
    if not vae.ops:
        return 0.0
    peak = compute.activation_peak(compute.component_table(vae), Shard(), 1, images, elem) / vae.tiles
    if tiling and vae.tile_px:
        _, _, lh, lw = model.latent_shape
        h, w = lh * model.facts.vae_spatial, lw * model.facts.vae_spatial
        tiles = math.prod(max(1, math.ceil((side - vae.tile_px) / vae.stride_px) + 1) for side in (h, w))
        peak = peak * min(1.0, vae.tile_px ** 2 / (h * w)) if tiles > 1 else peak
    return peak


def memory(eng, rank_blocks) -> MemoryBreakdown:
    """Worst rank's peak. rank_blocks: the block slices of pipeline stages (None: all)."""
    model, plan, local, sc = eng.model, eng.plan, eng.local, eng.sc
    slices = rank_blocks or [slice(0, len(model.blocks))]
    tsplit = weight_split(plan)
    t = eng.table
    worst = None
    for sl in slices:
        blocks = model.blocks[sl]
        weights = float(compute.block_params(model)[sl].sum()) * local.elem / tsplit
        ops = slice(int(t.block_starts[sl.start]),
                    int(t.block_starts[sl.stop]) if sl.stop < len(model.blocks) else len(t.kind))
        act = compute.activation_peak(t, local.shard, local.tp, local.batch, local.elem, ops)
        stream = float(compute.block_stream_elems(model)[sl].max()) / local.sp * local.batch * local.elem
        buffers = sum(STRATEGIES[k].buffer_bytes(d, plan, blocks, local) for k, d in plan.degrees)
        m = MemoryBreakdown(weights=weights, activations=act + stream, buffers=buffers)
        if worst is None or m.total() > worst.total():
            worst = m
    vae = model.vae_decoder
    vae_act = vae_activations(model, images_per_rank(plan, sc.batch), local.elem, sc.vae_tiling)
    worst.runtime = RUNTIME_BYTES + NCCL_BYTES_PER_GROUP * len(plan.degrees)
    text = sum(e.params for e in model.text_encoders) * local.elem
    decode = 0.0 if sc.scope == "denoise" else vae_act
    if sc.cpu_offload:
        # enable_model_cpu_offload: each component moves to the GPU for its call and back,
        # so the peak is the largest of the text encoders, the denoising loop and the decode
        loop = worst.weights + worst.activations + worst.buffers
        worst.text_encoders = max(0.0, text - loop)
        worst.vae = max(0.0, vae.params * local.elem + decode - loop - worst.text_encoders)
        return worst
    worst.text_encoders = text
    # scope "denoise" (the loop alone, as DistriFusion-style harnesses time it with
    # output_type="latent") never decodes, so only the VAE's weights are resident
    worst.vae = vae.params * local.elem + max(0.0, decode - worst.activations - worst.buffers)
    return worst


def stage_caps(eng, key: str, parts: int):
    """(per-block memory, per-stage caps) of a pipeline whose stages hold their own blocks'
    weights (Engine.stage_cuts), two resources, following memory(): a stage's peak is its
    weights + buffers + activations + the fixed parts (text encoders, VAE weights,
    runtime), or, after the loop, its weights + the VAE decode's activations. Activations
    are taken at the whole model's peak (a stage's own peak is at most that), so the caps
    are safe."""
    model, plan, local, sc = eng.model, eng.plan, eng.local, eng.sc
    tsplit = weight_split(plan)
    weights = compute.block_params(model) * local.elem / tsplit
    per_class: dict[int, float] = {}     # blocks of one class (compute.block_classes) buffer alike
    for c in set(compute.block_classes(model)):
        b = model.blocks[c]
        per_class[c] = sum(STRATEGIES[k].buffer_bytes(d, plan, [b], local) for k, d in plan.degrees)
    buffers = np.array([per_class[c] for c in compute.block_classes(model)])
    whole = memory(eng, None)
    fixed = whole.text_encoders + whole.runtime + model.vae_decoder.params * local.elem
    vae_act = vae_activations(model, images_per_rank(plan, sc.batch), local.elem, sc.vae_tiling)
    gpus = eng.cluster.gpus
    if eng.cluster.uniform:
        cap = np.full(parts, float(gpus[0].usable_bytes))
    else:
        groups = eng.layout.groups(key)
        cap = np.array([min(gpus[g[s]].usable_bytes for g in groups) for s in range(parts)], dtype=float)
    caps = np.vstack([cap - fixed - whole.activations, cap - fixed - vae_act])
    return np.vstack([weights + buffers, weights]), caps
