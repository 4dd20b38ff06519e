"""FluxTransformer2DModel (flux.1-dev, flux.1-schnell) as planner blocks (planner/zoo/mmdit.py
_flux): embed, double0 .., single0 .., final.

The latent [B, 16, H, W] is packed 2x2 into 64-channel tokens (FluxPipeline._pack_latents),
so a grid row is two latent rows. RoPE positions: the text at (0, 0, 0), image token
(row, col) at (0, row, col) (FluxPipeline._prepare_latent_image_ids); a rank's table holds
the text and its own rows, so RoPE needs no communication under any split.

embed   x_embedder of this rank's packed tokens; timestep (+ guidance on dev) + pooled CLIP
        embedding (State.c); context_embedder on the T5 text (State.txt)
double  FluxTransformerBlock: joint attention, [text; image] in the processor ("first")
single  FluxSingleTransformerBlock on [text; image]: the text rides in front ("prefix")
final   AdaLayerNormContinuous, proj_out, unpacking of this rank's rows

Timesteps: sigma x 1000, which the class gets as sigma and multiplies by 1000 itself.
Guidance-distilled dev embeds the guidance scale (FluxPipeline default 3.5).
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, set_roles

GUIDANCE = 3.5

# FluxTransformer2DModel._tp_plan: colwise -> col, rowwise -> row; the single block's
# proj_out reads [attention | MLP] (PackedRowwiseParallel there, tp_blocks here)
ROLES = {"transformer_blocks.*.attn.to_out.0": "row", "transformer_blocks.*.attn.to_add_out": "row",
         "transformer_blocks.*.ff.net.2": "row", "transformer_blocks.*.ff_context.net.2": "row",
         "single_transformer_blocks.*.proj_out": ("row", lambda m: list(m._tp_packed_row_blocks))}
ROLES |= {f"transformer_blocks.*.{n}": "col" for n in
          ("attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
           "ff.net.0.proj", "ff_context.net.0.proj")}
ROLES |= {f"single_transformer_blocks.*.{n}": "col" for n in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")}


def pack(lat: torch.Tensor) -> torch.Tensor:
    b, c, h, w = lat.shape
    return lat.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    b, _, ch = x.shape
    x = x.view(b, rows, cols, ch // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, ch // 4, rows * 2, cols * 2)


def image_ids(r0: int, r1: int, cols: int, device) -> torch.Tensor:
    ids = torch.zeros(r1 - r0, cols, 3, device=device)
    ids[..., 1] = torch.arange(r0, r1, device=device)[:, None]
    ids[..., 2] = torch.arange(cols, device=device)[None, :]
    return ids.reshape(-1, 3)


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        timestep = (t / 1000).to(pooled.dtype) * 1000     # what the class does with sigma
        if not net.config.guidance_embeds:
            return net.time_text_embed(timestep, pooled)
        guidance = torch.full_like(timestep, GUIDANCE).to(pooled.dtype) * 1000
        return net.time_text_embed(timestep, guidance, pooled)

    def run(self, s, ctx):
        net = self.den.net
        s.x = net.x_embedder(pack(s.latent))
        s.c = self.condition(s.t, s.pooled)
        s.txt = net.context_embedder(s.text)
        return s


class Layer(Block):
    def __init__(self, name, den, container, i):
        super().__init__(name, den, (f"{container}.{i}",))
        self.container, self.i = container, i

    def text_tokens(self, s):
        return s.txt.shape[1]

    def run(self, s, ctx):
        den = self.den
        cols = s.x.shape[1] // (ctx.r1 - ctx.r0)
        t = s.txt.shape[1]
        rope = den.cached(("rope", ctx.r0, ctx.r1, cols, t, str(s.x.device)), lambda: den.net.pos_embed(
            torch.cat([torch.zeros(t, 3, device=s.x.device), image_ids(ctx.r0, ctx.r1, cols, s.x.device)])))
        blk = getattr(den.net, self.container)[self.i]
        s.txt, s.x = blk(hidden_states=s.x, encoder_hidden_states=s.txt, temb=s.c, image_rotary_emb=rope)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        rows = ctx.r1 - ctx.r0
        s.x = unpack(net.proj_out(net.norm_out(s.x, s.c)), rows, s.x.shape[1] // rows)
        return s


def build(net, binding) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("x_embedder", "context_embedder")))
    for i in range(len(net.transformer_blocks)):
        den.add(Layer(f"double{i}", den, "transformer_blocks", i))
        den.attention[f"transformer_blocks.{i}.attn"] = "first"
    for i in range(len(net.single_transformer_blocks)):
        den.add(Layer(f"single{i}", den, "single_transformer_blocks", i))
        den.attention[f"single_transformer_blocks.{i}.attn"] = "prefix"
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text, pooled) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    b, _, h, w = latent.shape
    kw = {"guidance": torch.full((b,), GUIDANCE, device=latent.device)} if net.config.guidance_embeds else {}
    out = net(hidden_states=pack(latent), encoder_hidden_states=text, pooled_projections=pooled, timestep=t / 1000,
              img_ids=image_ids(0, h // 2, w // 2, latent.device), txt_ids=torch.zeros(text.shape[1], 3, device=latent.device),
              return_dict=False, **kw)[0]
    return unpack(out, h // 2, w // 2)
