"""DiT family, built from configs: single-stream transformers that see the text through
cross-attention.

PixArtTransformer2DModel   pixart-alpha / pixart-sigma (adaLN-single, 28 x 1152)
DiTTransformer2DModel      dit-xl-2 (adaLN-zero, class label, 28 x 1152)
HunyuanDiT2DModel          hunyuandit (40 x 1408, U-ViT long skips)
LatteTransformer3DModel    latte-1 (28 spatial + 28 temporal PixArt blocks)
OpenSoraSTDiT3Model        opensora-1.2: Open-Sora's STDiT3-XL/2 (28 spatial + 28 temporal blocks)

One Block per transformer layer, plus an embedding block first and the final
norm/projection last. Spatial attention of factorised video models runs one group per
frame; temporal attention one group per latent position.
"""
from __future__ import annotations

from planner.zoo.hub import Cfg, ZooError, require
from planner.zoo.layers import (Grid, attention, block, conv, cross_attn, ew, linear, lookup, mlp,
                                norm, self_attn, timestep_mlp)

# __init__ defaults of the keys read here (diffusers 0.42.1 src/diffusers/models/transformers/
# pixart_transformer_2d.py, dit_transformer_2d.py, hunyuan_transformer_2d.py, latte_transformer_3d.py)
PIXART_DEFAULTS = {"num_attention_heads": 16, "attention_head_dim": 72, "in_channels": 4, "out_channels": 8,
                   "num_layers": 28, "cross_attention_dim": 1152, "sample_size": 128, "patch_size": 2,
                   "caption_channels": None, "use_additional_conditions": None, "norm_type": "ada_norm_single"}
DIT_DEFAULTS = {"num_attention_heads": 16, "attention_head_dim": 72, "in_channels": 4, "out_channels": None,
                "num_layers": 28, "patch_size": 2, "num_embeds_ada_norm": 1000, "norm_type": "ada_norm_zero"}
HUNYUANDIT_DEFAULTS = {"num_attention_heads": 16, "attention_head_dim": 88, "in_channels": None, "patch_size": None,
                       "hidden_size": 1152, "num_layers": 28, "mlp_ratio": 4.0, "learn_sigma": True,
                       "cross_attention_dim": 1024, "cross_attention_dim_t5": 2048, "pooled_projection_dim": 1024,
                       "text_len": 77, "text_len_t5": 256, "use_style_cond_and_image_meta_size": True}
LATTE_DEFAULTS = {"num_attention_heads": 16, "attention_head_dim": 88, "in_channels": None, "out_channels": None,
                  "num_layers": 1, "cross_attention_dim": None, "patch_size": None, "norm_type": "layer_norm",
                  "caption_channels": None}


def latent(cfg: Cfg) -> tuple[int, int]:
    """(latent channels, patch) of PixArt, DiT, HunyuanDiT and Latte configs."""
    return cfg["in_channels"], cfg["patch_size"]


def stdit3_latent(cfg: Cfg) -> tuple[int, int]:
    return cfg["in_channels"], cfg["patch_size"][1]


def _width(cfg: Cfg) -> tuple[int, int, int]:
    """(hidden, heads, head_dim) of a config that gives heads x head_dim."""
    heads, hd = cfg["num_attention_heads"], cfg["attention_head_dim"]
    return heads * hd, heads, hd


def _out(cfg: Cfg) -> int:
    """Output channels: out_channels, or the input channels when the config leaves it unset."""
    return cfg["out_channels"] or cfg["in_channels"]


def _patch_embed(g: Grid, cin: int, dim: int, *, pos: bool = True) -> list:
    """Conv with kernel = stride = patch (per frame), then the fixed sin-cos position add
    (pos=False for HunyuanDiT, which rotates q/k instead)."""
    n, taps = g.tokens, g.patch * g.patch
    return [conv("patch_embed", n, cin, dim, taps, in_tokens=n * taps)] + [ew("pos_embed", n, dim, 3)] * pos


def _caption_proj(t: int, fin: int, dim: int, hidden: int | None = None, out: int | None = None,
                  p: str = "caption_proj") -> list:
    """PixArtAlphaTextProjection on the text tokens: linear -> GELU/SiLU -> linear."""
    hidden = hidden or dim
    return [linear(f"{p}.linear_1", t, fin, hidden, text=True), ew(f"{p}.act", t, hidden, text=True),
            linear(f"{p}.linear_2", t, hidden, out or dim, text=True)]


def _adaln_block(seq: int, groups: int, d: int, heads: int, hd: int, *, ctx: int = 0, ctx_dim: int = 0,
                 ctx_rows: int | None = None, table: int | None = None, qk_norm: int = 0, rope: bool = False,
                 fused: bool = False, cross_fused: bool = False, cross_whole: bool = False) -> tuple:
    """PixArt-style block of width d (adaLN-single: the six modulation vectors are a learned
    `table` (default 6 d) plus the shared timestep projection): norm -> modulate -> self-attn
    -> gated add -> [cross-attn to `ctx` text tokens of width ctx_dim -> add] -> norm ->
    modulate -> GELU MLP (4 d) -> gated add. cross_whole: the cross-attention queries are the
    whole sequence at once instead of one group each (STDiT3)."""
    rows = seq * groups
    table = 6 * d if table is None else table
    cseq, cgroups = (rows, 1) if cross_whole else (seq, groups)
    ops = [norm("norm1", rows, d), ew("modulate1", rows, d, 2, params=table),
           *self_attn("attn1", seq, d, heads, hd, groups=groups, qk_norm=qk_norm, rope=rope, fused=fused),
           ew("gate_add1", rows, d, 3)]
    if ctx:
        ops += [*cross_attn("attn2", cseq, d, heads, hd, ctx, ctx_dim or d, groups=cgroups, ctx_rows=ctx_rows,
                            fused_kv=cross_fused),
                ew("add2", rows, d, 3)]
    ops += [norm("norm2", rows, d), ew("modulate2", rows, d, 2), *mlp("ff", rows, d, 4 * d),
            ew("gate_add2", rows, d, 3)]
    return tuple(ops)


def _final(g: Grid, dim: int, out_ch: int, *, table: bool = True) -> list:
    """LayerNorm (no affine) -> shift/scale -> linear to patch*patch*out_ch."""
    n = g.tokens
    return [norm("norm_out", n, dim), ew("modulate_out", n, dim, 2, params=2 * dim if table else 0),
            linear("proj_out", n, dim, g.patch * g.patch * out_ch)]


def _adaln_single(dim: int, extra_sizes: bool) -> list:
    """Timestep MLP (+ PixArt-alpha's resolution and aspect-ratio embedders) and the one
    shared SiLU -> linear(dim -> 6 dim) modulation."""
    ops = timestep_mlp("t_embedder", 256, dim)
    if extra_sizes:
        ops += timestep_mlp("resolution_embedder", 256, dim // 3, rows=2)
        ops += timestep_mlp("aspect_ratio_embedder", 256, dim // 3)
    return ops + [ew("t_act", 1, dim), linear("adaln_single", 1, dim, 6 * dim)]


# ---------------------------------------------------------------- PixArt, DiT
def pixart(cfg: Cfg, g: Grid) -> list:
    """PixArtTransformer2DModel. use_additional_conditions unset means diffusers' rule:
    on for sample_size 128 (the 1024px alpha model embeds resolution and aspect ratio)."""
    require(cfg, "norm_type", ("ada_norm_single",))
    d, heads, hd = _width(cfg)
    n, t = g.tokens, g.text
    extra = cfg["use_additional_conditions"]
    extra = cfg["sample_size"] == 128 if extra is None else extra
    caption = cfg["caption_channels"]
    if not caption:
        raise ZooError(f"{cfg.where}: caption_channels must be set (the text encoder width)")
    blocks = [block("embed", "embed", _patch_embed(g, cfg["in_channels"], d) + _adaln_single(d, extra)
                    + _caption_proj(t, caption, d), n, d)]
    layer = _adaln_block(n, 1, d, heads, hd, ctx=t, ctx_dim=cfg["cross_attention_dim"])   # one shared op tuple
    blocks += [block(f"block{i}", "transformer", layer, n, d) for i in range(cfg["num_layers"])]
    out = _out(cfg)
    blocks.append(block("final", "head", _final(g, d, out), n, g.patch * g.patch * out))
    return blocks


def dit(cfg: Cfg, g: Grid) -> list:
    """DiTTransformer2DModel (adaLN-zero); diffusers gives every block its own timestep +
    class embedder (the reason for 0.750B instantiated vs 0.675B unique); the head re-runs
    block 0's."""
    require(cfg, "norm_type", ("ada_norm_zero",))
    d, heads, hd = _width(cfg)
    n = g.tokens
    blocks = [block("embed", "embed", _patch_embed(g, cfg["in_channels"], d), n, d)]
    cond = (*timestep_mlp("t_embedder", 256, d), lookup("class_embedder", 1, d, cfg["num_embeds_ada_norm"] + 1),
            ew("adaln.act", 1, d), linear("adaln.linear", 1, d, 6 * d))
    layer = cond + _adaln_block(n, 1, d, heads, hd, table=0)
    blocks += [block(f"block{i}", "transformer", layer, n, d) for i in range(cfg["num_layers"])]
    head = [o.scaled(params=0) for o in timestep_mlp("t_embedder", 256, d)]
    head += [ew("act", 1, d), linear("proj_out_1", 1, d, 2 * d)]
    out = _out(cfg)
    head += _final(g, d, out, table=False)
    blocks.append(block("final", "head", head, n, g.patch * g.patch * out))
    return blocks


# ---------------------------------------------------------------- HunyuanDiT
def hunyuandit(cfg: Cfg, g: Grid) -> list:
    """HunyuanDiT2DModel (v1.2: 40 blocks of 1408 = 16 x 88, FFN int(1408 x 4.3637) = 6144, qk
    LayerNorms, cross-attention to text_len CLIP tokens (1024) + mT5 tokens (2048 projected
    to 1024)). The first num_layers // 2 - 1 blocks push their output on a skip stack; the
    last as many pop it through LayerNorm(2 x hidden) + linear(2 hidden -> hidden)."""
    if cfg["use_style_cond_and_image_meta_size"]:
        raise ZooError(f"{cfg.where}: use_style_cond_and_image_meta_size (HunyuanDiT <= v1.1) is not supported "
                       f"(accepted: false)")
    dim, heads, hd, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["attention_head_dim"], cfg["num_layers"]
    ffn, n, t = int(dim * cfg["mlp_ratio"]), g.tokens, g.text
    clip, t5_dim, cross = cfg["text_len"], cfg["cross_attention_dim_t5"], cfg["cross_attention_dim"]
    if t <= clip:
        raise ValueError(f"text_tokens={t} must exceed the {clip} CLIP tokens ({clip} + mT5 tokens)")
    t5 = t - clip
    # attention pooling of the mT5 tokens (plus their mean) into the conditioning vector
    pool_heads = 8
    pool = [ew("pooler.pos_embed", t5 + 1, t5_dim, 3, params=(cfg["text_len_t5"] + 1) * t5_dim, text=True),
            linear("pooler.k_proj", t5 + 1, t5_dim, t5_dim, text=True),
            linear("pooler.v_proj", t5 + 1, t5_dim, t5_dim, text=True),
            linear("pooler.q_proj", 1, t5_dim, t5_dim, text=True),
            attention("pooler.sdpa", 1, pool_heads, t5_dim // pool_heads, kv=0, ctx=t5 + 1, text=True),
            linear("pooler.c_proj", 1, t5_dim, cfg["pooled_projection_dim"], text=True)]
    embed = (_patch_embed(g, cfg["in_channels"], dim, pos=False)
             + _caption_proj(t5, t5_dim, cross, 4 * t5_dim, cross, "text_embedder")
             + [ew("text_padding", t, cross, 3, params=(clip + cfg["text_len_t5"]) * cross, text=True)] + pool
             + timestep_mlp("t_embedder", 256, dim)
             + _caption_proj(1, cfg["pooled_projection_dim"], dim, 4 * dim, dim, "extra_embedder"))
    blocks = [block("embed", "embed", embed, n, dim)]
    layer = (linear("norm1.linear", 1, dim, dim), norm("norm1", n, dim, params=2 * dim),
             ew("shift", n, dim, 2),
             *self_attn("attn1", n, dim, heads, hd, qk_norm=2 * hd, rope=True),
             ew("add1", n, dim, 3), norm("norm2", n, dim, params=2 * dim),
             *cross_attn("attn2", n, dim, heads, hd, t, cross, qk_norm=2 * hd),
             ew("add2", n, dim, 3), norm("norm3", n, dim, params=2 * dim),
             *mlp("ff", n, dim, ffn), ew("add3", n, dim, 3))
    skip = (norm("skip_norm", n, 2 * dim, params=4 * dim), linear("skip_linear", n, 2 * dim, dim)) + layer
    alive, half = 0, layers // 2
    for i in range(layers):
        if i > half:   # pops the skip pushed by block layers - 1 - i
            alive -= 1
        if i < half - 1:
            alive += 1
        blocks.append(block(f"block{i}", "transformer", skip if i > half else layer, n, dim, alive * n * dim))
    out = cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1)
    head = [ew("norm_out.act", 1, dim), linear("norm_out.linear", 1, dim, 2 * dim)]
    head += _final(g, dim, out, table=False)
    blocks.append(block("final", "head", head, n, g.patch * g.patch * out))
    return blocks


# ---------------------------------------------------------------- factorised video DiTs
def latte(cfg: Cfg, g: Grid) -> list:
    """LatteTransformer3DModel (Latte-1: PixArt-alpha dims, GELU-tanh MLP, attention bias).
    Spatial blocks attend within a frame and cross-attend the prompt, which the pipeline
    repeats per frame (so K/V projections run frames x text rows); temporal blocks
    attend across frames at each position and have no cross-attention."""
    require(cfg, "norm_type", ("ada_norm_single",))
    d, heads, hd = _width(cfg)
    n, s, fr, t = g.tokens, g.per_frame, g.lf, g.text
    embed = (_patch_embed(g, cfg["in_channels"], d) + _adaln_single(d, False)
             + _caption_proj(t, cfg["caption_channels"], d))
    blocks = [block("embed", "embed", embed, n, d)]
    sp = _adaln_block(s, fr, d, heads, hd, ctx=t, ctx_dim=cfg["cross_attention_dim"], ctx_rows=fr * t)
    tp = _adaln_block(fr, s, d, heads, hd)
    for i in range(cfg["num_layers"]):   # the first temporal block also adds the frame positions
        blocks += [block(f"spatial{i}", "transformer", sp, n, d),
                   block(f"temporal{i}", "temporal", (ew("temp_pos_embed", n, d, 3),) * (i == 0) + tp, n, d)]
    out = _out(cfg)
    blocks.append(block("final", "head", _final(g, d, out), n, g.patch * g.patch * out))
    return blocks


STDIT3_DEFAULTS = {"in_channels": 4, "caption_channels": 4096, "mlp_ratio": 4.0, "pred_sigma": True, "qk_norm": False}


def stdit3(cfg: Cfg, g: Grid) -> list:
    """Open-Sora 1.2 STDiT3 (opensora/models/stdit/stdit3.py): fused qkv with bias, RMS qk-norm
    (head_dim weights), RoPE on temporal attention, cross-attention (q, fused kv, proj) over
    all video tokens in both spatial and temporal blocks, GELU-tanh MLP, adaLN-single
    tables; timestep + fps embedders. Not in models.csv's numbers: ~1.2B counted from
    this structure vs "1.1B" published."""
    if cfg["mlp_ratio"] != 4.0:
        raise ZooError(f"{cfg.where}: mlp_ratio={cfg['mlp_ratio']} is not supported (accepted: 4.0)")
    d, heads = cfg["hidden_size"], cfg["num_heads"]
    hd = d // heads
    n, s, fr, t = g.tokens, g.per_frame, g.lf, g.text
    embed = (_patch_embed(g, cfg["in_channels"], d) + timestep_mlp("t_embedder", 256, d)
             + timestep_mlp("fps_embedder", 256, d) + [ew("t_act", 1, d), linear("t_block", 1, d, 6 * d)]
             + _caption_proj(t, cfg["caption_channels"], d, p="y_embedder"))
    blocks = [block("embed", "embed", embed, n, d)]
    qk = hd if cfg["qk_norm"] else 0
    layers = {kind: _adaln_block(seq, groups, d, heads, hd, ctx=t, qk_norm=qk, rope=kind == "temporal", fused=True,
                                 cross_fused=True, cross_whole=True)
              for kind, seq, groups in (("spatial", s, fr), ("temporal", fr, s))}
    for i in range(cfg["depth"]):
        blocks += [block(f"spatial{i}", "transformer", layers["spatial"], n, d),
                   block(f"temporal{i}", "temporal", layers["temporal"], n, d)]
    out = cfg["in_channels"] * (2 if cfg["pred_sigma"] else 1)
    blocks.append(block("final", "head", _final(g, d, out), n, g.patch * g.patch * out))
    return blocks
