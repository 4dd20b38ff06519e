"""Full-3D-attention video transformers built on T5-class text encoders.

cogvideox-2b / -5b   CogVideoXTransformer3DModel: text and video tokens concatenated through
                     every layer (shared weights, "expert" adaptive norms per stream)
wan2.1-t2v-*         WanTransformer3DModel: video self-attention + text cross-attention

Video tokens = latent frames x (H/16) x (W/16); the causal 3D VAE keeps the first frame
alone, so 49 frames -> 13 latent frames (CogVideoX), 81 -> 21 (Wan).
"""
from __future__ import annotations

from planner.zoo import encoders, vae
from planner.zoo.layers import (Grid, attention, block, conv, cross_attn, ew, linear, mlp, norm,
                                qk_norms, qkv, self_attn, spec, timestep_mlp, with_text)

T5_DIM = 4096


# ---------------------------------------------------------------- CogVideoX
def _cog_norm(p: str, n: int, t: int, dim: int) -> list:
    """CogVideoXLayerNormZero: SiLU -> linear(512 -> 6 dim) on the time embedding, one
    affine LayerNorm applied to both streams, each modulated by its own shift/scale."""
    return [ew(f"{p}.act", 1, 512), linear(f"{p}.linear", 1, 512, 6 * dim),
            *with_text([norm(f"{p}.norm", n, dim, params=2 * dim), ew(f"{p}.modulate", n, dim, 2)], t)]


def _cogvideox(f, g: Grid):
    """CogVideoX: 2b = 30 layers x 1920 (30 x 64), sinusoidal 3D positions; 5b = 42 x 3072
    (48 x 64) with 3D RoPE on the video tokens. Per-head LayerNorm qk-norms, GELU-tanh 4x
    MLP, every projection applied to the 226 text tokens too (weights shared)."""
    big = f.id == "cogvideox-5b"
    layers, heads = (42, 48) if big else (30, 30)
    dim, hd, n, t = heads * 64, 64, g.tokens, g.text
    embed = [conv("patch_embed.proj", n, 16, dim, 4, in_tokens=4 * n),
             linear("patch_embed.text_proj", t, T5_DIM, dim, text=True),
             *timestep_mlp("time_embedding", dim, 512)]
    if not big:
        embed.append(ew("pos_embed", n + t, dim, 3))
    ops = _cog_norm("norm1", n, t, dim)
    ops += with_text([*qkv("attn", n, dim, dim), *qk_norms("attn", n, dim, 2 * hd)], t)
    if big:
        ops.append(ew("attn.rope", n, 2 * dim))
    ops.append(attention("attn.sdpa", n, heads, hd, q_ctx=t, ctx=t))
    ops += with_text([linear("attn.to_out", n, dim, dim, "row"), ew("gate_add1", n, dim, 3)], t)
    ops += _cog_norm("norm2", n, t, dim)
    ops += with_text([*mlp("ff", n, dim, 4 * dim), ew("gate_add2", n, dim, 3)], t)
    blocks = [block("embed", "embed", embed, n + t, dim)]
    blocks += [block(f"block{i}", "transformer", ops, n + t, dim) for i in range(layers)]
    final = [norm("norm_final", n + (0 if big else t), dim, params=2 * dim),
             ew("norm_out.act", 1, 512), linear("norm_out.linear", 1, 512, 2 * dim),
             norm("norm_out", n, dim, params=2 * dim), ew("norm_out.modulate", n, dim, 2),
             linear("proj_out", n, dim, 4 * 16)]
    blocks.append(block("final", "head", final, n, 4 * 16))
    return spec(f, g, blocks, [encoders.t5_xxl(t)], vae.cogvideox_decoder(g.lf, g.lh, g.lw))


# ---------------------------------------------------------------- Wan 2.1
def _wan(f, g: Grid):
    """Wan2.1 T2V: 1.3B = 30 x 1536 (12 x 128, FFN 8960); 14B = 40 x 5120 (40 x 128, FFN
    13824). Shared time projection to 6 x dim plus a learned per-block table;
    RMS qk-norm across heads (dim weights); 3D RoPE; affine LayerNorm before the text
    cross-attention; GELU-tanh MLP."""
    big = f.id == "wan2.1-t2v-14b"
    layers, heads, ffn = (40, 40, 13824) if big else (30, 12, 8960)
    dim, hd, n, t = heads * 128, 128, g.tokens, g.text
    embed = [conv("patch_embedding", n, 16, dim, 4, in_tokens=4 * n),
             *timestep_mlp("time_embedder", 256, dim), ew("time_act", 1, dim),
             linear("time_proj", 1, dim, 6 * dim),
             linear("text_embedder.linear_1", t, T5_DIM, dim, text=True),
             ew("text_embedder.act", t, dim, text=True),
             linear("text_embedder.linear_2", t, dim, dim, text=True)]
    ops = [norm("norm1", n, dim), ew("modulate1", n, dim, 2, params=6 * dim),
           *self_attn("attn1", n, dim, heads, hd, qk_norm=dim, rope=True),
           ew("gate_add1", n, dim, 3), norm("norm2", n, dim, params=2 * dim),
           *cross_attn("attn2", n, dim, heads, hd, t, dim, qk_norm=dim),
           ew("add2", n, dim, 3), norm("norm3", n, dim), ew("modulate3", n, dim, 2),
           *mlp("ffn", n, dim, ffn), ew("gate_add3", n, dim, 3)]
    blocks = [block("embed", "embed", embed, n, dim)]
    blocks += [block(f"block{i}", "transformer", ops, n, dim) for i in range(layers)]
    final = [norm("norm_out", n, dim), ew("modulate_out", n, dim, 2, params=2 * dim),
             linear("proj_out", n, dim, 4 * 16)]
    blocks.append(block("final", "head", final, n, 4 * 16))
    return spec(f, g, blocks, [encoders.umt5_xxl(t)], vae.wan_decoder(g.lf, g.lh, g.lw))


def build(f, g: Grid):
    return _cogvideox(f, g) if f.id.startswith("cogvideox") else _wan(f, g)
