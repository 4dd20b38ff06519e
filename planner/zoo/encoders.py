"""Text (and image-conditioning) encoders, run once per prompt before denoising.

Each encoder is a stack of standard transformer layers built from its transformers config.json;
params add up to the sizes in models.csv's text_encoders column and FLOPs come out as
~2 x params x tokens plus attention. Embedding tables are gathers (params, no FLOPs).
"""
from __future__ import annotations

from planner.spec import Op, Component
from planner.zoo.hub import Cfg, ZooError
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


def _component(name: str, ops: list[Op]) -> Component:
    return Component(name, tuple(ops), sum(o.params for o in ops))


# Defaults of the transformers config classes for the keys read here (transformers 5.23:
# CLIPTextConfig, CLIPVisionConfig, T5Config, UMT5Config, BertConfig, LlamaConfig); files
# saved by transformers keep these keys, the defaults only serve older or hand-written ones.
CLIP_TEXT_DEFAULTS = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "projection_dim": 512,
                      "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77}
CLIP_VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "projection_dim": 512,
                        "num_hidden_layers": 12, "num_attention_heads": 12, "num_channels": 3, "image_size": 224,
                        "patch_size": 32}
T5_DEFAULTS = {"vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_heads": 8,
               "relative_attention_num_buckets": 32, "feed_forward_proj": "relu"}
UMT5_DEFAULTS = T5_DEFAULTS | {"vocab_size": 250112, "num_layers": 8, "num_heads": 6, "d_ff": 1024,
                               "feed_forward_proj": "gated-gelu"}
BERT_DEFAULTS = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2}
LLAMA_DEFAULTS = {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "num_key_value_heads": None, "head_dim": None, "attention_bias": False,
                  "mlp_bias": False}


def clip_text(cfg: Cfg, tokens: int, name: str, projection: bool) -> Component:
    """CLIPTextModel[WithProjection]: token + learned positions, pre-LN layers with biases and
    a GELU MLP, final LN, and (WithProjection) the text projection of the pooled (EOS) token."""
    dim = cfg["hidden_size"]
    ops = [lookup("tok_embed", tokens, dim, cfg["vocab_size"]),
           lookup("pos_embed", tokens, dim, cfg["max_position_embeddings"])]
    ops += _layers(tokens, layers=cfg["num_hidden_layers"], dim=dim, heads=cfg["num_attention_heads"],
                   head_dim=dim // cfg["num_attention_heads"], ffn=cfg["intermediate_size"], bias=True)
    ops.append(norm("final_norm", tokens, dim, params=2 * dim))
    if projection:
        ops.append(linear("text_projection", 1, dim, cfg["projection_dim"], bias=False))
    return _component(name, ops)


def t5(cfg: Cfg, tokens: int, name: str, per_layer_bias: bool) -> Component:
    """T5 v1.1 family encoder (T5EncoderModel, UMT5EncoderModel): no biases, RMSNorm,
    gated-GELU MLP (wi_0, wi_1, wo), relative position bias (buckets x heads) in layer 0,
    or in every layer (umT5)."""
    heads, dim = cfg["num_heads"], cfg["d_model"]
    gated = str(cfg["feed_forward_proj"]).startswith("gated")
    table = cfg["relative_attention_num_buckets"] * heads
    ops = [lookup("tok_embed", tokens, dim, cfg["vocab_size"])]
    ops += _layers(tokens, layers=cfg["num_layers"], dim=dim, heads=heads, head_dim=cfg["d_kv"], ffn=cfg["d_ff"],
                   bias=False, gated=gated, rms=True, rel_bias=table if per_layer_bias else 0)
    if not per_layer_bias:
        ops.append(ew("rel_pos_bias", tokens, heads, 2, params=table))
    ops.append(norm("final_norm", tokens, dim, params=dim))
    return _component(name, ops)


def bert(cfg: Cfg, tokens: int, name: str) -> Component:
    """BertModel with its pooler (HunyuanDiT's bilingual CLIP text tower): token, position and
    token-type embeddings, embedding LN, post-LN layers with biases, pooler."""
    dim = cfg["hidden_size"]
    ops = [lookup("tok_embed", tokens, dim, cfg["vocab_size"]),
           lookup("pos_embed", tokens, dim, cfg["max_position_embeddings"]),
           lookup("type_embed", tokens, dim, cfg["type_vocab_size"]), norm("embed_norm", tokens, dim, params=2 * dim)]
    ops += _layers(tokens, layers=cfg["num_hidden_layers"], dim=dim, heads=cfg["num_attention_heads"],
                   head_dim=dim // cfg["num_attention_heads"], ffn=cfg["intermediate_size"], bias=True, post_norm=True)
    ops.append(linear("pooler", 1, dim, dim))
    return _component(name, ops)


def llama(cfg: Cfg, tokens: int, name: str) -> Component:
    """LlamaModel (no LM head): RMSNorm, GQA attention, SwiGLU MLP, no biases. All layers run
    (HunyuanVideo reads the 3rd-from-last hidden state, but the model computes every layer)."""
    dim, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    if cfg["attention_bias"] or cfg["mlp_bias"]:
        raise ZooError(f"{cfg.where}: attention_bias / mlp_bias are not supported (accepted: false)")
    ops = [lookup("tok_embed", tokens, dim, cfg["vocab_size"])]
    ops += _layers(tokens, layers=cfg["num_hidden_layers"], dim=dim, heads=heads,
                   head_dim=cfg["head_dim"] or dim // heads, ffn=cfg["intermediate_size"], bias=False, gated=True,
                   kv_heads=cfg["num_key_value_heads"] or heads, rms=True)
    ops.append(norm("final_norm", tokens, dim, params=dim))
    return _component(name, ops)


def clip_vision(cfg: Cfg, name: str) -> Component:
    """CLIPVisionModelWithProjection (SVD's conditioning-image encoder): patch conv, class
    token + learned positions, pre-LN, layers, post-LN of the class token, visual projection."""
    dim, size, patch = cfg["hidden_size"], cfg["image_size"], cfg["patch_size"]
    patches = (size // patch) ** 2
    tokens = patches + 1
    ops = [conv("patch_embed", patches, cfg["num_channels"], dim, patch * patch, in_tokens=size * size, bias=False),
           lookup("class_pos_embed", tokens, dim, 1 + tokens), norm("pre_norm", tokens, dim, params=2 * dim)]
    ops += _layers(tokens, layers=cfg["num_hidden_layers"], dim=dim, heads=cfg["num_attention_heads"],
                   head_dim=dim // cfg["num_attention_heads"], ffn=cfg["intermediate_size"], bias=True)
    ops += [norm("post_norm", 1, dim, params=2 * dim),
            linear("visual_projection", 1, dim, cfg["projection_dim"], bias=False)]
    return _component(name, ops)


# transformers class -> (defaults, builder(cfg, tokens, name)); image encoders ignore tokens
ENCODERS = {
    "CLIPTextModel": (CLIP_TEXT_DEFAULTS, lambda c, t, n: clip_text(c, t, n, projection=False)),
    "CLIPTextModelWithProjection": (CLIP_TEXT_DEFAULTS, lambda c, t, n: clip_text(c, t, n, projection=True)),
    "T5EncoderModel": (T5_DEFAULTS, lambda c, t, n: t5(c, t, n, per_layer_bias=False)),
    "UMT5EncoderModel": (UMT5_DEFAULTS, lambda c, t, n: t5(c, t, n, per_layer_bias=True)),
    "BertModel": (BERT_DEFAULTS, bert),
    "LlamaModel": (LLAMA_DEFAULTS, llama),
    "CLIPVisionModelWithProjection": (CLIP_VISION_DEFAULTS, lambda c, t, n: clip_vision(c, n)),
}
