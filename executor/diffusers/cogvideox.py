"""CogVideoXTransformer3DModel (cogvideox-2b / -5b) as planner blocks (planner/zoo/video.py
_cogvideox): embed, block0 .., final.

The executor's latent is [B, C, F, H, W]; the class reads [B, F, C, H, W] (CogVideoXPipeline
permutes likewise). A rank holds latent frames [ctx.f0, ctx.f1) with every row.

embed  text projection and per-frame patch embedding of this rank's frames, plus the joint
       sin-cos table of the whole video (2b; zeros on the text) sliced to [text; own frames];
       the time embedding (State.c)
block  CogVideoXBlock: the joint attention concatenates [text; video] ("first"); on 5b the
       video's 3D RoPE (the whole video's table, CogVideoXPipeline's, sliced) rotates q/k
final  norm_final, AdaLayerNorm with the time embedding, proj_out, unpatchify
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, set_roles

ROLES = {f"transformer_blocks.*.attn1.{p}": "col" for p in ("to_q", "to_k", "to_v")}
ROLES |= {"transformer_blocks.*.attn1.to_out.0": "row", "transformer_blocks.*.ff.net.0.proj": "col",
          "transformer_blocks.*.ff.net.2": "row"}


class Embed(Block):
    def condition(self, t, pooled=None):
        net = self.den.net
        return net.time_embedding(net.time_proj(t).to(net.patch_embed.text_proj.weight.dtype))

    def run(self, s, ctx):
        pe = self.den.net.patch_embed
        lat = s.latent.transpose(1, 2)                            # [B, F_local, C, H, W]
        b, fr, ch, h, w = lat.shape
        txt = pe.text_proj(s.text)
        x = pe.proj(lat.reshape(-1, ch, h, w))
        x = x.view(b, fr, *x.shape[1:]).flatten(3).transpose(2, 3).flatten(1, 2)
        if pe.use_positional_embeddings or pe.use_learned_positional_embeddings:
            t, per, m = txt.shape[1], x.shape[1] // fr, pe.max_text_seq_length
            if t != m:
                raise ValueError(f"CogVideoX lays its positional table out for {m} text tokens, not {t}")
            pos = self.den.cached(("pos", ctx.F, h, w, str(x.device)), lambda: _pos_table(pe, ctx.F, h, w, x.device))
            txt = txt + pos[:, :t].to(txt.dtype)
            x = x + pos[:, t + ctx.f0 * per:t + ctx.f1 * per].to(x.dtype)
        s.x, s.txt, s.c = x, txt, self.condition(s.t)
        return s


def _pos_table(pe, frames: int, h: int, w: int, device) -> torch.Tensor:
    """CogVideoXPatchEmbed's joint positional table for the whole video of `frames` latent frames."""
    pre = (frames - 1) * pe.temporal_compression_ratio + 1
    if (pe.sample_height, pe.sample_width, pe.sample_frames) == (h, w, pre):
        return pe.pos_embedding
    return pe._get_positional_embeddings(h, w, pre, device=device)


def _rope(net, ctx, per_frame: int, cols: int, device):
    """CogVideoXPipeline._prepare_rotary_positional_embeddings for the whole video, sliced."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid
    cfg = net.config
    grid = (ctx.R, cols)
    crops = get_resize_crop_region_for_grid(grid, cfg.sample_width // cfg.patch_size, cfg.sample_height // cfg.patch_size)
    cos, sin = get_3d_rotary_pos_embed(embed_dim=cfg.attention_head_dim, crops_coords=crops, grid_size=grid,
                                       temporal_size=ctx.F, device=device)
    a, b = ctx.f0 * per_frame, ctx.f1 * per_frame
    return cos[a:b], sin[a:b]


class Layer(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"transformer_blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        den = self.den
        rope = None
        if den.net.config.use_rotary_positional_embeddings:
            per = s.x.shape[1] // (ctx.f1 - ctx.f0)
            rope = den.cached(("rope", ctx.f0, ctx.f1, ctx.F, per, str(s.x.device)),
                              lambda: _rope(den.net, ctx, per, per // ctx.R, s.x.device))
        s.x, s.txt = den.net.transformer_blocks[self.i](hidden_states=s.x, encoder_hidden_states=s.txt, temb=s.c,
                                                        image_rotary_emb=rope)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        x = net.proj_out(net.norm_out(net.norm_final(s.x), temb=s.c))
        p, frames, rows = net.config.patch_size, ctx.f1 - ctx.f0, ctx.R
        cols = x.shape[1] // (frames * rows)
        x = x.reshape(x.shape[0], frames, rows, cols, -1, p, p).permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        s.x = x.transpose(1, 2)                                   # back to [B, C, F, H, W]
        return s


def build(net, binding) -> Denoiser:
    if net.config.patch_size_t is not None:
        raise NotImplementedError("CogVideoX 1.5 (temporal patches) is not supported")
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("patch_embed",)))
    for i in range(len(net.transformer_blocks)):
        den.add(Layer(f"block{i}", den, i))
        den.attention[f"transformer_blocks.{i}.attn1"] = "first"
    den.add(Final("final", den, ("norm_final", "norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    rope = None
    if net.config.use_rotary_positional_embeddings:
        from executor.context import Ctx
        f, h = latent.shape[2], latent.shape[3] // net.config.patch_size
        rope = _rope(net, Ctx(h, f, True), (latent.shape[4] // net.config.patch_size) * h,
                     latent.shape[4] // net.config.patch_size, latent.device)
    out = net(latent.transpose(1, 2), text, t, image_rotary_emb=rope, return_dict=False)[0]
    return out.transpose(1, 2)
