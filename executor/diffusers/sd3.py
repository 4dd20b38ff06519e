"""SD3Transformer2DModel (sd3-medium, sd3.5-large) as planner blocks (planner/zoo/mmdit.py
_sd3): embed, block0 .. block{L-1}, final.

embed  PatchEmbed of this rank's rows + the cropped positional table of the whole grid,
       time + pooled-text embedding (State.c), context_embedder on the text (State.txt)
block  JointTransformerBlock: its joint attention is [image; text] in the processor
       ("last"); SD3.5's second, image-only attention (dual attention) attends over the
       split stream; the last block is context_pre_only and leaves the text as it is
final  AdaLayerNormContinuous, proj_out, unpatchify of this rank's rows

The timestep input is sigma x 1000, as StableDiffusion3Pipeline passes it.
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, patch_embed_rows, set_roles, unpatchify

ROLES = {f"transformer_blocks.*.{n}": "col" for n in
         ("attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
          "attn2.to_q", "attn2.to_k", "attn2.to_v", "ff.net.0.proj", "ff_context.net.0.proj")}
ROLES |= {f"transformer_blocks.*.{n}": "row" for n in
          ("attn.to_out.0", "attn.to_add_out", "attn2.to_out.0", "ff.net.2", "ff_context.net.2")}


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        return net.time_text_embed(t.to(pooled.dtype), pooled)

    def run(self, s, ctx):
        net = self.den.net
        s.x = patch_embed_rows(self.den, net.pos_embed, s.latent, ctx)
        s.c = self.condition(s.t, s.pooled)
        s.txt = net.context_embedder(s.text)
        return s


class Joint(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"transformer_blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        txt, s.x = self.den.net.transformer_blocks[self.i](hidden_states=s.x, encoder_hidden_states=s.txt, temb=s.c)
        if txt is not None:           # context_pre_only (the last block) keeps no text output
            s.txt = txt
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        x = net.proj_out(net.norm_out(s.x, s.c))
        s.x = unpatchify(x, ctx.r1 - ctx.r0, net.config.patch_size, net.out_channels)
        return s


def build(net, binding) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("pos_embed", "context_embedder")))
    for i in range(len(net.transformer_blocks)):
        den.add(Joint(f"block{i}", den, i))
    den.add(Final("final", den, ("norm_out", "proj_out")))
    den.attention = {f"transformer_blocks.{i}.attn": "last" for i in range(len(net.transformer_blocks))}
    den.attention |= {f"transformer_blocks.{i}.attn2": None for i, b in enumerate(net.transformer_blocks)
                      if b.use_dual_attention}
    return den


def class_forward(net, latent, t, text, pooled) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    return net(hidden_states=latent, encoder_hidden_states=text, pooled_projections=pooled, timestep=t,
               return_dict=False)[0]
