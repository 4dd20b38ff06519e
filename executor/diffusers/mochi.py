"""MochiTransformer3DModel (mochi-1, AsymmDiT) as planner blocks (planner/zoo/mmdit.py
mochi): embed, block0 .. block{L-1}, final.

A video is split by whole latent frames: a rank holds frames [ctx.f0, ctx.f1) with every
row, a contiguous run of the frame-major tokens. Asymmetric joint attention: the image
stream (heads x head_dim wide) and the text stream (pooled_projection_dim wide) project
to the same heads; MochiAttnProcessor2_0 attends, per sample, over [image; the prompt's
valid (unmasked) text tokens] ("last" in hooks.AttentionHook, the text length taken from
the call, not from the padded encoder_hidden_states).

embed  PatchEmbed per frame of this rank's frames; MochiCombinedTimestepCaptionEmbedding:
       the timestep + the attention-pooled T5 states (State.c), the caption projection
       (State.txt); the T5 keep-mask rides at the bottom of State.skips (every stage's
       attention needs it)
block  MochiTransformerBlock (the last is context_pre_only: it reads the text, emits none);
       3D RoPE from the learned pos_frequencies for the whole video, sliced to this rank's
       tokens (and to its heads under tensor parallelism)
final  AdaLayerNormContinuous, proj_out, unpatchify of this rank's frames

MochiPipeline's sampler conventions live here, so the executor's flow-matching sampler
(sigma from 1 to 0, the model predicting noise - data) drives Mochi unchanged: Mochi's
scheduler inverts the sigmas (invert_sigmas), so the model gets 1000 - t and predicts
data - noise; the blocks feed it that timestep and negate its output.
The conditioning: the T5 states with their keep-mask as the last channel (text), and the
same flattened (pooled), from which Denoiser.condition re-pools them for other timesteps.
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, set_roles

ROLES = {f"transformer_blocks.*.attn1.{p}": "col" for p in
         ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj")}
ROLES |= {"transformer_blocks.*.attn1.to_out.0": "row", "transformer_blocks.*.attn1.to_add_out": "row"}
ROLES |= {f"transformer_blocks.*.{f}.net.0.proj": ("col", lambda m: [m.out_features // 2] * 2)   # SwiGLU [value | gate]
          for f in ("ff", "ff_context")}
ROLES |= {f"transformer_blocks.*.{f}.net.2": "row" for f in ("ff", "ff_context")}


def mochi_timestep(t: torch.Tensor) -> torch.Tensor:
    """The executor's sigma x 1000 as MochiTransformer3DModel's input (inverted sigmas)."""
    return 1000 - t


def unpack_text(text: torch.Tensor):
    """[B, T, D + 1] -> (T5 states, keep-mask [B, T])."""
    return text[..., :-1], text[..., -1]


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        text, mask = unpack_text(pooled.view(pooled.shape[0], -1, net.config.text_embed_dim + 1))
        temb, _ = net.time_embed(mochi_timestep(t).to(pooled.dtype), text, mask.bool(), hidden_dtype=pooled.dtype)
        return temb

    def run(self, s, ctx):
        net = self.den.net
        lat = s.latent                                             # [B, C, F_local, H, W]
        b = lat.shape[0]
        x = net.patch_embed(lat.permute(0, 2, 1, 3, 4).flatten(0, 1))
        s.x = x.unflatten(0, (b, -1)).flatten(1, 2)
        text, mask = unpack_text(s.text)
        s.c = self.condition(s.t, s.pooled)
        s.txt = net.time_embed.caption_proj(text)
        s.skips = [mask]
        return s


def _rope(net, ctx, rows: int, cols: int, device):
    """MochiRoPE of the whole video (its positions depend on the whole grid), this rank's
    tokens and, under tensor parallelism, its heads."""
    freqs = net.pos_frequencies
    if ctx.tp is not None and ctx.tp.size > 1:
        h = freqs.shape[1] // ctx.tp.size
        freqs = freqs[:, ctx.tp.index * h:(ctx.tp.index + 1) * h]
    cos, sin = net.rope(freqs, ctx.F, rows, cols, device=device, dtype=torch.float32)
    per = rows * cols
    return cos[ctx.f0 * per:ctx.f1 * per], sin[ctx.f0 * per:ctx.f1 * per]


class Layer(Block):
    def __init__(self, name, den, i):
        super().__init__(name, den, (f"transformer_blocks.{i}",))
        self.i = i

    def run(self, s, ctx):
        den = self.den
        per = s.x.shape[1] // (ctx.f1 - ctx.f0)
        cols = per // ctx.R
        tp = (ctx.tp.index, ctx.tp.size) if ctx.tp is not None else (0, 1)
        rope = den.cached(("rope", ctx.f0, ctx.f1, ctx.F, per, tp, str(s.x.device)),
                          lambda: _rope(den.net, ctx, ctx.R, cols, s.x.device))
        x, txt = den.net.transformer_blocks[self.i](hidden_states=s.x, encoder_hidden_states=s.txt, temb=s.c,
                                                    encoder_attention_mask=s.skips[0], image_rotary_emb=rope)
        s.x, s.txt = x, txt
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        x = net.proj_out(net.norm_out(s.x, s.c))
        p, frames, rows = net.config.patch_size, ctx.f1 - ctx.f0, ctx.R
        cols = x.shape[1] // (frames * rows)
        x = x.reshape(x.shape[0], frames, rows, cols, p, p, -1).permute(0, 6, 1, 2, 4, 3, 5)
        s.x = -x.reshape(x.shape[0], x.shape[1], frames, rows * p, cols * p)     # noise - data
        s.skips = []
        return s


def build(net, binding) -> Denoiser:
    set_roles(net, ROLES)
    for blk in net.transformer_blocks:          # MochiAttention is no diffusers Attention (mark_heads)
        blk.attn1.tp_divide = ("heads",)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("patch_embed",)))
    for i in range(len(net.transformer_blocks)):
        den.add(Layer(f"block{i}", den, i))
        den.attention[f"transformer_blocks.{i}.attn1"] = "last"
    den.add(Final("final", den, ("norm_out", "proj_out")))
    return den


def class_forward(net, latent, t, text, pooled=None) -> torch.Tensor:
    """The class's own forward on whole inputs, in the executor's sampler convention (the
    timestep and sign conversions above)."""
    states, mask = unpack_text(text)
    return -net(latent, states, mochi_timestep(t), mask.bool(), return_dict=False)[0]


# ---------------------------------------------------------------- MochiPipeline's text and decode
def encode(pipeline, prompt: str, negative: str = ""):
    from ..blocks import Conditioning
    c, cm, u, um = pipeline.pipe.encode_prompt(prompt, negative_prompt=negative, do_classifier_free_guidance=True,
                                               max_sequence_length=pipeline.text_tokens, device=pipeline.device)
    pack = lambda e, m: torch.cat([e[0], m[0][:, None].to(e.dtype)], dim=-1).to(pipeline.dtype)    # noqa: E731
    cond, uncond = pack(c, cm), pack(u, um)
    return Conditioning(cond, uncond, cond.flatten(), uncond.flatten())


@torch.no_grad()
def decode(pipeline, latent):
    """MochiPipeline: latents x std / scaling_factor + mean -> vae.decode -> video processor."""
    from .pipeline import uint8
    p = pipeline.pipe
    vae = p.vae
    z = latent.to(pipeline.device, next(vae.parameters()).dtype)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(z)
    video = vae.decode(z * std / vae.config.scaling_factor + mean, return_dict=False)[0]
    return uint8(p.video_processor.postprocess_video(video, output_type="pt"), video=True)
