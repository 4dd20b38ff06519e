"""tp: Megatron-style tensor parallelism.

Every projection of the reference models carries the tp_role of its ModelSpec op:
"col" layers keep 1/t of their output features (Q/K/V and MLP-up projections, so each
rank keeps whole attention heads; the first 3x3 conv of a ResNet block, its timestep
projection and the GroupNorm after it, which keeps whole groups), "row" layers keep 1/t
of their input features and their partial outputs are summed by an all-reduce over the
tp group before the bias is added (attention out, MLP down, the second ResNet conv):
models/common.project and models/unet.Conv3x3 call ctx.tp_reduce. Everything else is
replicated. Exact (up to the order of the all-reduce's sums).
"""
from __future__ import annotations

import torch
from torch import nn
from .runner import Runner


def _take(t: torch.Tensor, dim: int, index: int, parts: int) -> torch.Tensor:
    if t.shape[dim] % parts:
        raise ValueError(f"tensor parallelism over {parts} ranks cannot split {t.shape[dim]} features evenly")
    return t.chunk(parts, dim=dim)[index].clone()


def build_sharded(setup):
    """The rank's model: built whole, then tensor-parallel sharded when the plan has tp."""
    m = setup.rt.build_model()
    if setup.plan.degree("tp") > 1:
        shard(m, setup.group("tp"))
    return m


def shard(model: nn.Module, group) -> None:
    """Slice the model's weights in place to this rank's share of the tp group."""
    i, n = group.index, group.size
    for m in model.modules():
        role = getattr(m, "tp_role", "rep")
        if role == "rep":
            continue
        if isinstance(m, nn.GroupNorm):          # follows a column-parallel conv
            m.weight = nn.Parameter(_take(m.weight.data, 0, i, n), requires_grad=False)
            m.bias = nn.Parameter(_take(m.bias.data, 0, i, n), requires_grad=False)
            m.num_groups //= n
            m.num_channels //= n
            continue
        dim = 0 if role == "col" else 1
        m.weight = nn.Parameter(_take(m.weight.data, dim, i, n), requires_grad=False)
        if role == "col" and m.bias is not None:
            m.bias = nn.Parameter(_take(m.bias.data, 0, i, n), requires_grad=False)


RUNNER = Runner("tp")        # its group rides in every ctx (Ctx.tp_reduce)
