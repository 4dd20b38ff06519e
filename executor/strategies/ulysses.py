"""ulysses: DeepSpeed-Ulysses sequence parallelism.

Each rank of a group of u holds 1/u of the image tokens with all heads. Around attention
an all-to-all turns that into all tokens for 1/u of the heads, attention runs on whole
sequences, and a second all-to-all turns the output back. Q, K and V travel in one
all-to-all each, then O: four calls per attention, as xDiT's default (yunchang,
use_pack_qkv=False) sends them and as planner/strategies/ulysses.py costs them (on a CPU
host each gloo call costs about a millisecond whatever its size, so packing would make
the executor faster than the plan it checks). The text of joint attention is whole on every rank: each rank
takes its heads' share of the text Q/K/V, and the text output (computed for those heads)
is all-gathered over the heads. Exact.
"""
from __future__ import annotations

import torch

from ..comm import Comm, Group


def to_heads(comm: Comm, g: Group, *ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """[B, H, n, hd] token shards -> [B, H/u, u*n, hd] head shards (tokens in group order),
    one all-to-all per tensor."""
    return tuple(_to_heads(comm, g, t) for t in ts)


def _to_heads(comm: Comm, g: Group, t: torch.Tensor) -> torch.Tensor:
    b, h, n, hd = t.shape
    u = g.size
    x = t.reshape(b, u, h // u, n, hd).permute(1, 0, 2, 3, 4)             # [dest, B, H/u, n, hd]
    x = comm.all_to_all(x, g)                                          # [source, B, H/u, n, hd]
    return x.permute(1, 2, 0, 3, 4).reshape(b, h // u, u * n, hd)


def to_tokens(comm: Comm, g: Group, o: torch.Tensor) -> torch.Tensor:
    """The inverse: [B, H/u, u*n, hd] -> [B, H, n, hd]."""
    b, h, un, hd = o.shape
    u = g.size
    x = o.reshape(b, h, u, un // u, hd).permute(2, 0, 1, 3, 4)           # [dest, B, H/u, n, hd]
    x = comm.all_to_all(x, g)                                          # [source head part, B, H/u, n, hd]
    return x.permute(1, 0, 2, 3, 4).reshape(b, u * h, un // u, hd)


def text_heads(g: Group, text):
    """This rank's heads of the (whole) text Q/K/V."""
    if text is None:
        return None
    h = text[0].shape[1] // g.size
    return tuple(t[:, g.index * h:(g.index + 1) * h] for t in text)


def text_output(comm: Comm, g: Group, to: torch.Tensor) -> torch.Tensor:
    """All heads of the text output from every rank's heads."""
    parts = comm.all_gather(to, g)                                     # [u, B, H/u, T, hd]
    return parts.permute(1, 0, 2, 3, 4).reshape(to.shape[0], -1, *to.shape[2:])


def attention(comm: Comm, g: Group, q, k, v, text, inner):
    """Ulysses around `inner(q, k, v, text)` (local attention, or ring attention for USP)."""
    q, k, v = to_heads(comm, g, q, k, v)
    out = inner(q, k, v, text_heads(g, text))
    if text is None:
        return to_tokens(comm, g, out)
    o, to = out
    return to_tokens(comm, g, o), text_output(comm, g, to)
