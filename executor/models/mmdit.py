"""SD3-like MM-DiT (ref-mmdit-*), mirroring planner/zoo/reference.py `_mmdit`.

Two streams, image tokens [B, n, D] and text tokens [B, T, D], each with its own
modulation, norms, projections and MLP, meet in one attention over [text; image]. The
text stream is whole on every rank (sequence strategies split only the image stream), so
ctx.attention gets the text Q/K/V beside the image ones and returns both outputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from planner.zoo.reference import MMDiTConfig

from .common import (MLP, RefModel, State, TimestepMLP, gate, heads_first, heads_last, layer_norm, linear, modulate,
                     project, sincos_2d, timestep_features)


class Embed(nn.Module):
    def __init__(self, c: MMDiTConfig, channels: int, patch: int):
        super().__init__()
        d = c.hidden
        self.freq = c.freq
        self.patch_embed = nn.Conv2d(channels, d, patch, stride=patch)
        self.context_embedder = linear(c.text_dim, d)
        self.t_embedder = TimestepMLP(c.freq, d)
        self.pooled_embedder = TimestepMLP(c.pooled_dim, d)

    def condition(self, t: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        return self.t_embedder(timestep_features(t, self.freq)) + self.pooled_embedder(pooled)

    def forward(self, s: State, ctx) -> State:
        x = self.patch_embed(s.latent)
        cols = x.shape[-1]
        x = x.flatten(2).transpose(1, 2)
        s.x = x + sincos_2d((ctx.r0, ctx.r1), cols, x.shape[-1], x)
        s.txt = self.context_embedder(s.text)
        s.c = self.condition(s.t, s.pooled)
        return s


class JointAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.hd = d // heads
        self.to_q, self.to_k, self.to_v = (linear(d, d, "col") for _ in range(3))
        self.add_q, self.add_k, self.add_v = (linear(d, d, "col") for _ in range(3))
        self.to_out, self.to_add_out = linear(d, d, "row"), linear(d, d, "row")

    def forward(self, x: torch.Tensor, txt: torch.Tensor, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = (heads_first(p(x), self.hd) for p in (self.to_q, self.to_k, self.to_v))
        text = tuple(heads_first(p(txt), self.hd) for p in (self.add_q, self.add_k, self.add_v))
        o, to = ctx.attention(self, q, k, v, text=text)
        return project(self.to_out, heads_last(o), ctx), project(self.to_add_out, heads_last(to), ctx)


class JointBlock(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.norm1_linear, self.norm1_context_linear = linear(d, 6 * d), linear(d, 6 * d)
        self.attn = JointAttention(d, heads)
        self.ff, self.ff_context = MLP(d, ffn), MLP(d, ffn)

    def forward(self, s: State, ctx) -> State:
        c = F.silu(s.c)
        m = self.norm1_linear(c).chunk(6, dim=-1)
        mc = self.norm1_context_linear(c).chunk(6, dim=-1)
        o, to = self.attn(modulate(layer_norm(s.x), m[0], m[1]), modulate(layer_norm(s.txt), mc[0], mc[1]), ctx)
        x, txt = s.x + gate(m[2], o), s.txt + gate(mc[2], to)
        x = x + gate(m[5], self.ff(modulate(layer_norm(x), m[3], m[4]), ctx))
        txt = txt + gate(mc[5], self.ff_context(modulate(layer_norm(txt), mc[3], mc[4]), ctx))
        s.x, s.txt = x, txt
        return s


class Final(nn.Module):
    def __init__(self, d: int, channels: int, patch: int):
        super().__init__()
        self.ch, self.p = channels, patch
        self.norm_out_linear = linear(d, 2 * d)
        self.proj_out = linear(d, patch * patch * channels)

    def forward(self, s: State, ctx) -> State:
        shift, scale = self.norm_out_linear(F.silu(s.c)).chunk(2, dim=-1)
        x = self.proj_out(modulate(layer_norm(s.x), shift, scale))
        p, ch, rows = self.p, self.ch, ctx.r1 - ctx.r0
        cols = x.shape[1] // rows
        s.x = x.reshape(-1, rows, cols, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(-1, ch, rows * p, cols * p)
        return s


def build(c: MMDiTConfig, channels: int, patch: int) -> RefModel:
    names = ["embed"] + [f"joint{i}" for i in range(c.depth)] + ["final"]
    blocks = ([Embed(c, channels, patch)] + [JointBlock(c.hidden, c.heads, c.mlp_ratio * c.hidden)
                                             for _ in range(c.depth)] + [Final(c.hidden, channels, patch)])
    return RefModel(names, blocks)


