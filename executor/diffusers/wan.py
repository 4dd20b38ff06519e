"""WanTransformer3DModel (wan2.1-t2v-1.3b / -14b) as planner blocks (planner/zoo/video.py
_wan): embed, block0 .., final.

A video is split by whole latent frames: a rank holds frames [ctx.f0, ctx.f1) with every
row, i.e. a contiguous run of the frame-major token sequence. Self-attention (3D, over
all tokens) goes through ctx; the cross-attention to the text is local.

embed  Conv3d patch embedding of this rank's frames; the 3D RoPE table of the whole video
       sliced to its tokens; time embedding: State.c = [temb | 6 x dim projection];
       text embedder on the umT5 text (State.txt)
block  WanTransformerBlock
final  the scale-shift table with temb, proj_out, unpatchify of this rank's frames

Tensor parallelism: Wan normalises q and k over all heads (RMSNorm of dim_head x heads),
so with 1/t of the heads per rank the sum of squares is all-reduced (hooks.NormAcrossHeadsHook).
The timestep input is sigma x 1000 (WanPipeline passes the flow-matching timesteps).
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, set_roles

ROLES = {f"blocks.*.{a}.{p}": "col" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "norm_q", "norm_k")}
ROLES |= {f"blocks.*.{a}.to_out.0": "row" for a in ("attn1", "attn2")}
ROLES |= {"blocks.*.ffn.net.0.proj": "col", "blocks.*.ffn.net.2": "row"}


class Embed(Block):
    def condition(self, t, pooled=None):
        ce = self.den.net.condition_embedder
        dtype = next(iter(ce.time_embedder.parameters())).dtype
        temb = ce.time_embedder(ce.timesteps_proj(t).to(dtype))
        return torch.cat([temb, ce.time_proj(ce.act_fn(temb))], dim=-1)

    def run(self, s, ctx):
        net = self.den.net
        x = net.patch_embedding(s.latent)
        s.x = x.flatten(2).transpose(1, 2).contiguous()
        s.c = self.condition(s.t)
        s.txt = net.condition_embedder.text_embedder(s.text)
        return s


class Layer(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        den = self.den
        d = s.x.shape[-1]
        per_frame = s.x.shape[1] // (ctx.f1 - ctx.f0)
        rope = den.cached(("rope", ctx.f0, ctx.f1, ctx.F, per_frame, str(s.x.device)),
                          lambda: _rope(den.net, ctx, per_frame, s.x))
        s.x = den.net.blocks[self.i](s.x, s.txt, s.c[:, d:].unflatten(1, (6, -1)), rope)
        return s


def _rope(net, ctx, per_frame: int, like: torch.Tensor):
    """The RoPE table of the whole video (WanRotaryPosEmbed reads only the input's shape),
    sliced to this rank's frames."""
    p_t, p_h, p_w = net.config.patch_size
    rows = ctx.R
    cols = per_frame // rows
    whole = like.new_empty((1, 1, 1, 1, 1)).expand(1, 1, ctx.F * p_t, rows * p_h, cols * p_w)
    cos, sin = net.rope(whole)
    a, b = ctx.f0 * per_frame, ctx.f1 * per_frame
    return cos[:, a:b], sin[:, a:b]


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        d = s.x.shape[-1]
        shift, scale = (net.scale_shift_table + s.c[:, None, :d]).chunk(2, dim=1)
        x = (net.norm_out(s.x.float()) * (1 + scale) + shift).type_as(s.x)
        x = net.proj_out(x)
        p_t, p_h, p_w = net.config.patch_size
        frames, rows = ctx.f1 - ctx.f0, ctx.R
        cols = x.shape[1] // (frames * rows)
        x = x.reshape(x.shape[0], frames, rows, cols, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        s.x = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        return s


def build(net, binding) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("patch_embedding",)))
    for i in range(len(net.blocks)):
        den.add(Layer(f"block{i}", den, i))
        den.attention[f"blocks.{i}.attn1"] = None
    den.across_heads = tuple(f"blocks.{i}.{a}.{n}" for i in range(len(net.blocks)) for a in ("attn1", "attn2")
                             for n in ("norm_q", "norm_k"))
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    return net(latent, t, text, return_dict=False)[0]
