"""MM-DiT family, built from configs: image and text tokens share one joint self-attention.

SD3Transformer2DModel            sd3-medium / sd3.5-large (24 x 1536 / 38 x 2432 double-stream)
FluxTransformer2DModel           flux.1-dev / -schnell (19 double + 38 single stream, 3072)
OpenSoraMMDiTModel               opensora-2.0: Open-Sora 2.0's MMDiT = Flux dims, no guidance embedder
HunyuanVideoTransformer3DModel   hunyuanvideo (token refiner, 20 double + 40 single)
MochiTransformer3DModel          mochi-1 (asymmetric: text stream 1536 wide)

Double-stream blocks have separate weights per stream (text ops flagged text=True);
joint attention carries the text as q_ctx/ctx_tokens. Single-stream blocks run shared
weights on the concatenated sequence, written as image ops plus text copies (with_text).
Block.tokens counts the rows a block emits at width `hidden`: image + text rows for
blocks that emit both streams (Mochi's 1536-wide text rows count as T/2 rows of 3072).
"""
from __future__ import annotations

from planner.zoo.hub import Cfg, ZooError, require
from planner.zoo.layers import (Grid, attention, block, conv, ew, linear, mlp, norm, qk_norms, qkv,
                                timestep_mlp, with_text)

# __init__ defaults of the keys read here (diffusers 0.42.1 src/diffusers/models/transformers/
# transformer_sd3.py, transformer_flux.py, transformer_hunyuan_video.py, transformer_mochi.py)
SD3_DEFAULTS = {"patch_size": 2, "in_channels": 16, "num_layers": 18, "attention_head_dim": 64,
                "num_attention_heads": 18, "joint_attention_dim": 4096, "caption_projection_dim": 1152,
                "pooled_projection_dim": 2048, "out_channels": 16, "dual_attention_layers": (), "qk_norm": None}
FLUX_DEFAULTS = {"patch_size": 1, "in_channels": 64, "out_channels": None, "num_layers": 19, "num_single_layers": 38,
                 "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
                 "pooled_projection_dim": 768, "guidance_embeds": False}
HUNYUANVIDEO_DEFAULTS = {"in_channels": 16, "out_channels": 16, "num_attention_heads": 24, "attention_head_dim": 128,
                         "num_layers": 20, "num_single_layers": 40, "num_refiner_layers": 2, "mlp_ratio": 4.0,
                         "patch_size": 2, "patch_size_t": 1, "qk_norm": "rms_norm", "guidance_embeds": True,
                         "text_embed_dim": 4096, "pooled_projection_dim": 768, "image_condition_type": None}
MOCHI_DEFAULTS = {"patch_size": 2, "num_attention_heads": 24, "attention_head_dim": 128, "num_layers": 48,
                  "pooled_projection_dim": 1536, "in_channels": 12, "out_channels": None, "qk_norm": "rms_norm",
                  "text_embed_dim": 4096, "time_embed_dim": 256, "activation_fn": "swiglu"}
OPENSORA2_DEFAULTS = {"guidance_embed": False, "qkv_bias": True, "cond_embed": False}
# Flux-style pipelines pack 2 x 2 latent patches into one token (the transformer sees
# patch_size 1 on in_channels = 4 x latent channels)
PACK = 2


def latent(cfg: Cfg) -> tuple[int, int]:
    """(latent channels, patch) of SD3, HunyuanVideo and Mochi configs."""
    return cfg["in_channels"], cfg["patch_size"]


def packed_latent(cfg: Cfg) -> tuple[int, int]:
    """Flux and Open-Sora 2.0: the 2x2-packed tokens read as patch 2 on in_channels / 4."""
    return cfg["in_channels"] // PACK ** 2, PACK


def _modulation(p: str, dim: int, out: int) -> list:
    """adaLN: SiLU -> linear on the pooled conditioning vector (one row)."""
    return [ew(f"{p}.act", 1, dim), linear(f"{p}.linear", 1, dim, out)]


def _double(n: int, t: int, dim: int, heads: int, hd: int, *, tdim: int | None = None,
            mod: int = 6, mod_txt: int | None = None, qk: int = 0, rope: bool = False,
            bias: bool = True, ffn: int = 0, ffn_txt: int = 0, gated: bool = False,
            txt_out: bool = True) -> tuple:
    """One double-stream block. mod / mod_txt: modulation vectors per stream (6 for
    adaLN-zero, Mochi's RMSNormZero 4); qk: weights of each per-head q/k norm; bias: of the
    QKV and MLP projections (attention outputs always have one); txt_out: False for the
    last SD3/Mochi block, which reads the text but does not update it."""
    tdim, inner = tdim or dim, heads * hd
    mod_txt = mod if mod_txt is None else mod_txt
    ops = _modulation("norm1", dim, mod * dim) + _modulation("norm1_context", dim, mod_txt * tdim)
    ops += [norm("norm1", n, dim), ew("modulate1", n, dim, 2),
            norm("norm1_context", t, tdim, text=True), ew("modulate1_context", t, tdim, 2, text=True)]
    ops += qkv("attn", n, dim, inner, bias=bias)
    ops += qkv("attn.add", t, tdim, inner, bias=bias, text=True)
    if qk:
        ops += qk_norms("attn", n, inner, qk) + qk_norms("attn", t, inner, qk, text=True, added=True)
    if rope:
        ops.append(ew("attn.rope", n, 2 * inner))
    ops += [attention("attn.sdpa", n, heads, hd, q_ctx=t, ctx=t),
            linear("attn.to_out", n, inner, dim, "row"), ew("gate_add1", n, dim, 3),
            norm("norm2", n, dim), ew("modulate2", n, dim, 2),
            *mlp("ff", n, dim, ffn or 4 * dim, gated=gated, bias=bias), ew("gate_add2", n, dim, 3)]
    if txt_out:
        ops += [linear("attn.to_add_out", t, inner, tdim, "row", text=True),
                ew("gate_add1_context", t, tdim, 3, text=True),
                norm("norm2_context", t, tdim, text=True), ew("modulate2_context", t, tdim, 2, text=True),
                *mlp("ff_context", t, tdim, ffn_txt or 4 * tdim, gated=gated, bias=bias, text=True),
                ew("gate_add2_context", t, tdim, 3, text=True)]
    return tuple(ops)


def _single(n: int, t: int, dim: int, heads: int, hd: int, ffn: int) -> tuple:
    """Flux/HunyuanVideo single-stream block: modulated norm, parallel QKV and MLP-up
    projections of the joint sequence, joint attention, one output projection of
    [attention | MLP] (dim + ffn -> dim), gated residual."""
    inner = heads * hd
    pre = [norm("norm", n, dim), ew("modulate", n, dim, 2),
           linear("proj_mlp", n, dim, ffn, "col"), ew("act_mlp", n, ffn),
           *qkv("attn", n, dim, inner), *qk_norms("attn", n, inner, hd),
           ew("attn.rope", n, 2 * inner)]
    post = [linear("proj_out", n, inner + ffn, dim, "row"), ew("gate_add", n, dim, 3)]
    return tuple(_modulation("norm", dim, 3 * dim) + with_text(pre, t)
                 + [attention("attn.sdpa", n, heads, hd, q_ctx=t, ctx=t)] + with_text(post, t))


def _head(n: int, dim: int, out: int) -> list:
    """AdaLayerNormContinuous (SiLU -> linear to shift/scale, LayerNorm) -> proj_out."""
    return _modulation("norm_out", dim, 2 * dim) + [
        norm("norm_out", n, dim), ew("modulate_out", n, dim, 2), linear("proj_out", n, dim, out)]


# ---------------------------------------------------------------- SD3 / SD3.5
def sd3(cfg: Cfg, g: Grid, clip_tokens: int) -> list:
    """SD3Transformer2DModel; qk_norm rms_norm (SD3.5) adds RMS qk-norms (head_dim weights).
    The text is `clip_tokens` CLIP-L+bigG tokens (zero-padded to joint_attention_dim) followed
    by the T5 tokens; the last block is context_pre_only (text keys/values only, no text output)."""
    require(cfg, "qk_norm", (None, "rms_norm"))
    if cfg["dual_attention_layers"]:
        raise ZooError(f"{cfg.where}: dual_attention_layers (SD3.5-medium's MMDiT-X) is not supported (accepted: [])")
    layers, heads, hd = cfg["num_layers"], cfg["num_attention_heads"], cfg["attention_head_dim"]
    dim, n, t, p = heads * hd, g.tokens, g.text, g.patch
    if cfg["caption_projection_dim"] != dim:
        raise ZooError(f"{cfg.where}: caption_projection_dim {cfg['caption_projection_dim']} must equal heads x "
                       f"head_dim {dim}")
    if t <= clip_tokens:
        raise ValueError(f"text_tokens={t} must exceed the {clip_tokens} CLIP tokens ({clip_tokens} + T5 tokens)")
    embed = [conv("pos_embed.proj", n, cfg["in_channels"], dim, p * p, in_tokens=p * p * n),
             ew("pos_embed.add", n, dim, 3),
             *timestep_mlp("time_embed", 256, dim), *timestep_mlp("pooled_text_embed", cfg["pooled_projection_dim"], dim),
             linear("context_embedder", t, cfg["joint_attention_dim"], dim, text=True)]
    blocks = [block("embed", "embed", embed, n + t, dim)]
    qk = hd if cfg["qk_norm"] else 0
    layer = _double(n, t, dim, heads, hd, qk=qk)
    last = _double(n, t, dim, heads, hd, mod_txt=2, qk=qk, txt_out=False)
    blocks += [block(f"block{i}", "transformer", layer, n + t, dim) for i in range(layers - 1)]
    blocks.append(block(f"block{layers - 1}", "transformer", last, n, dim))
    out = p * p * cfg["out_channels"]
    blocks.append(block("final", "head", _head(n, dim, out), n, out))
    return blocks


# ---------------------------------------------------------------- Flux, Open-Sora 2.0
def _flux_like(g: Grid, *, dim: int, heads: int, hd: int, cin: int, out: int, pooled: int, ctx: int,
               double: int, single: int, ffn: int, guidance: bool) -> list:
    """Flux's layout: linear x_embedder on the packed tokens, timestep (+ guidance) + pooled
    text embeddings, context embedder, double- then single-stream blocks with RMS qk-norms
    (head_dim weights) and RoPE on image and text, AdaLayerNormContinuous head."""
    n, t = g.tokens, g.text
    embed = [linear("x_embedder", n, cin, dim), *timestep_mlp("time_embed", 256, dim)]
    if guidance:
        embed += timestep_mlp("guidance_embed", 256, dim)
    embed += [*timestep_mlp("pooled_text_embed", pooled, dim), linear("context_embedder", t, ctx, dim, text=True)]
    blocks = [block("embed", "embed", embed, n + t, dim)]
    dbl = _double(n, t, dim, heads, hd, qk=hd, rope=True, ffn=ffn, ffn_txt=ffn)
    sgl = _single(n, t, dim, heads, hd, ffn)
    blocks += [block(f"double{i}", "transformer", dbl, n + t, dim) for i in range(double)]
    blocks += [block(f"single{i}", "transformer", sgl, n + t, dim) for i in range(single)]
    blocks.append(block("final", "head", _head(n, dim, out), n, out))
    return blocks


def flux(cfg: Cfg, g: Grid) -> list:
    """FluxTransformer2DModel: 2x2-packed latent tokens, guidance embedder when
    guidance_embeds (flux.1-dev)."""
    if cfg["patch_size"] != 1:
        raise ZooError(f"{cfg.where}: patch_size={cfg['patch_size']} is not supported (accepted: 1, on packed latents)")
    heads, hd = cfg["num_attention_heads"], cfg["attention_head_dim"]
    dim = heads * hd
    return _flux_like(g, dim=dim, heads=heads, hd=hd, cin=cfg["in_channels"],
                      out=cfg["out_channels"] or cfg["in_channels"], pooled=cfg["pooled_projection_dim"],
                      ctx=cfg["joint_attention_dim"], double=cfg["num_layers"], single=cfg["num_single_layers"],
                      ffn=4 * dim, guidance=cfg["guidance_embeds"])


def opensora_mmdit(cfg: Cfg, g: Grid) -> list:
    """Open-Sora 2.0's MMDiT (its configs/diffusion/inference/*.py `model` dict, type flux): the
    Flux network on video tokens (frames x packed rows x cols), guidance embedder when
    guidance_embed. cond_embed's image-conditioning linear is left out, as models.csv counts
    the t2v model."""
    if not cfg["qkv_bias"]:
        raise ZooError(f"{cfg.where}: qkv_bias=false is not supported (accepted: true)")
    dim, heads = cfg["hidden_size"], cfg["num_heads"]
    return _flux_like(g, dim=dim, heads=heads, hd=dim // heads, cin=cfg["in_channels"], out=cfg["in_channels"],
                      pooled=cfg["vec_in_dim"], ctx=cfg["context_in_dim"], double=cfg["depth"],
                      single=cfg["depth_single_blocks"], ffn=int(dim * cfg["mlp_ratio"]),
                      guidance=cfg["guidance_embed"])


# ---------------------------------------------------------------- HunyuanVideo
def _token_refiner(t: int, dim: int, heads: int, hd: int, text_dim: int, layers: int, ffn: int) -> list:
    """HunyuanVideoTokenRefiner: timestep + mean-pooled-text embedding, proj_in text_dim -> dim,
    `layers` refiner blocks (LayerNorm, self-attention over the text, SiLU MLP, gated by an
    adaptive norm of the embedding)."""
    ops = [*timestep_mlp("refiner.time_embed", 256, dim), *timestep_mlp("refiner.text_embed", text_dim, dim),
           linear("refiner.proj_in", t, text_dim, dim, text=True)]
    for i in range(layers):
        p = f"refiner{i}"
        tokens = [norm(f"{p}.norm1", t, dim, params=2 * dim), *qkv(f"{p}.attn", t, dim, dim),
                  attention(f"{p}.attn.sdpa", t, heads, hd), linear(f"{p}.attn.to_out", t, dim, dim, "row"),
                  ew(f"{p}.gate_add1", t, dim, 3), norm(f"{p}.norm2", t, dim, params=2 * dim),
                  *mlp(f"{p}.ff", t, dim, ffn), ew(f"{p}.gate_add2", t, dim, 3)]
        ops += _modulation(f"{p}.norm_out", dim, 2 * dim) + [o.scaled(text=True) for o in tokens]
    return ops


def hunyuanvideo(cfg: Cfg, g: Grid) -> list:
    """HunyuanVideoTransformer3DModel (T2V): Conv3d (patch_size_t, p, p) patch embed, token refiner
    on the LLaMA hidden states, timestep + pooled CLIP (+ guidance) embeddings, then Flux-like
    double- and single-stream blocks (RMS qk-norm, 3D RoPE)."""
    require(cfg, "qk_norm", ("rms_norm",))
    require(cfg, "image_condition_type", (None,))
    require(cfg, "patch_size_t", (1,))
    heads, hd = cfg["num_attention_heads"], cfg["attention_head_dim"]
    dim, n, t, p = heads * hd, g.tokens, g.text, g.patch
    ffn = int(dim * cfg["mlp_ratio"])
    embed = [conv("x_embedder", n, cfg["in_channels"], dim, p * p, in_tokens=p * p * n),
             *_token_refiner(t, dim, heads, hd, cfg["text_embed_dim"], cfg["num_refiner_layers"], ffn),
             *timestep_mlp("time_embed", 256, dim), *timestep_mlp("pooled_text_embed", cfg["pooled_projection_dim"], dim)]
    if cfg["guidance_embeds"]:
        embed += timestep_mlp("guidance_embed", 256, dim)
    blocks = [block("embed", "embed", embed, n + t, dim)]
    dbl = _double(n, t, dim, heads, hd, qk=hd, rope=True, ffn=ffn, ffn_txt=ffn)
    sgl = _single(n, t, dim, heads, hd, ffn)
    blocks += [block(f"double{i}", "transformer", dbl, n + t, dim) for i in range(cfg["num_layers"])]
    blocks += [block(f"single{i}", "transformer", sgl, n + t, dim) for i in range(cfg["num_single_layers"])]
    out = p * p * cfg["out_channels"]
    blocks.append(block("final", "head", _head(n, dim, out), n, out))
    return blocks


# ---------------------------------------------------------------- Mochi
def mochi(cfg: Cfg, g: Grid) -> list:
    """MochiTransformer3DModel (AsymmDiT): image stream heads x head_dim (3072), text stream
    pooled_projection_dim (1536), no biases except the attention outputs, RMS qk-norms
    (head_dim), SwiGLU MLPs of 4 x width x 2 // 3, modulated RMSNorms without weights. The embedding
    attention-pools the T5 tokens for the conditioning vector; RoPE frequencies are a learned
    (3 -> heads x head_dim / 2) projection of each token's (t, y, x) position."""
    require(cfg, "qk_norm", ("rms_norm",))
    require(cfg, "activation_fn", ("swiglu",))
    heads, hd, tdim, text_dim = (cfg["num_attention_heads"], cfg["attention_head_dim"],
                                 cfg["pooled_projection_dim"], cfg["text_embed_dim"])
    dim, n, t, p = heads * hd, g.tokens, g.text, g.patch
    pool_heads = 8
    embed = [conv("patch_embed", n, cfg["in_channels"], dim, p * p, in_tokens=p * p * n),
             *timestep_mlp("time_embed", cfg["time_embed_dim"], dim),
             linear("pooler.to_kv", t + 1, text_dim, 2 * text_dim, text=True),
             linear("pooler.to_q", 1, text_dim, text_dim, text=True),
             attention("pooler.sdpa", 1, pool_heads, text_dim // pool_heads, kv=0, ctx=t + 1, text=True),
             linear("pooler.to_out", 1, text_dim, dim, text=True),
             linear("caption_proj", t, text_dim, tdim, text=True),
             linear("rope.freqs", n, 3, heads * hd // 2, bias=False)]
    # text rows are tdim / dim as wide as image rows (Mochi: half)
    txt_rows = (t + 1) // (dim // tdim)
    blocks = [block("embed", "embed", embed, n + txt_rows, dim)]
    # bias=False: only the attention outputs keep biases; the last block's context norm
    # is a continuous one (one tdim-wide scale) and it emits no text
    kw = dict(tdim=tdim, mod=4, qk=hd, rope=True, bias=False, ffn=_swiglu(dim), ffn_txt=_swiglu(tdim), gated=True)
    layers = cfg["num_layers"]
    layer = _double(n, t, dim, heads, hd, **kw)
    last = _double(n, t, dim, heads, hd, mod_txt=1, txt_out=False, **kw)
    blocks += [block(f"block{i}", "transformer", layer, n + txt_rows, dim) for i in range(layers - 1)]
    blocks.append(block(f"block{layers - 1}", "transformer", last, n, dim))
    out = p * p * (cfg["out_channels"] or cfg["in_channels"])
    blocks.append(block("final", "head", _head(n, dim, out), n, out))
    return blocks


def _swiglu(dim: int) -> int:
    """MochiTransformerBlock's SwiGLU inner width: 4 x dim x 2 // 3 (8192 at 3072, 4096 at 1536)."""
    return 4 * dim * 2 // 3
