"""LatteTransformer3DModel (latte-1) as planner blocks (planner/zoo/dit.py _latte): embed,
spatial0, temporal0, spatial1, .., final.

Factorised attention: spatial blocks attend within each frame (local: a video is split by
whole frames) and cross-attend the prompt; temporal blocks attend across frames at each
position, the attention that crosses ranks under sequence strategies. State.x is
[B, frames, positions, D]; DSP (ctx.switch) shards frames for spatial blocks and
positions for temporal ones.

embed     PatchEmbed per frame (the whole frame's sin-cos table), adaLN-single on the
          timestep (State.c = [six modulation vectors | embedded timestep]), caption projection
spatial   BasicTransformerBlock on [B x frames, positions, D] with the prompt repeated per frame
temporal  BasicTransformerBlock on [B x positions, frames, D]; the first adds the frame
          positions (the class's temp_pos_embed rows of this rank's frames)
final     scale-shift with the embedded timestep, proj_out, unpatchify; the learned variance
          channels are dropped (LattePipeline does the same)
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, patch_embed_rows, set_roles, unpatchify

ROLES = {f"{c}.*.{n}": "col" for c in ("transformer_blocks", "temporal_transformer_blocks") for n in
         ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn2.to_q", "attn2.to_k", "attn2.to_v", "ff.net.0.proj")}
ROLES |= {f"{c}.*.{n}": "row" for c in ("transformer_blocks", "temporal_transformer_blocks")
          for n in ("attn1.to_out.0", "attn2.to_out.0", "ff.net.2")}


class Embed(Block):
    def condition(self, t, pooled=None):
        net = self.den.net
        dtype = net.caption_projection.linear_1.weight.dtype
        six, emb = net.adaln_single(t, {"resolution": None, "aspect_ratio": None}, batch_size=t.shape[0],
                                    hidden_dtype=dtype)
        return torch.cat([six, emb], dim=-1)

    def run(self, s, ctx):
        net = self.den.net
        lat = s.latent
        b, ch, fr, h, w = lat.shape
        x = patch_embed_rows(self.den, net.pos_embed, lat.transpose(1, 2).reshape(b * fr, ch, h, w), ctx)
        s.x = x.view(b, fr, x.shape[1], x.shape[2])
        s.c = self.condition(s.t)
        s.txt = net.caption_projection(s.text)
        return s


class Spatial(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"transformer_blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        x = ctx.switch(s.x, "frames")
        b, fr, n, d = x.shape
        txt = s.txt.repeat_interleave(fr, dim=0)
        c = s.c[:, :6 * d].repeat_interleave(fr, dim=0)
        y = self.den.net.transformer_blocks[self.i](x.reshape(b * fr, n, d), None, txt, None, c, None, None)
        s.x = y.view(b, fr, n, d)
        return s


class Temporal(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"temporal_transformer_blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        net = self.den.net
        x = ctx.switch(s.x, "positions")
        b, fr, n, d = x.shape
        h = x.transpose(1, 2).reshape(b * n, fr, d)
        if self.i == 0 and ctx.F > 1:
            whole = fr == ctx.F                      # DSP holds every frame here
            f0, f1 = (0, fr) if whole else (ctx.f0, ctx.f1)
            h = h + net.temp_pos_embed[:, f0:f1].to(h.dtype)
        c = s.c[:, :6 * d].repeat_interleave(n, dim=0)
        y = net.temporal_transformer_blocks[self.i](h, None, None, None, c, None, None)
        s.x = y.view(b, n, fr, d).transpose(1, 2)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        x = ctx.switch(s.x, "frames")
        b, fr, n, d = x.shape
        emb = s.c[:, 6 * d:].repeat_interleave(fr, dim=0)
        shift, scale = (net.scale_shift_table[None] + emb[:, None]).chunk(2, dim=1)
        y = net.proj_out(net.norm_out(x.reshape(b * fr, n, d)) * (1 + scale) + shift)
        out = unpatchify(y, ctx.R, net.config.patch_size, net.out_channels)
        out = out.view(b, fr, *out.shape[1:]).transpose(1, 2)
        s.x = out[:, :net.config.in_channels]          # learned variance dropped
        return s


def build(net, binding) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("pos_embed", "caption_projection")))
    for i in range(len(net.transformer_blocks)):
        den.add(Spatial(f"spatial{i}", den, i))
        den.add(Temporal(f"temporal{i}", den, i))
        den.attention[f"temporal_transformer_blocks.{i}.attn1"] = None
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    out = net(latent, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    return out[:, :net.config.in_channels]
