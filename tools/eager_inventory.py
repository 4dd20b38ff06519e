"""Measure what eager diffusers launches per denoiser forward, against the zoo's op list.

    python tools/eager_inventory.py [model ids]     # rewrite planner/zoo/configs/<id>/eager.json

The zoo describes each denoiser as one op per fused kernel (what torch.compile runs). Eager
PyTorch launches more kernels and moves more memory-bound bytes: fp32 upcasts of
RMSNorm/LayerNorm/RoPE chains (`_to_copy`, pow, mean, rsqrt, mul), unfused modulation
(`x * (1 + scale) + shift`), `contiguous` copies and concatenations. This tool builds the
real diffusers class from the zoo's shipped config on the meta device (no weights, nothing
computed), runs one forward at the model's default scenario under a TorchDispatchMode and
counts every kernel-launching ATen op (views and allocations excluded, fused attention
counted as one kernel) and the bytes the memory-bound ones read and write. The ratios to
the zoo's own count at the same shape are what the cost model reads in eager mode
(planner/zoo/hub.py EagerInventory): measured data of the model's code, not fitted.
Needs the executor extra (torch, diffusers).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

# ops that launch no kernel (views, metadata, allocation)
NO_KERNEL = {"view", "_unsafe_view", "reshape", "transpose", "permute", "expand", "slice", "select", "unsqueeze",
             "squeeze", "split", "split_with_sizes", "chunk", "unbind", "t", "as_strided", "detach", "alias",
             "lift_fresh", "unflatten", "flatten", "_reshape_alias", "empty", "empty_like", "empty_strided",
             "narrow", "view_as_real", "view_as_complex", "_local_scalar_dense", "is_same_size", "size", "stride",
             "numel", "dim", "sym_size", "sym_stride", "sym_numel", "new_empty", "new_empty_strided", "_to_dense",
             "lift_fresh_copy", "zeros_like", "ones_like", "full_like", "resolve_conj", "resolve_neg"}
MATMUL = {"mm", "addmm", "bmm", "baddbmm", "convolution", "matmul", "linear", "_convolution", "conv2d", "conv3d"}


class Count(TorchDispatchMode):
    """Kernels and memory-bound bytes of the ops dispatched on the meta device."""

    def __init__(self):
        super().__init__()
        self.kernels = Counter()
        self.mem_bytes = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func._overloadpacket.__name__
        outs = [t for t in _tensors(out)]
        if name in NO_KERNEL or not any(t.device.type == "meta" for t in outs):
            return out
        self.kernels[name] += 1
        if name not in MATMUL:
            self.mem_bytes += sum(_bytes(t) for t in _tensors(args) + _tensors(kwargs or {}) + outs)
        return out


def _tensors(x) -> list:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    return []


def _bytes(t: torch.Tensor) -> float:
    return float(t.numel() * t.element_size())


class OneKernelAttention(TorchFunctionMode):
    """F.scaled_dot_product_attention as the one fused kernel it is on a GPU (the meta
    device would decompose it)."""

    def __init__(self, counter: Count):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q = args[0] if args else kwargs["query"]
            v = args[2] if len(args) > 2 else kwargs["value"]
            self.counter.kernels["sdpa"] += 1
            return torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype, device=q.device)
        return func(*args, **kwargs)


# ---------------------------------------------------------------- one forward per class
def _inputs(cls: str, cfg: dict, f, b: int, dt):
    """Keyword arguments of one denoiser forward at the model's default scenario."""
    from planner.zoo.scenario import grid
    g = grid(f, f.default_height, f.default_width, f.default_frames, None)
    r = lambda *s, dtype=dt: torch.randn(*s, dtype=dtype)
    t = torch.full((b,), 500.0, dtype=dt)
    lh, lw, lf, txt = g.lh, g.lw, g.lf, g.text
    if cls == "FluxTransformer2DModel":
        n = (lh // 2) * (lw // 2)
        kw = dict(hidden_states=r(b, n, cfg["in_channels"]), encoder_hidden_states=r(b, txt, cfg["joint_attention_dim"]),
                  pooled_projections=r(b, cfg["pooled_projection_dim"]), timestep=t / 1000,
                  img_ids=torch.zeros(n, 3), txt_ids=torch.zeros(txt, 3))
        if cfg.get("guidance_embeds"):
            kw["guidance"] = torch.full((b,), 3.5, dtype=dt)
        return kw
    if cls == "SD3Transformer2DModel":
        return dict(hidden_states=r(b, cfg["in_channels"], lh, lw), encoder_hidden_states=r(b, txt, cfg["joint_attention_dim"]),
                    pooled_projections=r(b, cfg["pooled_projection_dim"]), timestep=t)
    if cls == "PixArtTransformer2DModel":
        extra = {"resolution": torch.tensor([[f.default_height, f.default_width]] * b, dtype=dt),
                 "aspect_ratio": torch.ones(b, 1, dtype=dt)} if cfg.get("use_additional_conditions") else \
            {"resolution": None, "aspect_ratio": None}
        return dict(hidden_states=r(b, cfg["in_channels"], lh, lw), encoder_hidden_states=r(b, txt, cfg["caption_channels"]),
                    timestep=t, added_cond_kwargs=extra)
    if cls == "DiTTransformer2DModel":
        return dict(hidden_states=r(b, cfg["in_channels"], lh, lw), timestep=t, class_labels=torch.zeros(b, dtype=torch.long))
    if cls == "HunyuanDiT2DModel":
        from diffusers.models.embeddings import get_2d_rotary_pos_embed
        hd = cfg["attention_head_dim"]
        rows, cols = lh // cfg["patch_size"], lw // cfg["patch_size"]
        with torch.device("cpu"):
            cos, sin = get_2d_rotary_pos_embed(hd, ((0, 0), (rows, cols)), (rows, cols))
        return dict(hidden_states=r(b, cfg["in_channels"], lh, lw), timestep=t,
                    encoder_hidden_states=r(b, 77, cfg["cross_attention_dim"]), text_embedding_mask=torch.ones(b, 77),
                    encoder_hidden_states_t5=r(b, cfg["text_len_t5"], cfg["cross_attention_dim_t5"]),
                    text_embedding_mask_t5=torch.ones(b, cfg["text_len_t5"]),
                    image_meta_size=torch.zeros(b, 6, dtype=dt), style=torch.zeros(b, dtype=torch.long),
                    image_rotary_emb=(cos.to("meta", dt), sin.to("meta", dt)))
    if cls == "LatteTransformer3DModel":
        return dict(hidden_states=r(b, cfg["in_channels"], lf, lh, lw), timestep=t,
                    encoder_hidden_states=r(b, txt, cfg["caption_channels"]))
    if cls == "CogVideoXTransformer3DModel":
        kw = dict(hidden_states=r(b, lf, cfg["in_channels"], lh, lw), encoder_hidden_states=r(b, txt, cfg["text_embed_dim"]),
                  timestep=torch.full((b,), 500, dtype=torch.long))
        if cfg.get("use_rotary_positional_embeddings"):
            from diffusers.models.embeddings import get_3d_rotary_pos_embed
            p = cfg["patch_size"]
            with torch.device("cpu"):
                c, s = get_3d_rotary_pos_embed(cfg["attention_head_dim"], ((0, 0), (lh // p, lw // p)),
                                               (lh // p, lw // p), lf)
            kw["image_rotary_emb"] = (c.to("meta", dt), s.to("meta", dt))
        return kw
    if cls == "HunyuanVideoTransformer3DModel":
        return dict(hidden_states=r(b, cfg["in_channels"], lf, lh, lw), timestep=t,
                    encoder_hidden_states=r(b, txt, cfg["text_embed_dim"]), encoder_attention_mask=torch.ones(b, txt),
                    pooled_projections=r(b, cfg["pooled_projection_dim"]), guidance=torch.full((b,), 6000.0, dtype=dt))
    if cls == "WanTransformer3DModel":
        return dict(hidden_states=r(b, cfg["in_channels"], lf, lh, lw), timestep=t,
                    encoder_hidden_states=r(b, txt, cfg["text_dim"]))
    if cls == "MochiTransformer3DModel":
        return dict(hidden_states=r(b, cfg["in_channels"], lf, lh, lw), timestep=t,
                    encoder_hidden_states=r(b, txt, cfg["text_embed_dim"]), encoder_attention_mask=torch.ones(b, txt))
    if cls in ("UNet2DConditionModel", "UNetMotionModel"):
        kw = dict(sample=r(b, cfg["in_channels"], lh, lw) if cls == "UNet2DConditionModel" else
                  r(b, cfg["in_channels"], lf, lh, lw), timestep=t,
                  encoder_hidden_states=r(b, txt, cfg["cross_attention_dim"]))
        if cfg.get("addition_embed_type") == "text_time":
            kw["added_cond_kwargs"] = {"text_embeds": r(b, 1280), "time_ids": r(b, 6)}
        return kw
    if cls == "UNetSpatioTemporalConditionModel":
        return dict(sample=r(b, lf, cfg["in_channels"], lh, lw), timestep=t,
                    encoder_hidden_states=r(b, 1, cfg["cross_attention_dim"]), added_time_ids=r(b, 3))
    raise KeyError(cls)


def measure(model_id: str) -> dict:
    import diffusers
    from planner import zoo
    from planner.cost import compute
    from planner.strategies.base import Shard
    from planner.zoo import pipelines
    from planner.zoo.hub import zoo_folder
    f = zoo.facts(model_id)
    pipe = zoo_folder(model_id)
    kind = pipelines.kind_of(pipe)
    den = pipe.component(kind.denoiser)
    cls = pipelines.denoiser_class(den)
    b = 2 if f.cfg_default else 1
    dt = torch.bfloat16
    with torch.device("meta"):
        model = getattr(diffusers, cls).from_config(den.config)
        if kind.motion_adapter:
            ad = pipe.component("motion_adapter")
            model = diffusers.UNetMotionModel.from_unet2d(model, diffusers.MotionAdapter.from_config(ad.config))
            cls = "UNetMotionModel"
        model = model.to(dt).eval()
        conf = dict(model.config) | {"use_additional_conditions": getattr(model, "use_additional_conditions", None)}
        kwargs = _inputs(cls, conf, f, b, dt)
    counter = Count()
    with torch.no_grad(), torch.device("meta"), OneKernelAttention(counter), counter:
        model(**kwargs)
    spec = zoo.build(model_id, f.default_height, f.default_width, f.default_frames)
    t = compute.op_table(spec)
    _, nbytes = compute.local_work(t, Shard(), 1, b, 2)
    mem = (t.kind == 3) | (t.kind == 4)
    zoo_ops = len(t.kind)
    zoo_mem = float(nbytes[mem].sum())
    kernels = sum(counter.kernels.values())
    return {"class": cls, "batch": b, "height": f.default_height, "width": f.default_width,
            "frames": f.default_frames, "eager_kernels": kernels, "zoo_ops": zoo_ops,
            "eager_mem_bytes": counter.mem_bytes, "zoo_mem_bytes": zoo_mem,
            "kernels_per_op": round(kernels / zoo_ops, 4), "mem_bytes_factor": round(counter.mem_bytes / zoo_mem, 4),
            "top_kernels": dict(counter.kernels.most_common(10)),
            "tool": "tools/eager_inventory.py", "diffusers": diffusers.__version__, "torch": torch.__version__}


# Models this tool cannot run on the meta device take the inventory of the nearest measured
# class (same blocks): why, per model
NEAREST = {
    "animatediff": ("sd1.5", "the SD1.5 U-Net plus motion modules (plain attention blocks); UNetMotionModel's "
                             "meta-device forward fails to broadcast its frame folding"),
    "svd": ("sd2.1", "a spatio-temporal U-Net of SD2.1-style blocks; its forward creates a CPU tensor (get_alpha)"),
    "mochi-1": ("hunyuanvideo", "a video MM-DiT with RMS qk-norms and RoPE; its forward needs torch.autocast "
                                "on the tensors' device (none on meta)"),
    "opensora-2.0": ("flux.1-dev", "Open-Sora 2.0's MMDiT has Flux's blocks (no diffusers class)"),
    "opensora-1.2": ("latte-1", "STDiT3 has Latte's spatial/temporal PixArt-style blocks (no diffusers class)"),
}


def main(argv=None) -> int:
    from planner import zoo
    from planner.zoo.hub import CONFIGS
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import diffusers
    diffusers.utils.logging.set_verbosity_error()
    ids = args.models or zoo.model_ids()
    for mid in [m for m in ids if m not in NEAREST] + [m for m in ids if m in NEAREST]:
        if mid in NEAREST:
            other, why = NEAREST[mid]
            doc = json.loads((CONFIGS / other / "eager.json").read_text()) | {"measured_as": other, "why": why}
            (CONFIGS / mid / "eager.json").write_text(json.dumps(doc, indent=1) + "\n")
            print(f"{mid}: the inventory of {other} ({why})")
            continue
        try:
            doc = measure(mid)
        except KeyError as e:
            print(f"{mid}: no diffusers class to measure ({e})")
            continue
        except Exception as e:   # report and go on with the others
            print(f"{mid}: FAILED {type(e).__name__}: {str(e)[:300]}")
            continue
        (CONFIGS / mid / "eager.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{mid}: {doc['eager_kernels']} kernels / {doc['zoo_ops']} ops = {doc['kernels_per_op']}, "
              f"memory-bound bytes x {doc['mem_bytes_factor']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
