"""Text (and image-conditioning) encoders, run once per prompt before denoising.

Each encoder is a stack of standard transformer layers built from its published config;
params add up to the sizes in models.csv's text_encoders column and FLOPs come out as
~2 x params x tokens plus attention. Embedding tables are gathers (params, no FLOPs).
Stages are immutable, so each constructor is cached by its token count.
"""
from __future__ import annotations

from functools import lru_cache

from planner.spec import Op, Stage
from planner.zoo.layers import attention, conv, ew, linear, lookup, mlp, norm


def _layers(tokens: int, *, layers: int, dim: int, heads: int, head_dim: int, ffn: int,
            bias: bool, gated: bool = False, kv_heads: int | None = None, rms: bool = False,
            rel_bias: int = 0, post_norm: bool = False) -> list[Op]:
    """`layers` identical encoder layers on `tokens` tokens (pre-norm unless post_norm, as
    BERT); the layers are alike, so one op tuple is repeated. rms: RMSNorm (weight only)
    instead of LayerNorm; rel_bias: per-layer relative position bias table (umT5)."""
    npar = dim if rms else 2 * dim
    inner, kv = heads * head_dim, (kv_heads or heads) * head_dim
    n1 = norm("layer.norm1", tokens, dim, params=npar)
    n2 = norm("layer.norm2", tokens, dim, params=npar)
    attn = [linear("layer.q", tokens, dim, inner, "col", bias=bias),
            linear("layer.k", tokens, dim, kv, "col", bias=bias),
            linear("layer.v", tokens, dim, kv, "col", bias=bias),
            attention("layer.sdpa", tokens, heads, head_dim),
            linear("layer.o", tokens, inner, dim, "row", bias=bias),
            ew("layer.add1", tokens, dim, 3, params=rel_bias)]
    ffn_ops = [*mlp("layer.mlp", tokens, dim, ffn, gated=gated, bias=bias), ew("layer.add2", tokens, dim, 3)]
    # BERT normalises after each residual add
    layer = [*attn, n1, *ffn_ops, n2] if post_norm else [n1, *attn, n2, *ffn_ops]
    return layer * layers


def _stage(name: str, ops: list[Op]) -> Stage:
    return Stage(name, tuple(ops), sum(o.params for o in ops))


def clip_text(name: str, tokens: int, *, layers: int, dim: int, heads: int,
              projection: int = 0) -> Stage:
    """OpenAI / OpenCLIP text towers as diffusers loads them (CLIPTextModel[WithProjection]):
    token + 77 learned positions, pre-LN layers with biases and 4x GELU MLP, final LN,
    optional text projection of the pooled (EOS) token."""
    ops = [lookup("tok_embed", tokens, dim, 49408), lookup("pos_embed", tokens, dim, 77)]
    ops += _layers(tokens, layers=layers, dim=dim, heads=heads, head_dim=dim // heads,
                   ffn=4 * dim, bias=True)
    ops.append(norm("final_norm", tokens, dim, params=2 * dim))
    if projection:
        ops.append(linear("text_projection", 1, dim, projection, bias=False))
    return _stage(name, ops)


@lru_cache(maxsize=32)
def clip_l(tokens: int = 77, projection: bool = False) -> Stage:
    """CLIP ViT-L/14 text encoder, 123M (123.7M with the SD3/SDXL projection)."""
    return clip_text("CLIP-L text", tokens, layers=12, dim=768, heads=12,
                     projection=768 if projection else 0)


@lru_cache(maxsize=32)
def openclip_h(tokens: int = 77) -> Stage:
    """OpenCLIP ViT-H/14 text tower of SD2.x: 23 of its 24 layers are kept, 340M."""
    return clip_text("OpenCLIP ViT-H text (23 layers)", tokens, layers=23, dim=1024, heads=16)


@lru_cache(maxsize=32)
def openclip_bigg(tokens: int = 77) -> Stage:
    """OpenCLIP ViT-bigG/14 text tower with its 1280x1280 projection, 695M."""
    return clip_text("OpenCLIP ViT-bigG text", tokens, layers=32, dim=1280, heads=20,
                     projection=1280)


def _t5(name: str, tokens: int, *, dim: int, heads: int, ffn: int, vocab: int,
        per_layer_bias: bool) -> Stage:
    """T5 v1.1 family encoder: no biases, RMSNorm, gated-GELU MLP (wi_0, wi_1, wo),
    relative position bias (32 buckets x heads) in layer 0, or in every layer (umT5)."""
    table = 32 * heads
    ops = [lookup("tok_embed", tokens, dim, vocab)]
    ops += _layers(tokens, layers=24, dim=dim, heads=heads, head_dim=64, ffn=ffn, bias=False,
                   gated=True, rms=True, rel_bias=table if per_layer_bias else 0)
    if not per_layer_bias:
        ops.append(ew("rel_pos_bias", tokens, heads, 2, params=table))
    ops.append(norm("final_norm", tokens, dim, params=dim))
    return _stage(name, ops)


@lru_cache(maxsize=32)
def t5_xxl(tokens: int) -> Stage:
    """T5-v1.1-XXL encoder (d 4096, 64 heads x 64, ff 10240, 24 layers), 4.76B."""
    return _t5("T5-v1.1-XXL encoder", tokens, dim=4096, heads=64, ffn=10240, vocab=32128,
               per_layer_bias=False)


@lru_cache(maxsize=32)
def umt5_xxl(tokens: int) -> Stage:
    """umT5-XXL encoder (Wan): T5-XXL dims with a 256384-token vocabulary, 5.68B."""
    return _t5("umT5-XXL encoder", tokens, dim=4096, heads=64, ffn=10240, vocab=256384,
               per_layer_bias=True)


@lru_cache(maxsize=32)
def mt5_xl(tokens: int) -> Stage:
    """mT5-XL encoder (HunyuanDiT): d 2048, 32 heads x 64, ff 5120, 24 layers, 1.67B."""
    return _t5("mT5-XL encoder", tokens, dim=2048, heads=32, ffn=5120, vocab=250112,
               per_layer_bias=False)


@lru_cache(maxsize=32)
def bilingual_clip(tokens: int = 77) -> Stage:
    """HunyuanDiT's bilingual CLIP text tower: a BERT-large (24 x 1024, 16 heads,
    ff 4096, vocab 47020, post-LN) with its pooler, ~352M."""
    dim = 1024
    ops = [lookup("tok_embed", tokens, dim, 47020), lookup("pos_embed", tokens, dim, 512),
           lookup("type_embed", tokens, dim, 2), norm("embed_norm", tokens, dim, params=2 * dim)]
    ops += _layers(tokens, layers=24, dim=dim, heads=16, head_dim=64, ffn=4096, bias=True,
                   post_norm=True)
    ops.append(linear("pooler", 1, dim, dim))
    return _stage("bilingual CLIP text (BERT-large)", ops)


@lru_cache(maxsize=32)
def llama3_8b(tokens: int) -> Stage:
    """HunyuanVideo's MLLM text encoder: the LLaMA-3-8B decoder of LLaVA-LLaMA-3-8B as
    diffusers loads it (LlamaModel, no LM head: 7.50B). All 32 layers run although the
    pipeline reads the 3rd-from-last hidden state. GQA: 32 query / 8 KV heads."""
    dim = 4096
    ops = [lookup("tok_embed", tokens, dim, 128256)]
    ops += _layers(tokens, layers=32, dim=dim, heads=32, head_dim=128, ffn=14336, bias=False,
                   gated=True, kv_heads=8, rms=True)
    ops.append(norm("final_norm", tokens, dim, params=dim))
    return _stage("LLaVA-LLaMA-3-8B (LlamaModel)", ops)


@lru_cache(maxsize=32)
def clip_vit_h_image() -> Stage:
    """SVD's conditioning-image encoder: CLIP ViT-H/14 vision tower at 224 px (256
    patches + CLS = 257 tokens), 32 x 1280, with its 1280->1024 projection, ~632M."""
    dim, tokens = 1280, 257
    ops = [conv("patch_embed", 256, 3, dim, 14 * 14, in_tokens=224 * 224, bias=False),
           lookup("class_pos_embed", tokens, dim, 1 + tokens),
           norm("pre_norm", tokens, dim, params=2 * dim)]
    ops += _layers(tokens, layers=32, dim=dim, heads=16, head_dim=80, ffn=5120, bias=True)
    ops += [norm("post_norm", 1, dim, params=2 * dim),
            linear("visual_projection", 1, dim, 1024, bias=False)]
    return _stage("CLIP ViT-H/14 image encoder", ops)
