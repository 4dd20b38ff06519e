"""ring: ring attention. Each rank of a group of r holds 1/r of the tokens; inside every
attention the K/V blocks circulate: at each of r-1 passes a rank sends its current block
to the next rank and receives the previous rank's (isend/irecv, posted before the
attention of the current block so the transfer overlaps it), and merges the partial
results with an online softmax (log-sum-exp weights). Exact up to summation order.

With joint attention the (whole) text queries and keys ride along: every rank computes
the text rows against all blocks too, so the text output needs no communication.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..comm import Comm, Group, wait_all


def attention_lse(q, k, v) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output and the log-sum-exp of each query's scores ([B, H, n], fp32)."""
    if q.device.type == "cpu":
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)
        return o, lse
    s = (q.float() @ k.float().transpose(-1, -2)) / q.shape[-1] ** 0.5
    lse = torch.logsumexp(s, dim=-1)
    return (torch.softmax(s, dim=-1) @ v.float()).to(q.dtype), lse


def merge(o1, lse1, o2, lse2):
    """Combine attention over two disjoint key sets."""
    lse = torch.logaddexp(lse1, lse2)
    w1, w2 = torch.exp(lse1 - lse)[..., None], torch.exp(lse2 - lse)[..., None]
    return (o1.float() * w1 + o2.float() * w2), lse


def attention(comm: Comm, g: Group, q, k, v, text=None):
    """Local queries (plus the text queries) against every rank's K/V."""
    if text is not None:
        tq, tk, tv = text
        q = torch.cat([tq, q], 2)
    cur = torch.stack([k, v])
    o = lse = None
    for step in range(g.size):
        works = []
        if step < g.size - 1:
            nxt = torch.empty_like(cur)
            works = comm.exchange(cur, g.peer(1), nxt, g.peer(-1), tag=7)
        kb, vb = cur[0], cur[1]
        if step == 0 and text is not None:
            kb, vb = torch.cat([tk, kb], 2), torch.cat([tv, vb], 2)
        ob, lb = attention_lse(q, kb, vb)
        o, lse = (ob.float(), lb) if o is None else merge(o, lse, ob, lb)
        if works:
            with comm._timed("p2p"):
                wait_all(works)
            cur = nxt
    o = o.to(q.dtype)
    if text is None:
        return o
    t = text[0].shape[2]
    return o[:, :, t:], o[:, :, :t]


def gather(comm: Comm, g: Group, t: torch.Tensor) -> torch.Tensor:
    """Every member's t in group order ([r, *t.shape]) by r-1 ring passes (PipeFusion with
    ring inside a stage collects a patch's fresh K/V this way)."""
    out = [None] * g.size
    out[g.index] = cur = t.contiguous()
    for step in range(1, g.size):
        nxt = torch.empty_like(cur)
        wait_all(comm.exchange(cur, g.peer(1), nxt, g.peer(-1), tag=8))
        cur = nxt
        out[(g.index - step) % g.size] = cur
    return torch.stack(out)


def sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)
