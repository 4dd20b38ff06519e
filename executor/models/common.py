"""Layers shared by the reference models, and the State that flows between their blocks.

Every model is a list of blocks with the same names and order as its ModelSpec
(planner/zoo/reference.py), so a pipeline cut after block i means the same thing to the
planner and to the executor. A block reads and writes a State; what crosses a pipeline
stage boundary is exactly State.tensors().

Layers never talk to other ranks themselves. Whatever needs the rest of the image or the
other tensor-parallel ranks goes through `ctx` (executor/context.py): attention, the rows
a 3x3 conv needs from its neighbours, group-norm statistics, and the all-reduce after a
row-parallel projection. Serially `ctx` is the identity, so one model serves every plan.

Tensor parallelism: each projection carries tp_role "col" (output features split), "row"
(input features split, output all-reduced) or "rep" (whole on every rank), as in the
ModelSpec ops; executor/strategies/tp.py slices the weights by that attribute. Attention
infers its local head count from the sliced weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class State:
    """What one block hands the next. Inputs (latent, t, text, pooled) are read by the
    embed block; x / txt / c / skips are the activations a pipeline stage sends on."""

    latent: torch.Tensor | None = None   # [B, C, (F,) rows, W] this rank's slice of the noisy latent
    t: torch.Tensor | None = None        # [B] model timesteps
    text: torch.Tensor | None = None     # [B, T, text_dim] text embeddings
    pooled: torch.Tensor | None = None   # [B, pooled_dim] (MM-DiT)
    x: torch.Tensor | None = None        # image stream
    txt: torch.Tensor | None = None      # text stream (MM-DiT), projected caption (DiT), raw text (U-Net)
    c: torch.Tensor | None = None        # conditioning vector(s) from the timestep
    skips: list = field(default_factory=list)   # U-Net long skips still on the stack

    def tensors(self) -> list[torch.Tensor]:
        return [self.x, self.txt, self.c, *self.skips]

    @staticmethod
    def from_tensors(ts: list[torch.Tensor], t: torch.Tensor | None = None) -> "State":
        return State(t=t, x=ts[0], txt=ts[1], c=ts[2], skips=list(ts[3:]))


# ---------------------------------------------------------------- projections
def linear(fin: int, fout: int, role: str = "rep") -> nn.Linear:
    lin = nn.Linear(fin, fout)
    lin.tp_role = role
    return lin


def project(lin: nn.Linear, x: torch.Tensor, ctx) -> torch.Tensor:
    """Apply a projection; a row-parallel one sums its partial products over the TP group
    before the bias is added (once, not once per rank)."""
    if getattr(lin, "tp_role", "rep") != "row":
        return lin(x)
    return ctx.tp_reduce(F.linear(x, lin.weight)) + lin.bias


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the (float) timesteps, [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepMLP(nn.Module):
    """linear -> SiLU -> linear on a pooled vector (timestep features, pooled text)."""

    def __init__(self, fin: int, dim: int):
        super().__init__()
        self.linear_1, self.linear_2 = linear(fin, dim), linear(dim, dim)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(v.to(self.linear_1.weight.dtype))))


_POS: dict = {}


def sincos_2d(rows: tuple[int, int], cols: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding of grid rows [r0, r1) x all columns, [n, dim]
    (half the channels encode the row, half the column). Depends only on global positions,
    so every rank slices the same table."""
    r0, r1 = rows
    key = (r0, r1, cols, dim, like.dtype, like.device)
    if key not in _POS:
        quarter = dim // 4
        omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
        rr = torch.arange(r0, r1, dtype=torch.float64)[:, None].expand(r1 - r0, cols).reshape(-1)
        cc = torch.arange(cols, dtype=torch.float64)[None, :].expand(r1 - r0, cols).reshape(-1)
        parts = [torch.sin(rr[:, None] * omega), torch.cos(rr[:, None] * omega),
                 torch.sin(cc[:, None] * omega), torch.cos(cc[:, None] * omega)]
        emb = torch.cat(parts, dim=1)
        emb = F.pad(emb, (0, dim - emb.shape[1]))
        _POS[key] = emb.to(like.dtype).to(like.device)
    return _POS[key]


def sincos_1d(pos: tuple[int, int], dim: int, like: torch.Tensor) -> torch.Tensor:
    """Fixed sin-cos embedding of positions [p0, p1) (video frames), [n, dim]."""
    p = torch.arange(*pos, dtype=torch.float64)[:, None]
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    emb = torch.cat([torch.sin(p * omega), torch.cos(p * omega)], dim=1)
    return F.pad(emb, (0, dim - emb.shape[1])).to(like.dtype).to(like.device)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * (1 + scale) + shift with [B, D] vectors broadcast over x's token dims."""
    shape = (shift.shape[0],) + (1,) * (x.dim() - 2) + (shift.shape[-1],)
    return x * (1 + scale.view(shape)) + shift.view(shape)


def gate(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return g.view((g.shape[0],) + (1,) * (x.dim() - 2) + (g.shape[-1],)) * x


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def heads_first(x: torch.Tensor, hd: int) -> torch.Tensor:
    """[B, n, heads*hd] -> [B, heads, n, hd]."""
    return x.view(x.shape[0], x.shape[1], -1, hd).transpose(1, 2)


def heads_last(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, n, hd] -> [B, n, heads*hd]."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


# ---------------------------------------------------------------- attention and MLP
class SelfAttention(nn.Module):
    """Q/K/V (column parallel) -> attention over the image stream -> out (row parallel).
    `split=False`: the sequence is whole on this rank (temporal attention of a video
    model, whose frames are never split), so no strategy needs to see it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.hd = dim // heads
        self.to_q, self.to_k, self.to_v = (linear(dim, dim, "col") for _ in range(3))
        self.to_out = linear(dim, dim, "row")

    def forward(self, x: torch.Tensor, ctx, split: bool = True) -> torch.Tensor:
        q, k, v = (heads_first(p(x), self.hd) for p in (self.to_q, self.to_k, self.to_v))
        o = ctx.attention(self, q, k, v) if split else F.scaled_dot_product_attention(q, k, v)
        return project(self.to_out, heads_last(o), ctx)


class CrossAttention(nn.Module):
    """Image queries against the text keys; the text is whole on every rank, so this is
    local under every strategy."""

    def __init__(self, dim: int, heads: int, ctx_dim: int):
        super().__init__()
        self.hd = dim // heads
        self.to_q = linear(dim, dim, "col")
        self.to_k, self.to_v = linear(ctx_dim, dim, "col"), linear(ctx_dim, dim, "col")
        self.to_out = linear(dim, dim, "row")

    def forward(self, x: torch.Tensor, text: torch.Tensor, ctx, groups: int = 1) -> torch.Tensor:
        """groups > 1: x holds `groups` sequences per text sample (video frames); the text
        K/V are projected once and shared by all of them."""
        q = heads_first(self.to_q(x), self.hd)
        k, v = (heads_first(p(text), self.hd) for p in (self.to_k, self.to_v))
        if groups > 1:
            k, v = (t.repeat_interleave(groups, dim=0) for t in (k, v))
        return project(self.to_out, heads_last(F.scaled_dot_product_attention(q, k, v)), ctx)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.up, self.down = linear(dim, hidden, "col"), linear(hidden, dim, "row")

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        return project(self.down, F.gelu(self.up(x), approximate="tanh"), ctx)


class RefModel(nn.Module):
    """A denoiser as an ordered list of blocks. forward(state, ctx, a, b) runs blocks [a, b)."""

    arch = ""

    def __init__(self, names: list[str], blocks: list[nn.Module]):
        super().__init__()
        self.names = names
        self.blocks = nn.ModuleList(blocks)

    def forward(self, s: State, ctx, start: int = 0, stop: int | None = None) -> State:
        stop = len(self.blocks) if stop is None else stop
        for i in range(start, stop):
            s = self.blocks[i](s, ctx)
        return s

    def condition(self, t: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        """The conditioning vector for timesteps t (what the embed block puts in State.c).
        Methods that feed a block a stale input (AsyncDiff, Hybridiff) refresh it with this."""
        return self.blocks[0].condition(t, pooled)

    def keep_blocks(self, start: int, stop: int) -> None:
        """Drop the weights of blocks outside [start, stop): a pipeline stage holds its own."""
        for i in range(len(self.blocks)):
            if not start <= i < stop:
                self.blocks[i] = nn.Identity()
