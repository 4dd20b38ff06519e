"""HunyuanDiT2DModel (hunyuandit) as planner blocks (planner/zoo/dit.py hunyuandit): embed,
block0 .., final.

Two text encoders: a BERT (CLIP-like, text_len tokens) and an mT5; HunyuanDiTPipeline
encodes the prompt with each, and the denoiser projects the mT5 states, concatenates them
after the BERT ones and replaces padded positions by its learned text_embedding_padding.
The conditioning packs both into one text tensor: [BERT tokens; mT5 tokens] zero-padded to
the wider width, with the attention mask as the last channel; the pooled conditioning is
the mT5 states again (flattened), which the timestep embedding attention-pools, so any
stage can rebuild the conditioning vector of another timestep (Denoiser.condition).

embed  PatchEmbed of this rank's rows (no positional table: HunyuanDiT rotates q/k);
       time + pooled-mT5 embedding (State.c); the joint text (State.txt)
block  HunyuanDiTBlock: self-attention over the split stream with the 2D RoPE of this
       rank's rows (HunyuanDiTPipeline's table of the whole grid, sliced), cross-attention
       to the whole text (its queries rotated by the same table). U-ViT long skips as the
       class's forward: blocks 0 .. L/2 - 2 push their output on State.skips, blocks
       L/2 + 1 .. L - 1 pop one (skip_norm + skip_linear)
final  AdaLayerNormContinuous, proj_out, unpatchify of this rank's rows; the learned
       variance half dropped, as HunyuanDiTPipeline does
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, patch_embed_rows, row_slice, set_roles, unpatchify

ROLES = {f"blocks.*.{a}.{p}": "col" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v")}
ROLES |= {f"blocks.*.{a}.to_out.0": "row" for a in ("attn1", "attn2")}
ROLES |= {"blocks.*.ff.net.0.proj": "col", "blocks.*.ff.net.2": "row"}


def rope_table(net, rows: int, cols: int, device):
    """HunyuanDiTPipeline's 2D RoPE of the whole rows x cols grid (crop region of its 512 px
    base size), [rows * cols, head_dim] cos and sin."""
    from diffusers.models.embeddings import get_2d_rotary_pos_embed
    from diffusers.pipelines.hunyuandit.pipeline_hunyuandit import get_resize_crop_region_for_grid
    base = 512 // 8 // net.config.patch_size
    crops = get_resize_crop_region_for_grid((rows, cols), base)
    return get_2d_rotary_pos_embed(net.inner_dim // net.num_heads, crops, (rows, cols), device=device, output_type="pt")


def split_text(net, text: torch.Tensor):
    """The packed text -> (BERT states, mT5 states, keep-mask [B, T])."""
    cfg = net.config
    body, mask = text[..., :-1], text[..., -1]
    return body[:, :cfg.text_len, :cfg.cross_attention_dim], body[:, cfg.text_len:, :cfg.cross_attention_dim_t5], mask


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        t5 = pooled.view(pooled.shape[0], -1, net.config.cross_attention_dim_t5)
        return net.time_extra_emb(t.to(pooled.dtype), t5, None, None, hidden_dtype=pooled.dtype)

    def run(self, s, ctx):
        net = self.den.net
        s.x = patch_embed_rows(self.den, net.pos_embed, s.latent, ctx)
        s.c = self.condition(s.t, s.pooled)
        bert, t5, mask = split_text(net, s.text)
        joint = torch.cat([bert, net.text_embedder(t5)], dim=1)
        s.txt = torch.where(mask.bool()[..., None], joint, net.text_embedding_padding.to(joint.dtype))
        return s


class Layer(Block):
    def __init__(self, name, den, i, layers):
        super().__init__(name, den, (f"blocks.{i}",))
        self.i, self.pop, self.push = i, i > layers // 2, i < layers // 2 - 1

    def run(self, s, ctx):
        den = self.den
        cols = s.x.shape[1] // (ctx.r1 - ctx.r0)
        cos, sin = den.cached(("rope", ctx.R, cols, str(s.x.device)), lambda: rope_table(den.net, ctx.R, cols, s.x.device))
        rope = (row_slice(cos[None], ctx, cols)[0], row_slice(sin[None], ctx, cols)[0])
        skip = s.skips.pop() if self.pop else None
        s.x = den.net.blocks[self.i](s.x, encoder_hidden_states=s.txt, temb=s.c, image_rotary_emb=rope, skip=skip)
        if self.push:
            s.skips.append(s.x)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        x = net.proj_out(net.norm_out(s.x, s.c.to(torch.float32)))
        out = unpatchify(x, ctx.r1 - ctx.r0, net.config.patch_size, net.out_channels)
        s.x = out[:, :net.config.in_channels]      # learned variance dropped
        return s


def build(net, binding) -> Denoiser:
    if net.config.use_style_cond_and_image_meta_size:
        raise NotImplementedError("HunyuanDiT <= v1.1 (style and image-size conditioning) is not supported")
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("pos_embed", "text_embedder")))
    layers = len(net.blocks)
    for i in range(layers):
        den.add(Layer(f"block{i}", den, i, layers))
        den.attention[f"blocks.{i}.attn1"] = None
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text, pooled) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it)."""
    bert, t5, mask = split_text(net, text)
    rows, cols = (n // net.config.patch_size for n in latent.shape[-2:])
    rope = rope_table(net, rows, cols, latent.device)
    keep = mask > 0.5
    out = net(latent, t, encoder_hidden_states=bert, text_embedding_mask=keep[:, :net.config.text_len],
              encoder_hidden_states_t5=t5, text_embedding_mask_t5=keep[:, net.config.text_len:],
              image_rotary_emb=rope, return_dict=False)[0]
    return out[:, :net.config.in_channels]


# ---------------------------------------------------------------- HunyuanDiTPipeline's two text encoders
def encode(pipeline, prompt: str, negative: str = ""):
    """encode_prompt with the BERT (text_encoder_index 0, text_len tokens) and with the mT5
    (index 1, the rest of the scenario's text tokens), packed as the module docstring says."""
    from ..blocks import Conditioning
    p, dev = pipeline.pipe, pipeline.device
    cfg = pipeline.configs.config(pipeline.configs.denoiser)
    t5_tokens = pipeline.text_tokens - cfg.get("text_len", 77)
    c1, u1, cm1, um1 = p.encode_prompt(prompt, device=dev, dtype=pipeline.dtype, do_classifier_free_guidance=True,
                                       negative_prompt=negative, text_encoder_index=0)
    c2, u2, cm2, um2 = p.encode_prompt(prompt, device=dev, dtype=pipeline.dtype, do_classifier_free_guidance=True,
                                       negative_prompt=negative, max_sequence_length=t5_tokens, text_encoder_index=1)
    width = max(c1.shape[-1], c2.shape[-1])

    def pack(bert, bmask, t5, tmask):
        pad = lambda e: torch.nn.functional.pad(e, (0, width - e.shape[-1]))     # noqa: E731
        body = torch.cat([pad(bert[0]), pad(t5[0])])
        return torch.cat([body, torch.cat([bmask[0], tmask[0]])[:, None].to(body.dtype)], dim=-1)

    return Conditioning(pack(c1, cm1, c2, cm2).to(pipeline.dtype), pack(u1, um1, u2, um2).to(pipeline.dtype),
                        c2[0].flatten().to(pipeline.dtype), u2[0].flatten().to(pipeline.dtype))
