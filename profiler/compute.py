"""Benchmarks of the op classes the cost model uses (planner/cost/compute.py).

Each class has a ladder of shapes, roughly 4-10x apart in size, spanning the ops of
diffusion models (DiT/UNet GEMMs, VAE convolutions, attention over a few to tens of
thousands of tokens, norms and elementwise ops). Sizes are counted exactly as the cost
model counts them, so that an efficiency measured here reproduces the measured time
when the cost model divides the same size by peak x efficiency:
- gemm: 2*M*K*N FLOPs; conv (3x3, stride 1, same padding): 2*H*W*Cin*Cout*9 FLOPs;
  attn: 4*B*H*Sq*Skv*D FLOPs; mem: bytes read + written (norms, gelu/silu: 2 tensors;
  add, mul: 3 tensors).
A ladder stops early where the next rung's predicted time (from the efficiency of the
rung before) exceeds the per-call cap, or its tensors would not fit in memory: this
keeps a CPU run short while the same ladder reaches the large sizes on a GPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from .timing import Progress, TimingConfig, time_op

TORCH_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}
ELEM = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}

# (M, K, N): activation rows x weight
GEMM = ((16, 64, 64), (32, 128, 128), (64, 256, 256), (256, 256, 1024), (256, 1152, 1152),
        (1024, 1152, 1152), (1024, 1152, 4608), (4096, 1152, 4608), (4096, 4096, 4096),
        (16384, 3072, 3072), (16384, 4096, 16384))
# (Cin, Cout, H, W), batch 1
CONV = ((16, 16, 8, 8), (32, 32, 16, 16), (64, 64, 32, 32), (128, 128, 32, 32), (128, 128, 64, 64),
        (256, 256, 64, 64), (512, 512, 64, 64), (512, 512, 128, 128), (256, 256, 512, 512))
# (batch, heads, seq, head_dim): self-attention, queries = keys = seq
ATTN = ((1, 1, 64, 64), (1, 4, 128, 64), (1, 16, 256, 64), (1, 16, 1024, 64), (1, 8, 2048, 64),
        (1, 16, 4096, 64), (1, 24, 4096, 128), (1, 24, 16384, 64), (1, 24, 32768, 128))
# (tokens, width); width a multiple of 32 for group norm's 32 groups
MEM = ((4, 256), (16, 1024), (64, 1152), (256, 1152), (1024, 1152), (4096, 1152), (16384, 1152),
       (16384, 4096), (65536, 4096))
MEM_OPS = {"layer_norm": 2, "group_norm": 2, "gelu": 2, "silu": 2, "add": 3, "mul": 3}
LADDERS = {"gemm": GEMM, "conv": CONV, "attn": ATTN, "mem": MEM}


@dataclass(frozen=True)
class ComputeConfig:
    device: str = "cpu"
    dtype: str = "fp32"
    max_call_s: float = 0.5               # skip rungs predicted to take longer per call
    rungs: dict | None = None             # class -> indices into its ladder (None: all)
    mem_ops: tuple[str, ...] = tuple(MEM_OPS)
    classes: tuple[str, ...] = ("gemm", "conv", "attn", "mem")
    timing: TimingConfig = TimingConfig()


def _torch_dtype(dtype: str):
    import torch
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype {dtype!r}: the profiler measures {', '.join(TORCH_DTYPES)}")
    return getattr(torch, TORCH_DTYPES[dtype])


def make_case(cls: str, op: str, shape: tuple[int, ...], dtype: str, device: str
              ) -> tuple[Callable[[], object], float, float]:
    """(fn, size, bytes of the tensors) of one benchmark; size as in the module doc."""
    return _build_fn(cls, op, shape, dtype, device), *size_of(cls, op, shape, dtype)


def _build_fn(cls: str, op: str, shape: tuple[int, ...], dtype: str, device: str) -> Callable[[], object]:
    import torch
    import torch.nn.functional as F
    dt = _torch_dtype(dtype)
    r = lambda *s: torch.randn(*s, dtype=dt, device=device)
    if cls == "gemm":
        m, k, n = shape
        a, w = r(m, k), r(k, n)
        return lambda: a @ w
    if cls == "conv":
        ci, co, h, w_ = shape
        x, wt = r(1, ci, h, w_), r(co, ci, 3, 3)
        return lambda: F.conv2d(x, wt, padding=1)
    if cls == "attn":
        b, h, s, d = shape
        q, k_, v = r(b, h, s, d), r(b, h, s, d), r(b, h, s, d)
        return lambda: F.scaled_dot_product_attention(q, k_, v)
    if cls != "mem":
        raise ValueError(f"unknown op class {cls!r}")
    tok, width = shape
    x = r(tok, width)
    if op == "layer_norm":
        g, bb = r(width), r(width)
        return lambda: F.layer_norm(x, (width,), g, bb)
    if op == "group_norm":
        xg, g, bb = x.t().reshape(1, width, tok), r(width), r(width)   # (N, C, positions)
        return lambda: F.group_norm(xg, 32, g, bb)
    if op in ("gelu", "silu"):
        f = getattr(F, op)
        return lambda: f(x)
    if op not in ("add", "mul"):
        raise ValueError(f"unknown mem op {op!r}; known: {', '.join(MEM_OPS)}")
    y = r(tok, width)
    return (lambda: x + y) if op == "add" else (lambda: x * y)


def size_of(cls: str, op: str, shape: tuple[int, ...], dtype: str) -> tuple[float, float]:
    """(size, bytes of the tensors) of a case, without allocating anything."""
    e = ELEM[dtype]
    if cls == "gemm":
        m, k, n = shape
        return 2.0 * m * k * n, float(e * (m * k + k * n + m * n))
    if cls == "conv":
        ci, co, h, w = shape
        return 2.0 * h * w * ci * co * 9, float(e * (h * w * (ci + co) + 9 * ci * co))
    if cls == "attn":
        b, h, s, d = shape
        return 4.0 * b * h * s * s * d, float(e * 4 * b * h * s * d)
    tok, width = shape
    nbytes = float(e * tok * width * MEM_OPS[op])
    return nbytes, nbytes


def _memory_budget(device: str) -> float:
    """Bytes a benchmark's tensors may use: a quarter of the free memory (outputs,
    temporaries and the allocator need the rest)."""
    if device == "cuda":
        import torch
        return torch.cuda.mem_get_info()[0] / 4
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 4
    except (ValueError, OSError, AttributeError):
        return 2 * 2**30


def plan_cases(cfg: ComputeConfig) -> list[tuple[str, str, tuple[int, ...]]]:
    """(class, op, shape) of every benchmark, in ladder order (small first)."""
    cases = []
    for cls in cfg.classes:
        ladder = LADDERS[cls]
        idx = cfg.rungs.get(cls, range(len(ladder))) if cfg.rungs else range(len(ladder))
        ops = cfg.mem_ops if cls == "mem" else (cls,)
        for op in ops:
            cases += [(cls, op, ladder[i]) for i in idx]
    return cases


def measure_compute(cfg: ComputeConfig, peak_flops: float, memory_bw: float,
                    progress: Progress | None = None) -> list[dict]:
    """Time every case; one sample dict per measured case (skipped ones are left out)."""
    import torch
    if cfg.dtype == "tf32" and cfg.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    budget = _memory_budget(cfg.device)
    samples: list[dict] = []
    last_eff: dict[str, float] = {}       # per op: efficiency of the previous rung
    for cls, op, shape in plan_cases(cfg):
        peak = memory_bw if cls == "mem" else peak_flops
        label = f"{op} {'x'.join(map(str, shape))}"
        size, nbytes = size_of(cls, op, shape, cfg.dtype)
        predicted = size / (peak * last_eff[op]) if op in last_eff else 0.0
        if predicted > cfg.max_call_s or nbytes > budget:
            if progress:
                progress.tick(f"skip {label}")
            continue
        with torch.no_grad():
            fn, size, nbytes = make_case(cls, op, shape, cfg.dtype, cfg.device)
            t = time_op(fn, cfg.device, cfg.timing)
        del fn                     # free this case's tensors before the next, larger one
        if cfg.device == "cuda":
            torch.cuda.empty_cache()   # so that the next memory budget check sees them gone
        eff = size / (peak * t)
        last_eff[op] = eff
        samples.append({"class": cls, "op": op, "shape": list(shape), "size": size,
                        "time_us": t * 1e6, "eff": eff})
        if progress:
            progress.tick(label)
    return samples


def measure_launch(device: str, timing: TimingConfig = TimingConfig()) -> float:
    """Seconds per call of a tiny op (1-element add): the per-kernel floor of eager
    PyTorch, CPU dispatch + allocation (+ the kernel launch on CUDA)."""
    import torch
    a = torch.ones(1, device=device)
    b = torch.ones(1, device=device)
    cfg = TimingConfig(warmup=20, repeats=max(timing.repeats, 5), target_s=0.005, max_inner=2000)
    with torch.no_grad():
        return time_op(lambda: a + b, device, cfg)
