"""SD-like U-Net (ref-unet-*), mirroring planner/zoo/reference.py `_unet` (the block list
and the skip stack come from the same `unet_layout`).

Activations are [B, C, rows, W]; a rank holds the latent rows [ctx.r0, ctx.r1) at full
resolution, i.e. rows [r0 >> level, r1 >> level) at a level downsampled `level` times.
3x3 convs get the row above and below their slice from ctx.halo (zeros at the image
edge, like padding=1), group norms get their statistics from ctx.group_norm, so a row
split changes nothing serially and is exact when the strategy exchanges fresh rows.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from planner.zoo.reference import UNetConfig, unet_layout

from .common import MLP, CrossAttention, RefModel, SelfAttention, State, TimestepMLP, linear, timestep_features


class Conv3x3(nn.Conv2d):
    """3x3 conv whose row padding comes from the neighbouring ranks (ctx.halo); columns
    are never split, so they are zero-padded here. Row-parallel (TP) convs all-reduce
    their partial sums before the bias."""

    def __init__(self, cin: int, cout: int, stride: int = 1, role: str = "rep"):
        super().__init__(cin, cout, 3, stride=stride, padding=0)
        self.tp_role = role

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        x = F.pad(ctx.halo(self, x), (1, 1, 0, 0))
        if self.tp_role != "row":
            return F.conv2d(x, self.weight, self.bias, self.stride)
        return ctx.tp_reduce(F.conv2d(x, self.weight, None, self.stride)) + self.bias[:, None, None]


class GroupNorm(nn.GroupNorm):
    """Statistics over the whole image, whichever rows this rank holds (ctx.group_norm).
    tp_role "col": follows a column-parallel conv, so TP keeps its share of the groups."""

    def __init__(self, groups: int, ch: int, role: str = "rep"):
        super().__init__(groups, ch, eps=1e-5)
        self.tp_role = role

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        return ctx.group_norm(self, x)


class Embed(nn.Module):
    def __init__(self, c: UNetConfig, channels: int):
        super().__init__()
        self.c0 = c.channels[0]
        self.time_embedding = TimestepMLP(self.c0, 4 * self.c0)
        self.conv_in = Conv3x3(channels, self.c0)

    def condition(self, t: torch.Tensor, pooled=None) -> torch.Tensor:
        return self.time_embedding(timestep_features(t, self.c0))

    def forward(self, s: State, ctx) -> State:
        s.c = self.condition(s.t)
        s.x = self.conv_in(s.latent, ctx)
        s.txt = s.text
        s.skips = [s.x]
        return s


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, groups: int, pop: bool, push: bool):
        super().__init__()
        self.pop, self.push = pop, push
        self.norm1 = GroupNorm(groups, cin)
        self.conv1 = Conv3x3(cin, cout, role="col")
        self.time_emb_proj = linear(temb, cout, "col")
        self.norm2 = GroupNorm(groups, cout, role="col")
        self.conv2 = Conv3x3(cout, cout, role="row")
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, s: State, ctx) -> State:
        x = torch.cat([s.x, s.skips.pop()], dim=1) if self.pop else s.x
        h = self.conv1(F.silu(self.norm1(x, ctx)), ctx)
        h = h + self.time_emb_proj(F.silu(s.c))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h, ctx)), ctx)
        s.x = (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h
        if self.push:
            s.skips.append(s.x)
        return s


class Transformer(nn.Module):
    def __init__(self, ch: int, heads: int, groups: int, text_dim: int, push: bool):
        super().__init__()
        self.push = push
        self.norm = GroupNorm(groups, ch)
        self.proj_in, self.proj_out = linear(ch, ch), linear(ch, ch)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(ch), nn.LayerNorm(ch), nn.LayerNorm(ch)
        self.attn1 = SelfAttention(ch, heads)
        self.attn2 = CrossAttention(ch, heads, text_dim)
        self.ff = MLP(ch, 4 * ch)

    def forward(self, s: State, ctx) -> State:
        x = s.x
        b, ch, h, w = x.shape
        t = self.proj_in(self.norm(x, ctx).flatten(2).transpose(1, 2))
        t = t + self.attn1(self.norm1(t), ctx)
        t = t + self.attn2(self.norm2(t), s.txt, ctx)
        t = t + self.ff(self.norm3(t), ctx)
        s.x = self.proj_out(t).transpose(1, 2).reshape(b, ch, h, w) + x
        if self.push:
            s.skips.append(s.x)
        return s


class Resample(nn.Module):
    """Downsample (3x3 conv, stride 2) or upsample (nearest x2, then 3x3 conv)."""

    def __init__(self, ch: int, down: bool, push: bool):
        super().__init__()
        self.down, self.push = down, push
        self.conv = Conv3x3(ch, ch, stride=2 if down else 1)

    def forward(self, s: State, ctx) -> State:
        x = s.x if self.down else F.interpolate(s.x, scale_factor=2.0, mode="nearest")
        s.x = self.conv(x, ctx)
        if self.push:
            s.skips.append(s.x)
        return s


class Head(nn.Module):
    def __init__(self, ch: int, channels: int, groups: int):
        super().__init__()
        self.norm_out = GroupNorm(groups, ch)
        self.conv_out = Conv3x3(ch, channels)

    def forward(self, s: State, ctx) -> State:
        s.x = self.conv_out(F.silu(self.norm_out(s.x, ctx)), ctx)
        return s


def build(c: UNetConfig, channels: int) -> RefModel:
    temb = 4 * c.channels[0]
    names, blocks = [], []
    for b in unet_layout(c, channels):
        names.append(b.name)
        if b.kind == "embed":
            blocks.append(Embed(c, channels))
        elif b.kind == "resnet":
            blocks.append(ResBlock(b.cin, b.cout, temb, c.groups, b.pop, b.push))
        elif b.kind == "transformer":
            blocks.append(Transformer(b.cout, c.heads, c.groups, c.text_dim, b.push))
        elif b.kind in ("downsample", "upsample"):
            blocks.append(Resample(b.cout, b.kind == "downsample", b.push))
        else:
            blocks.append(Head(b.cin, channels, c.groups))
    return RefModel(names, blocks)
