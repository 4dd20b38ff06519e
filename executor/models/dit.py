"""PixArt-like DiT (ref-dit-*) and the Latte-like video DiT with factorised attention
(ref-video-*), mirroring planner/zoo/reference.py `_dit` and `_video` block by block.

Image stream layout: [B, tokens, D] for images; [B, frames, positions, D] for video, where
positions are one frame's tokens in row-major order. An image is split by grid rows
(a rank holds rows [ctx.r0, ctx.r1)), a video by whole frames ([ctx.f0, ctx.f1), every
row); the embed and final blocks turn latent slices into tokens and back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from planner.zoo.reference import DiTConfig, VideoDiTConfig

from .common import (MLP, CrossAttention, RefModel, SelfAttention, State, TimestepMLP, gate, layer_norm, linear,
                     modulate, sincos_1d, sincos_2d, timestep_features)


class Embed(nn.Module):
    """Patch embedding + position embeddings, timestep MLP with the shared adaLN-single
    projection, and the caption projection of the text."""

    def __init__(self, c: DiTConfig | VideoDiTConfig, channels: int, patch: int, video: bool):
        super().__init__()
        d = c.hidden
        self.freq, self.video = c.freq, video
        self.patch_embed = nn.Conv2d(channels, d, patch, stride=patch)
        self.t_embedder = TimestepMLP(c.freq, d)
        self.t_block = linear(d, 6 * d)
        self.caption_proj = nn.Sequential(linear(c.text_dim, d), nn.GELU(approximate="tanh"), linear(d, d))

    def condition(self, t: torch.Tensor, pooled=None) -> torch.Tensor:
        """[six modulation vectors | timestep embedding], [B, 7D]."""
        temb = self.t_embedder(timestep_features(t, self.freq))
        return torch.cat([self.t_block(F.silu(temb)), temb], dim=-1)

    def forward(self, s: State, ctx) -> State:
        lat = s.latent
        if self.video:                       # [B, C, F, H, W] -> one image per frame
            b, ch, fr = lat.shape[:3]
            lat = lat.transpose(1, 2).reshape(b * fr, ch, *lat.shape[3:])
        x = self.patch_embed(lat)
        cols = x.shape[-1]
        x = x.flatten(2).transpose(1, 2)
        x = x + sincos_2d((ctx.r0, ctx.r1), cols, x.shape[-1], x)
        if self.video:
            x = x.view(b, fr, x.shape[1], x.shape[2]) + sincos_1d((ctx.f0, ctx.f1), x.shape[-1], x)[None, :, None]
        s.x, s.c, s.txt = x, self.condition(s.t), self.caption_proj(s.text)
        return s


class Block(nn.Module):
    """PixArt block. kind "image": attention over all tokens; "spatial": within each frame
    (+ cross-attention); "temporal": across frames at each position (no cross-attention)."""

    def __init__(self, d: int, heads: int, ffn: int, kind: str, text_dim: int):
        super().__init__()
        self.kind, self.d = kind, d
        self.table = nn.Parameter(torch.randn(6, d) / d ** 0.5)
        self.attn1 = SelfAttention(d, heads)
        self.attn2 = CrossAttention(d, heads, d) if kind != "temporal" else None
        self.ff = MLP(d, ffn)

    def forward(self, s: State, ctx) -> State:
        x = s.x
        if self.kind != "image":             # DSP shards frames or positions (identity otherwise)
            x = ctx.switch(x, "positions" if self.kind == "temporal" else "frames")
        shift1, scale1, g1, shift2, scale2, g2 = (s.c[:, :6 * self.d].view(-1, 6, self.d) + self.table).unbind(1)
        x = x + gate(g1, self._self_attn(modulate(layer_norm(x), shift1, scale1), ctx))
        if self.attn2 is not None:
            x = x + self._cross_attn(x, s.txt, ctx)
        x = x + gate(g2, self.ff(modulate(layer_norm(x), shift2, scale2), ctx))
        s.x = x
        return s

    def _self_attn(self, h: torch.Tensor, ctx) -> torch.Tensor:
        if self.kind == "image":
            return self.attn1(h, ctx)
        # A video is split by whole frames (DSP: frames in spatial blocks, positions in
        # temporal ones), so a frame's positions are always local and only temporal
        # attention can span ranks.
        b, fr, n, d = h.shape
        if self.kind == "spatial":
            return self.attn1(h.reshape(b * fr, n, d), ctx, split=False).view(b, fr, n, d)
        o = self.attn1(h.transpose(1, 2).reshape(b * n, fr, d), ctx)
        return o.view(b, n, fr, d).transpose(1, 2)

    def _cross_attn(self, x: torch.Tensor, txt: torch.Tensor, ctx) -> torch.Tensor:
        if self.kind == "image":
            return self.attn2(x, txt, ctx)
        b, fr, n, d = x.shape
        return self.attn2(x.reshape(b * fr, n, d), txt, ctx, groups=fr).view(b, fr, n, d)


class Final(nn.Module):
    """LayerNorm -> shift/scale from the timestep embedding -> linear -> unpatchify."""

    def __init__(self, d: int, channels: int, patch: int, video: bool):
        super().__init__()
        self.d, self.ch, self.p, self.video = d, channels, patch, video
        self.table = nn.Parameter(torch.randn(2, d) / d ** 0.5)
        self.proj_out = linear(d, patch * patch * channels)

    def forward(self, s: State, ctx) -> State:
        x = ctx.switch(s.x, "frames") if self.video else s.x
        shift, scale = (self.table[None] + s.c[:, None, 6 * self.d:]).unbind(1)
        x = self.proj_out(modulate(layer_norm(x), shift, scale))
        p, ch, rows = self.p, self.ch, ctx.r1 - ctx.r0
        lead = x.shape[:-2]                  # [B] or [B, frames]
        cols = x.shape[-2] // rows
        x = x.reshape(-1, rows, cols, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(-1, ch, rows * p, cols * p)
        if self.video:
            x = x.view(*lead, ch, rows * p, cols * p).transpose(1, 2)
        s.x = x.contiguous()
        return s


def build(c: DiTConfig, channels: int, patch: int) -> RefModel:
    names = ["embed"] + [f"block{i}" for i in range(c.depth)] + ["final"]
    blocks = ([Embed(c, channels, patch, video=False)]
              + [Block(c.hidden, c.heads, c.mlp_ratio * c.hidden, "image", c.text_dim) for _ in range(c.depth)]
              + [Final(c.hidden, channels, patch, video=False)])
    return RefModel(names, blocks)


def build_video(c: VideoDiTConfig, channels: int, patch: int) -> RefModel:
    names, blocks = ["embed"], [Embed(c, channels, patch, video=True)]
    for i in range(c.depth):
        for kind in ("spatial", "temporal"):
            names.append(f"{kind}{i}")
            blocks.append(Block(c.hidden, c.heads, c.mlp_ratio * c.hidden, kind, c.text_dim))
    names.append("final")
    blocks.append(Final(c.hidden, channels, patch, video=True))
    return RefModel(names, blocks)
