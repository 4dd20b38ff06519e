"""Full-3D-attention video transformers built on T5-class text encoders, from configs.

CogVideoXTransformer3DModel  cogvideox-2b / -5b: text and video tokens concatenated through
                             every layer (shared weights, "expert" adaptive norms per stream)
WanTransformer3DModel        wan2.1-t2v-*: video self-attention + text cross-attention

Video tokens = latent frames x (H/16) x (W/16); the causal 3D VAE keeps the first frame
alone, so 49 frames -> 13 latent frames (CogVideoX), 81 -> 21 (Wan).
"""
from __future__ import annotations

from planner.zoo.hub import Cfg, ZooError, require
from planner.zoo.layers import (Grid, attention, block, conv, cross_attn, ew, linear, mlp, norm,
                                qk_norms, qkv, self_attn, timestep_mlp, with_text)

# __init__ defaults of the keys read here (diffusers 0.42.1 src/diffusers/models/transformers/
# cogvideox_transformer_3d.py, transformer_wan.py)
COGVIDEOX_DEFAULTS = {"num_attention_heads": 30, "attention_head_dim": 64, "in_channels": 16, "out_channels": 16,
                      "time_embed_dim": 512, "ofs_embed_dim": None, "text_embed_dim": 4096, "num_layers": 30,
                      "patch_size": 2, "patch_size_t": None, "use_rotary_positional_embeddings": False,
                      "use_learned_positional_embeddings": False, "norm_elementwise_affine": True}
WAN_DEFAULTS = {"patch_size": (1, 2, 2), "num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16,
                "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40,
                "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "image_dim": None,
                "added_kv_proj_dim": None, "pos_embed_seq_len": None}


def cog_latent(cfg: Cfg) -> tuple[int, int]:
    return cfg["in_channels"], cfg["patch_size"]


def wan_latent(cfg: Cfg) -> tuple[int, int]:
    return cfg["in_channels"], cfg["patch_size"][1]


# ---------------------------------------------------------------- CogVideoX
def _cog_norm(p: str, n: int, t: int, dim: int, temb: int) -> list:
    """CogVideoXLayerNormZero: SiLU -> linear(temb -> 6 dim) on the time embedding, one
    affine LayerNorm applied to both streams, each modulated by its own shift/scale."""
    return [ew(f"{p}.act", 1, temb), linear(f"{p}.linear", 1, temb, 6 * dim),
            *with_text([norm(f"{p}.norm", n, dim, params=2 * dim), ew(f"{p}.modulate", n, dim, 2)], t)]


def cogvideox(cfg: Cfg, g: Grid) -> list:
    """CogVideoXTransformer3DModel: 2b = 30 layers x 1920 (30 x 64), sinusoidal 3D positions;
    5b = 42 x 3072 (48 x 64) with 3D RoPE on the video tokens. Per-head LayerNorm qk-norms,
    GELU-tanh 4x MLP, every projection applied to the text tokens too (weights shared).
    With RoPE the final norm runs on the video tokens only (the text is dropped before it)."""
    for key, accepted in (("patch_size_t", (None,)), ("ofs_embed_dim", (None,)),
                          ("use_learned_positional_embeddings", (False,)), ("norm_elementwise_affine", (True,))):
        require(cfg, key, accepted)
    rope = cfg["use_rotary_positional_embeddings"]
    heads, hd, temb = cfg["num_attention_heads"], cfg["attention_head_dim"], cfg["time_embed_dim"]
    dim, n, t, p = heads * hd, g.tokens, g.text, g.patch
    embed = [conv("patch_embed.proj", n, cfg["in_channels"], dim, p * p, in_tokens=p * p * n),
             linear("patch_embed.text_proj", t, cfg["text_embed_dim"], dim, text=True),
             *timestep_mlp("time_embedding", dim, temb)]
    if not rope:
        embed.append(ew("pos_embed", n + t, dim, 3))
    ops = _cog_norm("norm1", n, t, dim, temb)
    ops += with_text([*qkv("attn", n, dim, dim), *qk_norms("attn", n, dim, 2 * hd)], t)
    if rope:
        ops.append(ew("attn.rope", n, 2 * dim))
    ops.append(attention("attn.sdpa", n, heads, hd, q_ctx=t, ctx=t))
    ops += with_text([linear("attn.to_out", n, dim, dim, "row"), ew("gate_add1", n, dim, 3)], t)
    ops += _cog_norm("norm2", n, t, dim, temb)
    ops += with_text([*mlp("ff", n, dim, 4 * dim), ew("gate_add2", n, dim, 3)], t)
    blocks = [block("embed", "embed", embed, n + t, dim)]
    blocks += [block(f"block{i}", "transformer", ops, n + t, dim) for i in range(cfg["num_layers"])]
    out = p * p * cfg["out_channels"]
    final = [norm("norm_final", n + (0 if rope else t), dim, params=2 * dim),
             ew("norm_out.act", 1, temb), linear("norm_out.linear", 1, temb, 2 * dim),
             norm("norm_out", n, dim, params=2 * dim), ew("norm_out.modulate", n, dim, 2),
             linear("proj_out", n, dim, out)]
    blocks.append(block("final", "head", final, n, out))
    return blocks


# ---------------------------------------------------------------- Wan 2.1
def wan(cfg: Cfg, g: Grid) -> list:
    """WanTransformer3DModel (T2V): 1.3B = 30 x 1536 (12 x 128, FFN 8960); 14B = 40 x 5120
    (40 x 128, FFN 13824). Shared time projection to 6 x dim plus a learned per-block table;
    RMS qk-norm across heads (dim weights); 3D RoPE; affine LayerNorm before the text
    cross-attention (cross_attn_norm); GELU-tanh MLP."""
    for key, accepted in (("qk_norm", ("rms_norm_across_heads",)), ("image_dim", (None,)),
                          ("added_kv_proj_dim", (None,)), ("pos_embed_seq_len", (None,)), ("cross_attn_norm", (True,))):
        require(cfg, key, accepted)
    if list(cfg["patch_size"])[0] != 1:
        raise ZooError(f"{cfg.where}: patch_size={list(cfg['patch_size'])} is not supported (accepted: [1, p, p])")
    heads, hd, ffn, freq = cfg["num_attention_heads"], cfg["attention_head_dim"], cfg["ffn_dim"], cfg["freq_dim"]
    dim, n, t, p = heads * hd, g.tokens, g.text, g.patch
    embed = [conv("patch_embedding", n, cfg["in_channels"], dim, p * p, in_tokens=p * p * n),
             *timestep_mlp("time_embedder", freq, dim), ew("time_act", 1, dim),
             linear("time_proj", 1, dim, 6 * dim),
             linear("text_embedder.linear_1", t, cfg["text_dim"], dim, text=True),
             ew("text_embedder.act", t, dim, text=True),
             linear("text_embedder.linear_2", t, dim, dim, text=True)]
    ops = [norm("norm1", n, dim), ew("modulate1", n, dim, 2, params=6 * dim),
           *self_attn("attn1", n, dim, heads, hd, qk_norm=dim, rope=True),
           ew("gate_add1", n, dim, 3), norm("norm2", n, dim, params=2 * dim),
           *cross_attn("attn2", n, dim, heads, hd, t, dim, qk_norm=dim),
           ew("add2", n, dim, 3), norm("norm3", n, dim), ew("modulate3", n, dim, 2),
           *mlp("ffn", n, dim, ffn), ew("gate_add3", n, dim, 3)]
    blocks = [block("embed", "embed", embed, n, dim)]
    blocks += [block(f"block{i}", "transformer", ops, n, dim) for i in range(cfg["num_layers"])]
    out = p * p * cfg["out_channels"]
    final = [norm("norm_out", n, dim), ew("modulate_out", n, dim, 2, params=2 * dim),
             linear("proj_out", n, dim, out)]
    blocks.append(block("final", "head", final, n, out))
    return blocks
