"""Op and block helpers shared by every model family.

Every family module describes its layers with these few functions so that a linear
layer, an attention call or a norm is written exactly once. The conventions follow
planner.spec.Op:

* GEMM / CONV `tokens` are all rows (or output positions) of one sample; ATTN `tokens`
  and `kv_tokens` are one group's sequence, `groups` the independent sequences.
* params include biases; norms count their affine weights.
* FLOPs are derived by Op itself (2*M*N*K for GEMMs, 2*out*Cin*Cout*taps for convs,
  QK^T + PV for attention), which is the convention of torch's FlopCounterMode.
* tp_role: "col" for projections that open a tensor-parallel region (QKV, MLP up/gate,
  first conv of a ResNet), "row" for the ones that close it (attention out, MLP down,
  second conv), "rep" for everything a Megatron split leaves whole.
"""
from __future__ import annotations

from dataclasses import dataclass

from planner.spec import Block, EagerInventory, ModelSpec, Op, OpKind, SplitConvention


# ---------------------------------------------------------------- single ops
def linear(name: str, tokens: int, fin: int, fout: int, role: str = "rep", *,
           bias: bool = True, text: bool = False) -> Op:
    """nn.Linear (or a 1x1 conv) applied to `tokens` rows."""
    return Op(name, OpKind.GEMM, tokens, in_features=fin, out_features=fout,
              params=fin * fout + (fout if bias else 0), text=text, tp_role=role)


def conv(name: str, tokens: int, cin: int, cout: int, taps: int, role: str = "rep", *,
         in_tokens: int = 0, bias: bool = True) -> Op:
    """A k x k (x k) convolution with `taps` = kernel volume producing `tokens` positions."""
    return Op(name, OpKind.CONV, tokens, in_features=cin, out_features=cout, taps=taps,
              in_tokens=in_tokens or tokens, params=taps * cin * cout + (cout if bias else 0),
              tp_role=role)


def attention(name: str, tokens: int, heads: int, head_dim: int, *, kv: int | None = None,
              ctx: int = 0, q_ctx: int = 0, groups: int = 1, text: bool = False) -> Op:
    """Fused SDPA. Self-attention by default (kv = tokens); cross-attention passes kv=0
    and ctx = text keys; joint attention passes q_ctx = ctx = text tokens. text=True for
    attention that runs on the text alone (attention pooling, text refiners)."""
    return Op(name, OpKind.ATTN, tokens, heads=heads, head_dim=head_dim,
              kv_tokens=tokens if kv is None else kv, ctx_tokens=ctx, q_ctx=q_ctx,
              groups=groups, text=text, tp_role="col")


def norm(name: str, tokens: int, width: int, *, params: int = 0, text: bool = False) -> Op:
    """Layer / group / RMS norm over `width` channels (affine weights in `params`)."""
    return Op(name, OpKind.NORM, tokens, width=width, tensors=2, params=params, text=text)


def ew(name: str, tokens: int, width: int, tensors: int = 2, *, params: int = 0,
       text: bool = False) -> Op:
    """Elementwise op: activation (2 tensors), residual add or gated add (3), modulation."""
    return Op(name, OpKind.ELEMWISE, tokens, width=width, tensors=tensors, params=params,
              text=text)


def lookup(name: str, rows: int, width: int, table: int) -> Op:
    """Embedding-table gather (vocabulary, class labels, learned positions): no FLOPs,
    `table` rows of weights."""
    return Op(name, OpKind.ELEMWISE, rows, width=width, tensors=2, params=table * width)


# ---------------------------------------------------------------- composites
def mlp(prefix: str, tokens: int, dim: int, hidden: int, *, gated: bool = False,
        bias: bool = True, text: bool = False) -> list[Op]:
    """Feed-forward: up (col) -> activation -> down (row). `gated` fuses the gate into
    the up projection (GEGLU/SwiGLU as diffusers writes them: dim -> 2*hidden)."""
    up = hidden * (2 if gated else 1)
    return [linear(f"{prefix}.up", tokens, dim, up, "col", bias=bias, text=text),
            ew(f"{prefix}.act", tokens, hidden, 3 if gated else 2, text=text),
            linear(f"{prefix}.down", tokens, hidden, dim, "row", bias=bias, text=text)]


def qkv(prefix: str, tokens: int, dim: int, inner: int, *, bias: bool = True,
        text: bool = False, names: str = "qkv") -> list[Op]:
    """Separate Q, K, V projections (column parallel: each rank keeps whole heads)."""
    return [linear(f"{prefix}.to_{c}", tokens, dim, inner, "col", bias=bias, text=text)
            for c in names]


def timestep_mlp(prefix: str, fin: int, dim: int, fout: int | None = None,
                 rows: int = 1) -> list[Op]:
    """diffusers TimestepEmbedding / PixArtAlphaTextProjection on pooled vectors:
    linear -> SiLU -> linear, on `rows` (usually 1) rows; replicated under TP."""
    return [linear(f"{prefix}.linear_1", rows, fin, dim),
            ew(f"{prefix}.act", rows, dim),
            linear(f"{prefix}.linear_2", rows, dim, fout or dim)]


def qk_norms(prefix: str, tokens: int, width: int, params_each: int, *,
             text: bool = False, added: bool = False) -> list[Op]:
    """RMS/Layer norms of queries and keys (width = channels normalised per token)."""
    tag = "added_" if added else ""
    return [norm(f"{prefix}.norm_{tag}q", tokens, width, params=params_each, text=text),
            norm(f"{prefix}.norm_{tag}k", tokens, width, params=params_each, text=text)]


def with_text(ops, t: int) -> list[Op]:
    """Shared-weight layers that run on image and text rows alike (Flux/HunyuanVideo
    single-stream blocks, CogVideoX): each GEMM/norm/elementwise op is kept for the image
    rows and followed by a copy for the `t` text rows, flagged text and without params
    (the weights are the image op's), so sequence strategies split only the image rows."""
    out = []
    for o in ops:
        assert o.kind not in (OpKind.ATTN, OpKind.CONV), o.name
        out += [o, o.scaled(name=f"{o.name}.txt", tokens=t, params=0, text=True)]
    return out


def block(name: str, kind: str, ops, tokens: int, hidden: int, skip: int = 0) -> Block:
    return Block(name, kind, tuple(ops), tokens, hidden, skip)


# ---------------------------------------------------------------- geometry
@dataclass(frozen=True, slots=True)
class Grid:
    """Pixel and latent sizes of one scenario, already validated by zoo.build."""

    height: int        # pixels
    width: int
    frames: int        # pixel frames (1 for images)
    lf: int            # latent frames
    lh: int            # latent rows
    lw: int            # latent cols
    patch: int         # spatial patch on the latent
    text: int          # text tokens the denoiser attends to

    @property
    def rows(self) -> int:
        return self.lh // self.patch

    @property
    def cols(self) -> int:
        return self.lw // self.patch

    @property
    def per_frame(self) -> int:
        """Tokens of one latent frame after patchify."""
        return self.rows * self.cols

    @property
    def tokens(self) -> int:
        """Image/video-stream tokens of one sample."""
        return self.lf * self.per_frame


# ---------------------------------------------------------------- attention layers
def self_attn(prefix: str, seq: int, dim: int, heads: int, head_dim: int, *, groups: int = 1,
              bias: bool = True, out_bias: bool = True, qk_norm: int = 0, rope: bool = False,
              fused: bool = False) -> list[Op]:
    """Q/K/V projections, optional per-head q/k norms (`qk_norm` = weights per norm) and
    rotary embedding, SDPA over `groups` sequences of `seq` tokens, output projection."""
    rows, inner = seq * groups, heads * head_dim
    if fused:   # one [dim -> 3*inner] weight (Open-Sora, timm-style Attention)
        ops = [linear(f"{prefix}.qkv", rows, dim, 3 * inner, "col", bias=bias)]
    else:
        ops = qkv(prefix, rows, dim, inner, bias=bias)
    if qk_norm:
        ops += qk_norms(prefix, rows, inner, qk_norm)
    if rope:
        ops.append(ew(f"{prefix}.rope", rows, 2 * inner, 2))
    ops += [attention(f"{prefix}.sdpa", seq, heads, head_dim, groups=groups),
            linear(f"{prefix}.to_out", rows, inner, dim, "row", bias=out_bias)]
    return ops


def cross_attn(prefix: str, seq: int, dim: int, heads: int, head_dim: int, ctx: int,
               ctx_dim: int, *, groups: int = 1, ctx_rows: int | None = None, bias: bool = True,
               qk_norm: int = 0, fused_kv: bool = False, ctx_text: bool = True) -> list[Op]:
    """Queries from the image stream, keys/values projected from `ctx` text tokens of
    width ctx_dim. ctx_rows = rows the K/V projections actually run on (pipelines that
    repeat the prompt per frame project it once per frame). ctx_text=False when those
    rows follow the image positions (SVD broadcasts its image embedding to each one)."""
    rows, inner, crow = seq * groups, heads * head_dim, ctx if ctx_rows is None else ctx_rows
    ops = [linear(f"{prefix}.to_q", rows, dim, inner, "col", bias=bias)]
    if fused_kv:
        ops.append(linear(f"{prefix}.to_kv", crow, ctx_dim, 2 * inner, "col", bias=bias, text=ctx_text))
    else:
        ops += qkv(prefix, crow, ctx_dim, inner, bias=bias, text=ctx_text, names="kv")
    if qk_norm:
        ops += [norm(f"{prefix}.norm_q", rows, inner, params=qk_norm),
                norm(f"{prefix}.norm_k", crow, inner, params=qk_norm, text=ctx_text)]
    ops += [attention(f"{prefix}.sdpa", seq, heads, head_dim, kv=0, ctx=ctx, groups=groups),
            linear(f"{prefix}.to_out", rows, inner, dim, "row", bias=bias)]
    return ops


def spec(facts, grid: Grid, blocks, encoders, vae, split: SplitConvention = SplitConvention(),
         eager: EagerInventory = EagerInventory()) -> ModelSpec:
    """Assemble the ModelSpec. `tokens` is read off the ops: the longest image/video-stream
    self-attention sequence. That is frames x rows x cols for full-attention models, the
    64x64 level for SDXL (its 128x128 level has no attention) and one frame's positions
    for factorised models (Latte, STDiT3, SVD, AnimateDiff)."""
    blocks = tuple(blocks)
    longest = max((o.tokens for b in blocks for o in b.self_attn_ops() if not o.text), default=grid.tokens)
    return ModelSpec(facts=facts, blocks=blocks, text_encoders=tuple(encoders), vae_decoder=vae,
                     latent_shape=(facts.latent_channels, grid.lf, grid.lh, grid.lw), tokens=longest,
                     split=split, eager=eager)
