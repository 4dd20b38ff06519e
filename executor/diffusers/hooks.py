"""Module hooks that route the layers of a diffusers model into the executor's ctx
(executor/context.py), so that every strategy runs on the real classes unchanged.

Layers of a diffusers model do not know about ranks. The adapters (one module per class
family) run the model block by block; before a block runs, its Binding holds the ctx of
the current call, and diffusers ModelHooks (diffusers/hooks/hooks.py, registered with
HookRegistry) on the model's modules ask that ctx:

    Attention modules     AttentionHook: the module's own processor runs as usual, and
                          its scaled-dot-product call is handed to ctx.attention (with the
                          text part of a joint sequence as `text`). The hook sits on the
                          Attention module, not in a wrapped processor: Attention.forward
                          drops keyword arguments its processor does not name, and the
                          processor (QK norms, RoPE, the text/image concatenation order)
                          must stay the real one.
    3x3 Conv2d (pad 1)    ConvHook: rows above/below from ctx.halo, columns zero-padded;
                          row-parallel convs sum their partial outputs over TP first
    GroupNorm             GroupNormHook: statistics of the whole image (ctx.group_norm); a 5D
                          [B, C, F, rows, W] input (video U-Nets' norms over frames and rows)
                          folds its frames into the row width, so rows stay the split axis
    row-parallel Linear   RowLinearHook: ctx.tp_reduce of the partial product, then the bias
    row-parallel Conv3d   RowConv3dHook: the same for SVD's (3, 1, 1) temporal convs
    RMS norm across heads NormAcrossHeadsHook: Wan's q/k RMSNorm over all heads, its sum of
                          squares all-reduced over TP when the heads are split

The scaled-dot-product call is found with a torch function mode that is active only while
an Attention module's forward runs (torch.overrides.TorchFunctionMode): every processor
ends in torch.nn.functional.scaled_dot_product_attention, directly or through diffusers'
attention dispatcher (native backend). Serially the ctx is the identity, so the model
computes what its own forward computes (tests/test_executor_diffusers.py checks it).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from diffusers.hooks import HookRegistry, ModelHook

HOOK = "paradiff"


class Binding:
    """The ctx the hooks of one model ask, set by the block that runs now."""

    def __init__(self):
        self.ctx = None
        self.text_tokens = 0       # text tokens in front of a single-stream joint sequence

    @contextmanager
    def use(self, ctx, text_tokens: int = 0):
        old = self.ctx, self.text_tokens
        self.ctx, self.text_tokens = ctx, text_tokens
        try:
            yield
        finally:
            self.ctx, self.text_tokens = old


# ---------------------------------------------------------------- attention
def _sdpa_args(args, kwargs):
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
    got = dict(zip(names, args)) | kwargs
    return got["query"], got["key"], got["value"], got


class _Route(TorchFunctionMode):
    """While one Attention module runs: its scaled-dot-product attention goes to ctx.

    image_tokens: for joint layouts, the image tokens of the call, so the text is the rest of
    the sequence (Mochi attends to each sample's valid prompt tokens only, fewer than the
    padded encoder_hidden_states). A processor that attends once per sample (Mochi) makes
    several calls: each after the first gets its own layer key, so that per-layer state of
    a strategy (stale K/V of DistriFusion and PipeFusion) stays per sample."""

    def __init__(self, ctx, mod, text: str | None, text_tokens: int, image_tokens: int | None = None):
        super().__init__()
        self.ctx, self.mod, self.text, self.t, self.n = ctx, mod, text, text_tokens, image_tokens
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        q, k, v, got = _sdpa_args(args, kwargs)
        scale = got.get("scale")
        if (got.get("attn_mask") is not None or got.get("is_causal") or got.get("dropout_p", 0.0)
                or (scale is not None and not math.isclose(scale, q.shape[-1] ** -0.5, rel_tol=1e-6))):
            raise NotImplementedError(f"{type(self.mod).__name__} {self.mod.lid}: a masked, causal or rescaled "
                                      f"attention over the split sequence is not supported")
        mod = self.mod if not self.calls else SimpleNamespace(lid=f"{self.mod.lid}#{self.calls}")
        self.calls += 1
        if self.text is None:
            return self.ctx.attention(mod, q, k, v)
        n = q.shape[2]
        t = self.t if self.n is None else n - self.n
        if self.text == "first":
            text, img = (tuple(x[:, :, :t] for x in (q, k, v)), tuple(x[:, :, t:] for x in (q, k, v)))
        else:
            text, img = (tuple(x[:, :, n - t:] for x in (q, k, v)), tuple(x[:, :, :n - t] for x in (q, k, v)))
        o, to = self.ctx.attention(mod, *img, text=text)
        return torch.cat([to, o] if self.text == "first" else [o, to], dim=2)


class AttentionHook(ModelHook):
    """text: None (self-attention of the split stream), "first" / "last" (joint
    attention whose processor puts the encoder_hidden_states tokens before / after the
    image tokens), "prefix" (a single-stream block whose hidden_states start with the
    Binding's text_tokens text tokens)."""

    def __init__(self, binding: Binding, text: str | None):
        super().__init__()
        self.binding, self.text = binding, text

    def new_forward(self, module, *args, **kwargs):
        ctx = self.binding.ctx
        if ctx is None:
            return self.fn_ref.original_forward(*args, **kwargs)
        text, t, n = self.text, 0, None
        if text in ("first", "last"):
            hs = kwargs.get("hidden_states", args[0] if args else None)
            n = hs.shape[1]
        elif text == "prefix":
            text, t = "first", self.binding.text_tokens
        with _Route(ctx, module, text, t, n):
            return self.fn_ref.original_forward(*args, **kwargs)


# ---------------------------------------------------------------- convs, norms, TP
class ConvHook(ModelHook):
    """A Conv2d whose rows may be split: 3x3 padding-1 convs take their boundary rows from
    ctx.halo; row-parallel convs (TP) all-reduce before adding the bias."""

    def __init__(self, binding: Binding):
        super().__init__()
        self.binding = binding

    def new_forward(self, module: nn.Conv2d, x):
        ctx = self.binding.ctx
        if ctx is None:
            return self.fn_ref.original_forward(x)
        halo = module.kernel_size == (3, 3)
        if halo:
            x = ctx.halo(module, x)
        pad = (0, module.padding[1]) if halo else module.padding
        row = getattr(module, "tp_role", "rep") == "row"
        y = F.conv2d(x, module.weight, None if row else module.bias, module.stride, pad, module.dilation, module.groups)
        if row:
            y = ctx.tp_reduce(y)
            if module.bias is not None:
                y = y + module.bias[:, None, None]
        return y


class RowConv3dHook(ModelHook):
    """A row-parallel Conv3d (SVD's temporal ResNets under TP): partial outputs summed, bias once.
    Its (3, 1, 1) kernel spans frames only, so a row split needs no halo."""

    def __init__(self, binding: Binding):
        super().__init__()
        self.binding = binding

    def new_forward(self, module: nn.Conv3d, x):
        ctx = self.binding.ctx
        if ctx is None or ctx.tp is None or ctx.tp.size == 1:
            return self.fn_ref.original_forward(x)
        y = ctx.tp_reduce(F.conv3d(x, module.weight, None, module.stride, module.padding, module.dilation,
                                   module.groups))
        return y if module.bias is None else y + module.bias[:, None, None, None]


class GroupNormHook(ModelHook):
    def __init__(self, binding: Binding):
        super().__init__()
        self.binding = binding

    def new_forward(self, module: nn.GroupNorm, x):
        ctx = self.binding.ctx
        if ctx is None:
            return self.fn_ref.original_forward(x)
        if x.dim() == 5:      # [B, C, F, rows, W] (a motion module's norm over frames and rows):
            b, c, f, h, w = x.shape     # the frames join each row's width, so rows stay the split axis
            y = ctx.group_norm(module, x.transpose(2, 3).reshape(b, c, h, f * w))
            return y.view(b, c, h, f, w).transpose(2, 3)
        return ctx.group_norm(module, x)


class RowLinearHook(ModelHook):
    """Row-parallel projection: the partial products of every TP rank summed, bias once."""

    def __init__(self, binding: Binding):
        super().__init__()
        self.binding = binding

    def new_forward(self, module: nn.Linear, x):
        ctx = self.binding.ctx
        if ctx is None or ctx.tp is None or ctx.tp.size == 1:
            return self.fn_ref.original_forward(x)
        y = ctx.tp_reduce(F.linear(x, module.weight))
        return y if module.bias is None else y + module.bias


class NormAcrossHeadsHook(ModelHook):
    """RMSNorm over all heads' channels (Wan's qk norm) when TP holds 1/t of the heads:
    the mean square is summed over the TP group."""

    def __init__(self, binding: Binding):
        super().__init__()
        self.binding = binding

    def new_forward(self, module, x):
        ctx = self.binding.ctx
        if ctx is None or ctx.tp is None or ctx.tp.size == 1:
            return self.fn_ref.original_forward(x)
        sq = ctx.tp_reduce(x.float().pow(2).sum(-1, keepdim=True))
        y = x.float() * torch.rsqrt(sq / (x.shape[-1] * ctx.tp.size) + module.eps)
        return (y * module.weight.float()).to(x.dtype) if module.weight is not None else y.to(x.dtype)


# ---------------------------------------------------------------- attaching
def _register(module: nn.Module, hook: ModelHook) -> None:
    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, HOOK)


def attach(net: nn.Module, binding: Binding, attention: dict[str, str | None], across_heads=()) -> None:
    """Hook the denoiser `net`: `attention` maps Attention module names to their layout
    (AttentionHook.text); unnamed Attention modules (cross-attention to the whole text,
    attention inside a frame) run unhooked. Every 3x3 / row-parallel Conv2d, GroupNorm
    and row-parallel Linear is hooked; `across_heads` names Wan-style qk norms."""
    mods = dict(net.named_modules())
    for name, layout in attention.items():
        _register(mods[name], AttentionHook(binding, layout))
    for name in across_heads:
        _register(mods[name], NormAcrossHeadsHook(binding))
    for m in mods.values():
        if isinstance(m, nn.Conv2d) and (m.kernel_size == (3, 3) or getattr(m, "tp_role", "rep") == "row"):
            if m.kernel_size == (3, 3) and (m.padding != (1, 1) or m.dilation != (1, 1)):
                raise NotImplementedError(f"conv {m.lid}: only padding-1 3x3 convs can take halo rows")
            _register(m, ConvHook(binding))
        elif isinstance(m, nn.GroupNorm):
            _register(m, GroupNormHook(binding))
        elif isinstance(m, nn.Conv3d) and getattr(m, "tp_role", "rep") == "row":
            if m.kernel_size[1:] != (1, 1):
                raise NotImplementedError(f"conv {m.lid}: a Conv3d with a spatial kernel cannot take a row split")
            _register(m, RowConv3dHook(binding))
        elif isinstance(m, nn.Linear) and getattr(m, "tp_role", "rep") == "row":
            _register(m, RowLinearHook(binding))
