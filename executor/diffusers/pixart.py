"""PixArtTransformer2DModel (pixart-alpha, pixart-sigma) as planner blocks (planner/zoo/dit.py
_pixart): embed, block0 .., final.

embed  PatchEmbed of this rank's rows + the whole grid's sin-cos table; adaLN-single on the
       timestep (+ PixArt-alpha's resolution and aspect-ratio embeddings): State.c holds
       [six modulation vectors | embedded timestep]; caption projection of the T5 text
block  BasicTransformerBlock (ada_norm_single): self-attention over the split stream,
       cross-attention to the whole text with the prompt's padding mask
final  the scale-shift table with the embedded timestep, proj_out, unpatchify; the learned
       variance channels (out_channels 8 = 2 x 4) are dropped, as PixArtAlphaPipeline does

The T5 padding mask travels as the last channel of the text embeddings (Conditioning), and
between blocks as a bias at the bottom of State.skips (every stage needs it, like a skip).
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, patch_embed_rows, set_roles, unpatchify

ROLES = {f"transformer_blocks.*.{n}": "col" for n in
         ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn2.to_q", "attn2.to_k", "attn2.to_v", "ff.net.0.proj")}
ROLES |= {f"transformer_blocks.*.{n}": "row" for n in ("attn1.to_out.0", "attn2.to_out.0", "ff.net.2")}


def mask_bias(mask: torch.Tensor, dtype) -> torch.Tensor:
    """[B, T] keep-mask -> the [B, 1, T] additive bias PixArtTransformer2DModel.forward makes."""
    return ((1 - mask.to(dtype)) * -10000.0).unsqueeze(1)


class Embed(Block):
    def added(self, n, dtype, device):
        if not self.den.net.use_additional_conditions:
            return {}
        h, w = self.den.image_size
        return {"resolution": torch.tensor([[h, w]], dtype=dtype, device=device).repeat(n, 1),
                "aspect_ratio": torch.tensor([[h / w]], dtype=dtype, device=device).repeat(n, 1)}

    def condition(self, t, pooled=None):
        net = self.den.net
        dtype = net.caption_projection.linear_1.weight.dtype
        six, emb = net.adaln_single(t, self.added(t.shape[0], dtype, t.device), batch_size=t.shape[0],
                                    hidden_dtype=dtype)
        return torch.cat([six, emb], dim=-1)

    def run(self, s, ctx):
        net = self.den.net
        s.x = patch_embed_rows(self.den, net.pos_embed, s.latent, ctx)
        s.c = self.condition(s.t)
        text, mask = s.text[..., :-1], s.text[..., -1]
        s.txt = net.caption_projection(text).view(text.shape[0], -1, s.x.shape[-1])
        s.skips = [mask_bias(mask, s.x.dtype)]
        return s


class Layer(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"transformer_blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        d = s.x.shape[-1]
        s.x = self.den.net.transformer_blocks[self.i](s.x, encoder_hidden_states=s.txt, encoder_attention_mask=s.skips[0],
                                                      timestep=s.c[:, :6 * d])
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        d = s.x.shape[-1]
        shift, scale = (net.scale_shift_table[None] + s.c[:, None, 6 * d:]).chunk(2, dim=1)
        x = net.proj_out(net.norm_out(s.x) * (1 + scale) + shift)
        out = unpatchify(x, ctx.r1 - ctx.r0, net.config.patch_size, net.out_channels)
        s.x = out[:, :net.config.in_channels]      # learned variance dropped (out = 2 x in channels)
        s.skips = []
        return s


def build(net, binding, image_size) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.image_size = image_size
    den.add(Embed("embed", den, ("pos_embed", "caption_projection")))
    for i in range(len(net.transformer_blocks)):
        den.add(Layer(f"block{i}", den, i))
        den.attention[f"transformer_blocks.{i}.attn1"] = None
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text, image_size) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    h, w = image_size
    n = latent.shape[0]
    added = ({"resolution": torch.tensor([[h, w]], dtype=latent.dtype).repeat(n, 1),
              "aspect_ratio": torch.tensor([[h / w]], dtype=latent.dtype).repeat(n, 1)}
             if net.use_additional_conditions else {"resolution": None, "aspect_ratio": None})
    out = net(latent, encoder_hidden_states=text[..., :-1], encoder_attention_mask=text[..., -1], timestep=t,
              added_cond_kwargs=added, return_dict=False)[0]
    return out[:, :net.config.in_channels]
