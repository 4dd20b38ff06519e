"""MM-DiT family: image and text tokens share one joint self-attention.

sd3-medium / sd3.5-large   SD3Transformer2DModel (24 x 1536 / 38 x 2432 double-stream)
flux.1-dev / -schnell      FluxTransformer2DModel (19 double + 38 single stream, 3072)
opensora-2.0               Open-Sora 2.0 MMDiT = Flux dims without guidance embedder, 3D RoPE
hunyuanvideo               HunyuanVideoTransformer3DModel (token refiner, 20 double + 40 single)
mochi-1                    MochiTransformer3DModel (asymmetric: text stream 1536 wide)

Double-stream blocks have separate weights per stream (text ops flagged text=True);
joint attention carries the text as q_ctx/ctx_tokens. Single-stream blocks run shared
weights on the concatenated sequence, written as image ops plus text copies (with_text).
Block.tokens counts the rows a block emits at width `hidden`: image + text rows for
blocks that emit both streams (Mochi's 1536-wide text rows count as T/2 rows of 3072).
"""
from __future__ import annotations

from planner.zoo import encoders, vae
from planner.zoo.layers import (Grid, attention, block, conv, ew, linear, mlp, norm, qk_norms, qkv,
                                spec, timestep_mlp, with_text)

T5_DIM = 4096


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


def _single(n: int, t: int, dim: int, heads: int, hd: int) -> tuple:
    """Flux/HunyuanVideo single-stream block: modulated norm, parallel QKV and MLP-up
    projections of the joint sequence, joint attention, one output projection of
    [attention | MLP] (dim + 4 dim -> dim), gated residual."""
    inner, ffn = heads * hd, 4 * dim
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
def _sd3(f, g: Grid):
    """SD3Transformer2DModel; sd3.5-large adds RMS qk-norms (64 weights each). The text is
    77 CLIP-L+bigG tokens (zero-padded to 4096) followed by the T5 tokens; the last
    block is context_pre_only (text keys/values only, no text output)."""
    large = f.id == "sd3.5-large"
    layers, heads = (38, 38) if large else (24, 24)
    dim, n, t = heads * 64, g.tokens, g.text
    if t <= 77:
        raise ValueError(f"{f.id}: text_tokens={t} must exceed the 77 CLIP tokens (77 + T5 tokens)")
    embed = [conv("pos_embed.proj", n, 16, dim, 4, in_tokens=4 * n), ew("pos_embed.add", n, dim, 3),
             *timestep_mlp("time_embed", 256, dim), *timestep_mlp("pooled_text_embed", 2048, dim),
             linear("context_embedder", t, T5_DIM, dim, text=True)]
    blocks = [block("embed", "embed", embed, n + t, dim)]
    qk = 64 if large else 0
    layer = _double(n, t, dim, heads, 64, qk=qk)
    last = _double(n, t, dim, heads, 64, mod_txt=2, qk=qk, txt_out=False)
    blocks += [block(f"block{i}", "transformer", layer, n + t, dim) for i in range(layers - 1)]
    blocks.append(block(f"block{layers - 1}", "transformer", last, n, dim))
    blocks.append(block("final", "head", _head(n, dim, 4 * 16), n, 4 * 16))
    enc = [encoders.clip_l(77, projection=True), encoders.openclip_bigg(77), encoders.t5_xxl(t - 77)]
    return spec(f, g, blocks, enc, vae.sd_decoder(16, g.lh, g.lw, post_quant=False))


# ---------------------------------------------------------------- Flux, Open-Sora 2.0
def _flux(f, g: Grid):
    """FluxTransformer2DModel: 2x2-packed 64-ch latent tokens, RMS qk-norms (128), RoPE
    on image and text, guidance embedder only on flux.1-dev. Open-Sora 2.0 is this
    network on video tokens (frames x packed rows x cols) without guidance embedding,
    as models.csv counts it (its optional i2v cond_embed linear is left out)."""
    dim, heads, hd, n, t = 3072, 24, 128, g.tokens, g.text
    embed = [linear("x_embedder", n, 64, dim), *timestep_mlp("time_embed", 256, dim)]
    if f.id == "flux.1-dev":
        embed += timestep_mlp("guidance_embed", 256, dim)
    embed += [*timestep_mlp("pooled_text_embed", 768, dim),
              linear("context_embedder", t, T5_DIM, dim, text=True)]
    blocks = [block("embed", "embed", embed, n + t, dim)]
    double, single = _double(n, t, dim, heads, hd, qk=hd, rope=True), _single(n, t, dim, heads, hd)
    blocks += [block(f"double{i}", "transformer", double, n + t, dim) for i in range(19)]
    blocks += [block(f"single{i}", "transformer", single, n + t, dim) for i in range(38)]
    blocks.append(block("final", "head", _head(n, dim, 64), n, 64))
    if f.id == "opensora-2.0":   # Open-Sora 2.0 decodes with the HunyuanVideo VAE
        return spec(f, g, blocks, [encoders.t5_xxl(t), encoders.clip_l(77)],
                    vae.hunyuan_decoder(g.lf, g.lh, g.lw))
    return spec(f, g, blocks, [encoders.clip_l(77), encoders.t5_xxl(t)],
                vae.sd_decoder(16, g.lh, g.lw, post_quant=False))


# ---------------------------------------------------------------- HunyuanVideo
def _token_refiner(t: int, dim: int) -> list:
    """HunyuanVideoTokenRefiner: timestep + mean-pooled-text embedding, proj_in 4096 -> 3072,
    two refiner blocks (LayerNorm, self-attention over the text, SiLU MLP, gated by an
    adaptive norm of the embedding)."""
    ops = [*timestep_mlp("refiner.time_embed", 256, dim), *timestep_mlp("refiner.text_embed", T5_DIM, dim),
           linear("refiner.proj_in", t, T5_DIM, dim, text=True)]
    for i in range(2):
        p = f"refiner{i}"
        tokens = [norm(f"{p}.norm1", t, dim, params=2 * dim), *qkv(f"{p}.attn", t, dim, dim),
                  attention(f"{p}.attn.sdpa", t, 24, 128), linear(f"{p}.attn.to_out", t, dim, dim, "row"),
                  ew(f"{p}.gate_add1", t, dim, 3), norm(f"{p}.norm2", t, dim, params=2 * dim),
                  *mlp(f"{p}.ff", t, dim, 4 * dim), ew(f"{p}.gate_add2", t, dim, 3)]
        ops += _modulation(f"{p}.norm_out", dim, 2 * dim) + [o.scaled(text=True) for o in tokens]
    return ops


def _hunyuanvideo(f, g: Grid):
    """HunyuanVideo T2V: Conv3d (1,2,2) patch embed, token refiner on the LLaMA hidden
    states, timestep + pooled CLIP + guidance embeddings, then Flux-like 20 double- and
    40 single-stream blocks (3072, 24 x 128, RMS qk-norm, 3D RoPE)."""
    dim, heads, hd, n, t = 3072, 24, 128, g.tokens, g.text
    embed = [conv("x_embedder", n, 16, dim, 4, in_tokens=4 * n), *_token_refiner(t, dim),
             *timestep_mlp("time_embed", 256, dim), *timestep_mlp("pooled_text_embed", 768, dim),
             *timestep_mlp("guidance_embed", 256, dim)]
    blocks = [block("embed", "embed", embed, n + t, dim)]
    double, single = _double(n, t, dim, heads, hd, qk=hd, rope=True), _single(n, t, dim, heads, hd)
    blocks += [block(f"double{i}", "transformer", double, n + t, dim) for i in range(20)]
    blocks += [block(f"single{i}", "transformer", single, n + t, dim) for i in range(40)]
    blocks.append(block("final", "head", _head(n, dim, 64), n, 64))
    # the LLaMA sees the prompt inside a 95-token template that is cropped afterwards
    return spec(f, g, blocks, [encoders.llama3_8b(t + 95), encoders.clip_l(77)],
                vae.hunyuan_decoder(g.lf, g.lh, g.lw))


# ---------------------------------------------------------------- Mochi
def _mochi(f, g: Grid):
    """Mochi-1 AsymmDiT: 48 blocks, image stream 3072 (24 x 128), text stream 1536,
    no biases except the attention outputs, RMS qk-norms (128), SwiGLU MLPs of
    (4 x 2 / 3) width, modulated RMSNorms without weights. The embedding attention-pools
    the T5 tokens for the conditioning vector; RoPE frequencies are a learned
    (3 -> 24 x 64) projection of each token's (t, y, x) position."""
    dim, tdim, heads, hd, n, t = 3072, 1536, 24, 128, g.tokens, g.text
    embed = [conv("patch_embed", n, 12, dim, 4, in_tokens=4 * n), *timestep_mlp("time_embed", 256, dim),
             linear("pooler.to_kv", t + 1, T5_DIM, 2 * T5_DIM, text=True),
             linear("pooler.to_q", 1, T5_DIM, T5_DIM, text=True),
             attention("pooler.sdpa", 1, 8, 512, kv=0, ctx=t + 1, text=True),
             linear("pooler.to_out", 1, T5_DIM, dim, text=True),
             linear("caption_proj", t, T5_DIM, tdim, text=True),
             linear("rope.freqs", n, 3, heads * hd // 2, bias=False)]
    txt_rows = (t + 1) // 2   # text rows are half as wide as image rows
    blocks = [block("embed", "embed", embed, n + txt_rows, dim)]
    # bias=False: only the attention outputs keep biases; the last block's context norm
    # is a continuous one (one 1536-wide scale) and it emits no text
    kw = dict(tdim=tdim, mod=4, qk=hd, rope=True, bias=False, ffn=8192, ffn_txt=4096, gated=True)
    layer = _double(n, t, dim, heads, hd, **kw)
    last = _double(n, t, dim, heads, hd, mod_txt=1, txt_out=False, **kw)
    blocks += [block(f"block{i}", "transformer", layer, n + txt_rows, dim) for i in range(47)]
    blocks.append(block("block47", "transformer", last, n, dim))
    blocks.append(block("final", "head", _head(n, dim, 4 * 12), n, 4 * 12))
    return spec(f, g, blocks, [encoders.t5_xxl(t)], vae.mochi_decoder(g.lf, g.lh, g.lw))


def build(f, g: Grid):
    if f.id.startswith("sd3"):
        return _sd3(f, g)
    if f.id.startswith("flux") or f.id == "opensora-2.0":
        return _flux(f, g)
    return {"hunyuanvideo": _hunyuanvideo, "mochi-1": _mochi}[f.id](f, g)
