"""tp: Megatron-style tensor parallelism.

Every projection of a denoiser carries the tp_role of its ModelSpec op (set per class by
the adapters' ROLES, executor/diffusers/): "col" layers keep 1/t of their output features
(Q/K/V and MLP-up projections, so each rank keeps whole attention heads; the first 3x3 conv
of a ResNet block, its timestep projection and the GroupNorm after it, which keeps whole
groups), "row" layers keep 1/t of their input features and their partial outputs are summed
by an all-reduce over the tp group before the bias is added (attention out, MLP down, the
second ResNet conv): the row-parallel hooks of executor/diffusers/hooks.py call
ctx.tp_reduce. Everything else is replicated. Exact (up to the order of the all-reduce's
sums).

Packed projections (diffusers' GEGLU up-projection, whose output is [value | gate]; Flux's
single-block out-projection, whose input is [attention | MLP]) carry `tp_blocks`: the
split dimension is cut into those blocks and each block is split on its own. Modules
with `tp_divide` (diffusers Attention: "heads") get those counts divided by t.
"""
from __future__ import annotations

import torch
from torch import nn
from .runner import Runner


def _take(t: torch.Tensor, dim: int, index: int, parts: int, blocks=None) -> torch.Tensor:
    if blocks:
        if sum(blocks) != t.shape[dim]:
            raise ValueError(f"packed blocks {blocks} do not add up to {t.shape[dim]} features")
        return torch.cat([_take(b, dim, index, parts) for b in t.split(list(blocks), dim=dim)], dim=dim)
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
        for attr in getattr(m, "tp_divide", ()):
            setattr(m, attr, getattr(m, attr) // n)
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
        blocks = getattr(m, "tp_blocks", None)
        if m.weight.dim() == 1:          # a norm's weight over column-parallel features
            dim = 0
        m.weight = nn.Parameter(_take(m.weight.data, dim, i, n, blocks), requires_grad=False)
        if role == "col" and getattr(m, "bias", None) is not None:
            m.bias = nn.Parameter(_take(m.bias.data, 0, i, n, blocks), requires_grad=False)


RUNNER = Runner("tp")        # its group rides in every ctx (Ctx.tp_reduce)
