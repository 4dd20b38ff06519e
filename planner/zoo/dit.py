"""DiT family: single-stream transformers that see the text through cross-attention.

pixart-alpha / pixart-sigma  PixArtTransformer2DModel (adaLN-single, 28 x 1152)
dit-xl-2                     DiTTransformer2DModel (adaLN-zero, class label, 28 x 1152)
hunyuandit                   HunyuanDiT2DModel (40 x 1408, U-ViT long skips)
latte-1                      LatteTransformer3DModel (28 spatial + 28 temporal PixArt blocks)
opensora-1.2                 Open-Sora STDiT3-XL/2 (28 spatial + 28 temporal blocks)

One Block per transformer layer, plus an embedding block first and the final
norm/projection last. Spatial attention of factorised video models runs one group per
frame; temporal attention one group per latent position.
"""
from __future__ import annotations

from planner.zoo import encoders, vae
from planner.zoo.layers import (Grid, attention, block, conv, cross_attn, ew, linear, lookup, mlp,
                                norm, self_attn, spec, timestep_mlp)

D, HEADS, HD = 1152, 16, 72          # PixArt / DiT / Latte / STDiT3 width
T5_DIM = 4096


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


def _adaln_block(seq: int, groups: int, *, ctx: int = 0, ctx_rows: int | None = None,
                 table: int = 6 * D, qk_norm: int = 0, rope: bool = False, fused: bool = False,
                 cross_fused: bool = False, cross_whole: bool = False) -> tuple:
    """PixArt-style 1152-wide block (adaLN-single: the six modulation vectors are a learned
    `table` plus the shared timestep projection): norm -> modulate -> self-attn -> gated
    add -> [cross-attn to `ctx` text tokens -> add] -> norm -> modulate -> GELU MLP ->
    gated add. cross_whole: the cross-attention queries are the whole sequence at once
    instead of one group each (STDiT3)."""
    rows = seq * groups
    cseq, cgroups = (rows, 1) if cross_whole else (seq, groups)
    ops = [norm("norm1", rows, D), ew("modulate1", rows, D, 2, params=table),
           *self_attn("attn1", seq, D, HEADS, HD, groups=groups, qk_norm=qk_norm, rope=rope, fused=fused),
           ew("gate_add1", rows, D, 3)]
    if ctx:
        ops += [*cross_attn("attn2", cseq, D, HEADS, HD, ctx, D, groups=cgroups, ctx_rows=ctx_rows,
                            fused_kv=cross_fused),
                ew("add2", rows, D, 3)]
    ops += [norm("norm2", rows, D), ew("modulate2", rows, D, 2), *mlp("ff", rows, D, 4 * D),
            ew("gate_add2", rows, D, 3)]
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
def _pixart(f, g: Grid, extra_sizes: bool):
    n, t = g.tokens, g.text
    blocks = [block("embed", "embed", _patch_embed(g, 4, D) + _adaln_single(D, extra_sizes)
                    + _caption_proj(t, T5_DIM, D), n, D)]
    layer = _adaln_block(n, 1, ctx=t)      # the 28 layers are alike: share one op tuple
    blocks += [block(f"block{i}", "transformer", layer, n, D) for i in range(28)]
    blocks.append(block("final", "head", _final(g, D, 8), n, 4 * 8))
    return spec(f, g, blocks, [encoders.t5_xxl(t)], vae.sd_decoder(4, g.lh, g.lw))


def _dit(f, g: Grid):
    """adaLN-zero; diffusers gives every block its own timestep + class embedder (the
    reason for 0.750B instantiated vs 0.675B unique); the head re-runs block 0's."""
    n = g.tokens
    blocks = [block("embed", "embed", _patch_embed(g, 4, D), n, D)]
    cond = (*timestep_mlp("t_embedder", 256, D), lookup("class_embedder", 1, D, 1001),
            ew("adaln.act", 1, D), linear("adaln.linear", 1, D, 6 * D))
    layer = cond + _adaln_block(n, 1, table=0)
    blocks += [block(f"block{i}", "transformer", layer, n, D) for i in range(28)]
    head = [o.scaled(params=0) for o in timestep_mlp("t_embedder", 256, D)]
    head += [ew("act", 1, D), linear("proj_out_1", 1, D, 2 * D)]
    head += _final(g, D, 8, table=False)
    blocks.append(block("final", "head", head, n, 4 * 8))
    return spec(f, g, blocks, [], vae.sd_decoder(4, g.lh, g.lw))


# ---------------------------------------------------------------- HunyuanDiT
def _hunyuandit(f, g: Grid):
    """HunyuanDiT v1.2: 40 blocks of 1408 (16 x 88), FFN int(1408 x 4.3637) = 6144, qk
    LayerNorms, cross-attention to 77 CLIP (1024) + T5 tokens (2048 projected to 1024).
    Blocks 0-18 push their output on a skip stack; blocks 21-39 pop it through
    LayerNorm(2 x 1408) + linear(2816 -> 1408)."""
    dim, heads, hd, ffn, n, t = 1408, 16, 88, 6144, g.tokens, g.text
    if t <= 77:
        raise ValueError(f"{f.id}: text_tokens={t} must exceed the 77 CLIP tokens (77 + mT5 tokens)")
    t5 = t - 77
    # attention pooling of the mT5 tokens (plus their mean) into the conditioning vector
    pool = [ew("pooler.pos_embed", t5 + 1, 2048, 3, params=257 * 2048, text=True),
            linear("pooler.k_proj", t5 + 1, 2048, 2048, text=True),
            linear("pooler.v_proj", t5 + 1, 2048, 2048, text=True),
            linear("pooler.q_proj", 1, 2048, 2048, text=True),
            attention("pooler.sdpa", 1, 8, 256, kv=0, ctx=t5 + 1, text=True),
            linear("pooler.c_proj", 1, 2048, 1024, text=True)]
    embed = (_patch_embed(g, 4, dim, pos=False) + _caption_proj(t5, 2048, 1024, 8192, 1024, "text_embedder")
             + [ew("text_padding", t, 1024, 3, params=(77 + 256) * 1024, text=True)] + pool
             + timestep_mlp("t_embedder", 256, dim)
             + _caption_proj(1, 1024, dim, 4 * dim, dim, "extra_embedder"))
    blocks = [block("embed", "embed", embed, n, dim)]
    layer = (linear("norm1.linear", 1, dim, dim), norm("norm1", n, dim, params=2 * dim),
             ew("shift", n, dim, 2),
             *self_attn("attn1", n, dim, heads, hd, qk_norm=2 * hd, rope=True),
             ew("add1", n, dim, 3), norm("norm2", n, dim, params=2 * dim),
             *cross_attn("attn2", n, dim, heads, hd, t, 1024, qk_norm=2 * hd),
             ew("add2", n, dim, 3), norm("norm3", n, dim, params=2 * dim),
             *mlp("ff", n, dim, ffn), ew("add3", n, dim, 3))
    skip = (norm("skip_norm", n, 2 * dim, params=4 * dim), linear("skip_linear", n, 2 * dim, dim)) + layer
    alive = 0
    for i in range(40):
        if i > 20:   # pops the skip pushed by block 39 - i
            alive -= 1
        if i < 19:
            alive += 1
        blocks.append(block(f"block{i}", "transformer", skip if i > 20 else layer, n, dim, alive * n * dim))
    head = [ew("norm_out.act", 1, dim), linear("norm_out.linear", 1, dim, 2 * dim)]
    head += _final(g, dim, 8, table=False)
    blocks.append(block("final", "head", head, n, 4 * 8))
    return spec(f, g, blocks, [encoders.bilingual_clip(77), encoders.mt5_xl(t5)],
                vae.sd_decoder(4, g.lh, g.lw))


# ---------------------------------------------------------------- factorised video DiTs
def _latte(f, g: Grid):
    """Latte-1: PixArt-alpha dims (csv: config assumed), GELU-tanh MLP, attention bias.
    Spatial blocks attend within a frame and cross-attend the prompt, which the pipeline
    repeats per frame (so K/V projections run frames x text rows); temporal blocks
    attend across frames at each position and have no cross-attention."""
    n, s, fr, t = g.tokens, g.per_frame, g.lf, g.text
    embed = _patch_embed(g, 4, D) + _adaln_single(D, False) + _caption_proj(t, T5_DIM, D)
    blocks = [block("embed", "embed", embed, n, D)]
    sp, tp = _adaln_block(s, fr, ctx=t, ctx_rows=fr * t), _adaln_block(fr, s)
    for i in range(28):   # the first temporal block also adds the frame positions
        blocks += [block(f"spatial{i}", "transformer", sp, n, D),
                   block(f"temporal{i}", "temporal", (ew("temp_pos_embed", n, D, 3),) * (i == 0) + tp, n, D)]
    blocks.append(block("final", "head", _final(g, D, 8), n, 4 * 8))
    return spec(f, g, blocks, [encoders.t5_xxl(t)], vae.sd_decoder(4, g.lh, g.lw, g.frames))


def _opensora12(f, g: Grid):
    """STDiT3-XL/2 (opensora/models/stdit/stdit3.py): fused qkv with bias, RMS qk-norm
    (72 weights), RoPE on temporal attention, cross-attention (q, fused kv, proj) over
    all video tokens in both spatial and temporal blocks, GELU-tanh MLP, adaLN-single
    tables; timestep + fps embedders. Not in models.csv's numbers: ~1.2B counted from
    this structure vs "1.1B" published."""
    n, s, fr, t = g.tokens, g.per_frame, g.lf, g.text
    embed = (_patch_embed(g, 4, D) + timestep_mlp("t_embedder", 256, D)
             + timestep_mlp("fps_embedder", 256, D) + [ew("t_act", 1, D), linear("t_block", 1, D, 6 * D)]
             + _caption_proj(t, T5_DIM, D, p="y_embedder"))
    blocks = [block("embed", "embed", embed, n, D)]
    layers = {kind: _adaln_block(seq, groups, ctx=t, qk_norm=HD, rope=kind == "temporal", fused=True,
                                 cross_fused=True, cross_whole=True)
              for kind, seq, groups in (("spatial", s, fr), ("temporal", fr, s))}
    for i in range(28):
        blocks += [block(f"spatial{i}", "transformer", layers["spatial"], n, D),
                   block(f"temporal{i}", "temporal", layers["temporal"], n, D)]
    blocks.append(block("final", "head", _final(g, D, 8), n, 4 * 8))
    return spec(f, g, blocks, [encoders.t5_xxl(t)], vae.opensora12_decoder(g.lf, g.lh, g.lw, g.frames))


def build(f, g: Grid):
    if f.id in ("pixart-alpha", "pixart-sigma"):
        # the 1024px alpha model embeds resolution and aspect ratio; sigma does not
        return _pixart(f, g, extra_sizes=f.id == "pixart-alpha")
    return {"dit-xl-2": _dit, "hunyuandit": _hunyuandit, "latte-1": _latte,
            "opensora-1.2": _opensora12}[f.id](f, g)
