"""HunyuanVideoTransformer3DModel (hunyuanvideo, T2V) as planner blocks (planner/zoo/mmdit.py
hunyuanvideo): embed, double0 .., single0 .., final.

A video is split by whole latent frames: a rank holds frames [ctx.f0, ctx.f1) with every
row. Both kinds of block attend over [image; text] with the text after the image
("last" in hooks.AttentionHook): the dual-stream blocks project the text with their own
add_*_proj, the single-stream blocks concatenate [image; text] themselves and split it
again before their attention (whose processor concatenates it once more).

embed   Conv3d patch embedding of this rank's frames; timestep + guidance + pooled CLIP
        embedding (State.c); the token refiner on the LLaMA states (State.txt), cropped to
        the prompt's valid tokens: the class masks the padded text out of every attention
        with a boolean mask, and attending to the valid tokens only is the same for the
        image (the output), so the attention stays unmasked (hooks route unmasked
        attention only). Samples of one batch share the prompt (HunyuanVideo has no
        unconditional branch), hence the length.
double  HunyuanVideoTransformerBlock with the 3D RoPE of the whole video (HunyuanVideoRotaryPosEmbed
        reads only the shape), sliced to this rank's tokens
single  HunyuanVideoSingleTransformerBlock, the same RoPE on its image part
final   AdaLayerNormContinuous, proj_out, unpatchify of this rank's frames

Guidance-distilled: HunyuanVideoPipeline embeds guidance_scale x 1000 (its default 6.0).
The conditioning: the LLaMA states (the template's 95 tokens cropped, as the pipeline does)
with their keep-mask as the last channel; the pooled conditioning is the CLIP pooler output.
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, set_roles

GUIDANCE = 6.0
# The tail of HunyuanVideoPipeline's DEFAULT_PROMPT_TEMPLATE prefix, for the in-memory
# byte tokenizer (one token per byte, a begin-of-text token first): 1 + 94 tokens are the
# pipeline's crop_start 95, so the prompt lands where the real template's does and the
# LLaMA runs at the zoo's 95 + text tokens. A --weights folder's tokenizer uses the default.
TEMPLATE_TAIL = 94

ROLES = {f"transformer_blocks.*.attn.{p}": "col" for p in
         ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj")}
ROLES |= {"transformer_blocks.*.attn.to_out.0": "row", "transformer_blocks.*.attn.to_add_out": "row"}
ROLES |= {f"transformer_blocks.*.{f}.net.0.proj": "col" for f in ("ff", "ff_context")}
ROLES |= {f"transformer_blocks.*.{f}.net.2": "row" for f in ("ff", "ff_context")}
ROLES |= {f"single_transformer_blocks.*.{p}": "col" for p in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")}
# the single block's proj_out reads [attention (hidden) | MLP]: packed, each part split on its own
ROLES |= {"single_transformer_blocks.*.proj_out": ("row", lambda m: [m.out_features, m.in_features - m.out_features])}


def unpack_text(text: torch.Tensor):
    return text[..., :-1], text[..., -1]


def valid_tokens(mask: torch.Tensor) -> int:
    """The prompt's valid tokens, the same for every sample of the batch."""
    n = mask.sum(dim=1).to(torch.int64)
    if bool((n != n[0]).any()):
        raise NotImplementedError("HunyuanVideo samples with prompts of different lengths in one batch")
    return int(n[0])


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        guidance = torch.full_like(t, GUIDANCE * 1000) if net.config.guidance_embeds else None
        return net.time_text_embed(t.to(pooled.dtype), pooled, guidance)[0]

    def run(self, s, ctx):
        net = self.den.net
        s.x = net.x_embedder(s.latent)                             # [B, F_local x rows x cols, D]
        s.c = self.condition(s.t, s.pooled)
        text, mask = unpack_text(s.text)
        txt = net.context_embedder(text, s.t.to(text.dtype), mask)
        s.txt = txt[:, :valid_tokens(mask)]
        return s


def _rope(net, ctx, per_frame: int, like: torch.Tensor):
    """The whole video's RoPE table (from its shape alone), sliced to this rank's frames."""
    p, p_t = net.config.patch_size, net.config.patch_size_t
    rows = ctx.R
    cols = per_frame // rows
    whole = like.new_empty((1, 1, 1, 1, 1)).expand(1, 1, ctx.F * p_t, rows * p, cols * p)
    cos, sin = net.rope(whole)
    a, b = ctx.f0 * per_frame, ctx.f1 * per_frame
    return cos[a:b], sin[a:b]


class Layer(Block):
    def __init__(self, name, den, container, i):
        super().__init__(name, den, (f"{container}.{i}",))
        self.container, self.i = container, i

    def run(self, s, ctx):
        den = self.den
        per = s.x.shape[1] // (ctx.f1 - ctx.f0)
        rope = den.cached(("rope", ctx.f0, ctx.f1, ctx.F, per, str(s.x.device)), lambda: _rope(den.net, ctx, per, s.x))
        blk = getattr(den.net, self.container)[self.i]
        s.x, s.txt = blk(s.x, s.txt, s.c, None, rope)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        x = net.proj_out(net.norm_out(s.x, s.c))
        p, p_t = net.config.patch_size, net.config.patch_size_t
        frames, rows = ctx.f1 - ctx.f0, ctx.R
        cols = x.shape[1] // (frames * rows)
        x = x.reshape(x.shape[0], frames, rows, cols, -1, p_t, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        s.x = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        return s


def build(net, binding) -> Denoiser:
    if net.config.image_condition_type is not None:
        raise NotImplementedError("HunyuanVideo image-to-video (image_condition_type) is not supported")
    set_roles(net, ROLES)
    mark_heads(net)
    for m in net.context_embedder.modules():     # the text refiner stays whole on every rank
        m.__dict__.pop("tp_divide", None)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("x_embedder", "context_embedder")))
    for i in range(len(net.transformer_blocks)):
        den.add(Layer(f"double{i}", den, "transformer_blocks", i))
        den.attention[f"transformer_blocks.{i}.attn"] = "last"
    for i in range(len(net.single_transformer_blocks)):
        den.add(Layer(f"single{i}", den, "single_transformer_blocks", i))
        den.attention[f"single_transformer_blocks.{i}.attn"] = "last"
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text, pooled) -> torch.Tensor:
    """The class's own forward on whole inputs (its masked attention; tests compare the
    blocks' cropped text with it)."""
    states, mask = unpack_text(text)
    kw = {"guidance": torch.full_like(t, GUIDANCE * 1000)} if net.config.guidance_embeds else {}
    return net(latent, t, states, mask, pooled, return_dict=False, **kw)[0]


# ---------------------------------------------------------------- HunyuanVideoPipeline's text and decode
def prompt_template(pipeline) -> dict | None:
    """The in-memory tokenizer's template (TEMPLATE_TAIL); None: the pipeline's default."""
    if pipeline.weights:
        return None
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE
    prefix, suffix = DEFAULT_PROMPT_TEMPLATE["template"].split("{}")
    return {"template": prefix.encode()[-TEMPLATE_TAIL:].decode() + "{}" + suffix,
            "crop_start": DEFAULT_PROMPT_TEMPLATE["crop_start"]}


def encode(pipeline, prompt: str, negative: str = ""):
    """encode_prompt: the LLaMA states (the template cropped) and the CLIP pooled output.
    Guidance-distilled: no unconditional branch (the negative prompt is not used)."""
    from ..blocks import Conditioning
    kw = {"prompt_template": prompt_template(pipeline)} if not pipeline.weights else {}
    embeds, pooled, mask = pipeline.pipe.encode_prompt(prompt, device=pipeline.device, dtype=pipeline.dtype,
                                                       max_sequence_length=pipeline.text_tokens, **kw)
    text = torch.cat([embeds[0], mask[0][:, None].to(embeds.dtype)], dim=-1).to(pipeline.dtype)
    return Conditioning(text, text, pooled[0].to(pipeline.dtype), pooled[0].to(pipeline.dtype))


@torch.no_grad()
def decode(pipeline, latent):
    from .pipeline import uint8
    p = pipeline.pipe
    z = latent.to(pipeline.device, next(p.vae.parameters()).dtype) / p.vae.config.scaling_factor
    video = p.vae.decode(z, return_dict=False)[0]
    return uint8(p.video_processor.postprocess_video(video, output_type="pt"), video=True)
