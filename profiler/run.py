"""One profiling run: options -> measurements -> profile document (planner/profile_io.py).

Presets (how much is measured):
- "full":  every rung of the compute ladders up to 0.5 s per call, 7 repeats;
           collectives at 1 KiB .. 64 MiB (256 MiB on GPUs) in powers of 4, on groups
           of 2, 4, ... up to --nproc ranks.
- "quick": the same ladders up to 50 ms per call, 3 repeats; collectives at powers of
           16 (1 KiB .. 64 MiB) on 2 and --nproc ranks. Under a minute on a 2-core host.
- "tiny":  1-2 sizes per class and two message sizes: for tests (a few seconds).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from planner.errors import UsageError
from planner.hardware import link_ids, load_gpu
from planner.limits import cores, cpu_rank_limit

from . import fit
from .comm import KINDS, CommConfig, CommError, measure_comm, total_steps
from .compute import TORCH_DTYPES, ComputeConfig, measure_compute, measure_launch, plan_cases
from .device import default_link, device_gpu_id, provenance, resolve_device
from .timing import Progress, TimingConfig

FORMAT, VERSION = "paradiff-hw-profile", 1
PRESETS = ("full", "quick", "tiny")


@dataclass
class ProfileOptions:
    device: str | None = None       # cpu | cuda; None: cuda when available
    dtype: str | None = None        # None: fp32 on CPU, bf16 on CUDA
    threads: int | None = None      # torch threads on CPU; None: 1 (the executor's one thread per rank)
    nproc: int = 2                  # processes (GPUs) for the collectives
    link: str | None = None         # link id the collectives stand for; None: the device's usual
    preset: str = "full"
    gpu_id: str | None = None       # GpuSpec id, overriding the lookup by device name
    name: str = "local"
    progress: bool = True
    argv: list[str] | None = None   # command line recorded in the provenance
    comm_kinds: tuple[str, ...] = KINDS


def check_options(opts: ProfileOptions) -> tuple[str, str, str, int]:
    """(device, gpu id, dtype, threads) after checking the options (UsageError if bad)."""
    if opts.preset not in PRESETS:
        raise UsageError(f"preset {opts.preset!r}: accepted: {', '.join(PRESETS)}")
    if isinstance(opts.nproc, bool) or not isinstance(opts.nproc, int) or opts.nproc < 1:
        raise UsageError(f"--nproc {opts.nproc}: must be an integer >= 1")
    if opts.threads is not None and (not isinstance(opts.threads, int) or opts.threads < 1):
        raise UsageError(f"--threads {opts.threads}: must be an integer >= 1")
    if opts.link is not None and opts.link not in link_ids():
        raise UsageError(f"--link {opts.link}: unknown; known: {', '.join(link_ids())}")
    bad = [k for k in opts.comm_kinds if k not in KINDS]
    if bad:
        raise UsageError(f"collective {bad[0]!r}: known: {', '.join(KINDS)}")
    device = resolve_device(opts.device)
    if device == "cpu" and opts.nproc > cpu_rank_limit():
        raise UsageError(f"--nproc {opts.nproc}: at most {cpu_rank_limit()} processes on this machine's "
                         f"{cores()} cores (max(8, 4 per core))")
    dtype = opts.dtype or ("fp32" if device == "cpu" else "bf16")
    if dtype not in TORCH_DTYPES or (dtype == "tf32" and device == "cpu"):
        ok = [d for d in TORCH_DTYPES if device == "cuda" or d != "tf32"]
        raise UsageError(f"--dtype {dtype}: accepted on {device} (what the profiler measures): {', '.join(ok)}")
    if device == "cpu" and opts.gpu_id not in (None, "cpu"):
        raise UsageError(f"--gpu-id {opts.gpu_id}: the CPU is profiled as GPU id cpu (--gpu-id names a CUDA "
                         f"device torch does not recognise)")
    gpu_id = device_gpu_id(device, opts.gpu_id)
    threads = opts.threads or 1
    return device, gpu_id, dtype, threads


# CPU ranks: collectives are timed interleaved with this much compute per call on every
# rank (profiler/comm.py's module doc), the middle of the 1-3 ms of ops that lie between
# two collectives of the executor's ranks on the CPU-sized models (sd3-medium --scale
# small under ulysses=2: ~35 ms of compute per step and rank around 15 collectives). On a
# GPU each rank owns its device and the calls are timed back-to-back, as nccl-tests do.
CPU_BETWEEN_S = 2e-3


def configs(preset: str, device: str, dtype: str, threads: int, nproc: int,
            kinds: tuple[str, ...]) -> tuple[ComputeConfig, CommConfig]:
    backend = "gloo" if device == "cpu" else "nccl"
    if preset == "tiny":
        comp = ComputeConfig(device, dtype, max_call_s=0.05,
                             rungs={"gemm": (0, 2), "conv": (0,), "attn": (0,), "mem": (2,)},
                             mem_ops=("add", "layer_norm"),
                             timing=TimingConfig(warmup=1, repeats=3, target_s=0.002))
        sizes: tuple[int, ...] = (1024, 65536)
        comm = CommConfig(backend, device, dtype, nproc, sizes, kinds, (nproc,), threads,
                          warmup=1, repeats=2, target_s=0.001, max_inner=5, timeout_s=120,
                          concurrency_repeats=3, between_s=CPU_BETWEEN_S / 4 if device == "cpu" else 0.0,
                          min_inner=2)
        return comp, comm
    quick = preset == "quick"
    comp = ComputeConfig(device, dtype, max_call_s=(0.1 if quick else 0.5),
                         timing=TimingConfig(repeats=3 if quick else 7, target_s=0.005 if quick else 0.02))
    top = 9 if device == "cpu" else 10            # 4**8 KiB = 64 MiB; GPUs: 256 MiB
    sizes = tuple(1024 * 4 ** k for k in range(0, top, 2 if quick else 1))
    groups = sorted({nproc} | ({2} if nproc >= 2 else set())
                    | (set() if quick else {2 ** k for k in range(1, nproc.bit_length()) if 2 ** k <= nproc}))
    comm = CommConfig(backend, device, dtype, nproc, sizes, kinds, tuple(groups), threads,
                      repeats=5, between_s=CPU_BETWEEN_S if device == "cpu" else 0.0)
    return comp, comm


def comm_skip_reason(device: str, nproc: int) -> str | None:
    """Why the collectives cannot be measured here, or None."""
    if nproc < 2:
        return f"--nproc {nproc}: collectives need at least 2 processes"
    if device == "cuda":
        import torch
        have = torch.cuda.device_count()
        if have < 2:
            return "only one GPU here: links between GPUs cannot be measured on a single GPU"
        if nproc > have:
            return f"--nproc {nproc} but only {have} GPUs here: one process per GPU is needed"
    return None


def _reference_peaks(samples: list[dict], peak: float, memory_bw: float) -> tuple[float, float]:
    """The peaks the profile's efficiencies are fractions of: the GpuSpec's datasheet
    values, raised to the fastest measured rate where the device beats them (the CPU
    placeholder's peaks; caches, for memory-bound ops on small tensors), so that every
    efficiency lies in (0, 1]. The samples' efficiencies are rescaled in place. The cost
    model keeps the measured times: profile_io rescales by device.peak_flops / the spec's."""
    top_c = max((s["eff"] for s in samples if s["class"] != "mem"), default=1.0)
    top_m = max((s["eff"] for s in samples if s["class"] == "mem"), default=1.0)
    k_c, k_m = max(1.0, top_c), max(1.0, top_m)
    for s in samples:
        s["eff"] /= k_m if s["class"] == "mem" else k_c
    return peak * k_c, memory_bw * k_m


def _compute_section(samples: list[dict], peak: float, memory_bw: float, launch_s: float) -> dict:
    curves = {}
    for cls in ("gemm", "conv", "attn", "mem"):
        mine = [s for s in samples if s["class"] == cls]
        if not mine:
            continue
        peak_c = memory_bw if cls == "mem" else peak
        # mem: one point per tensor shape over its ops (fit.pool_points)
        groups = [tuple(s["shape"]) for s in mine] if cls == "mem" else None
        pts = fit.pool_points([s["size"] for s in mine], [s["eff"] for s in mine], groups)
        # the parametric form is fitted to the same points the cost model uses, so that a
        # report compares like with like
        f = fit.fit_efficiency([p[0] for p in pts], [p[0] / (peak_c * p[1]) for p in pts], peak_c)
        # the fit's e_max is a summary (the cost model interpolates the points); a fit
        # extrapolating past the fastest point must not claim more than the peak
        curves[cls] = {"e_max": _r(min(f["e_max"], 1.0)), "t0_us": _r(f["t0_us"]), "fit_rms": _r(f["fit_rms"]),
                       "unit": "byte" if cls == "mem" else "FLOP",
                       "points": [[_r(s), _r(e)] for s, e in pts],
                       "samples": [{"op": s["op"], "shape": s["shape"], "size": s["size"],
                                    "time_us": _r(s["time_us"]), "eff": _r(s["eff"])} for s in mine]}
    return {"launch_us": _r(launch_s * 1e6), "curves": curves}


def _comm_section(raw: dict, interleaved: bool = False) -> list[dict]:
    out = []
    for c in raw["curves"]:
        sizes, times = c["sizes"], c["times"]
        mono = fit.make_monotone(sizes, times, pooled=interleaved)
        f = fit.fit_alpha_beta(sizes, mono, c["kind"], c["nranks"])
        out.append({"kind": c["kind"], "nranks": c["nranks"], "sizes": sizes,
                    "times_us": [_r(t * 1e6) for t in mono], "raw_times_us": [_r(t * 1e6) for t in times],
                    "bw_gbps": [_r(s / t / 1e9) for s, t in zip(sizes, mono)],
                    "fit": {k: _r(v) for k, v in f.items()}})
    return out


def _r(x: float) -> float:
    """6 significant digits: measurements are not more precise, and the file stays readable."""
    return float(f"{x:.6g}")


def profile_machine(opts: ProfileOptions) -> dict:
    """Measure this machine; the profile document (not yet written)."""
    import torch
    device, gpu_id, dtype, threads = check_options(opts)
    spec = load_gpu(gpu_id)
    peak, bw = spec.peak(dtype), spec.memory_bw
    link = opts.link or default_link(device, gpu_id)
    comp_cfg, comm_cfg = configs(opts.preset, device, dtype, threads, opts.nproc, opts.comm_kinds)
    skip = comm_skip_reason(device, opts.nproc)
    bar = Progress(len(plan_cases(comp_cfg)) + 1 + (0 if skip else total_steps(comm_cfg)),
                   enabled=opts.progress)
    old_threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(threads)
    try:
        launch = measure_launch(device, comp_cfg.timing)
        bar.tick("launch overhead")
        samples = measure_compute(comp_cfg, peak, bw, bar)
    finally:
        torch.set_num_threads(old_threads)
    peak_ref, bw_ref = _reference_peaks(samples, peak, bw)
    compute = _compute_section(samples, peak_ref, bw_ref, launch)
    comm: dict = {"link": link, "backend": comm_cfg.backend, "nproc": opts.nproc, "dtype": dtype}
    if skip:
        comm["skipped"] = skip
    else:
        try:
            raw = measure_comm(comm_cfg, bar)
            comm |= {"unsupported": raw["unsupported"], "curves": _comm_section(raw, comm_cfg.between_s > 0)}
            comm["timing"] = ({"mode": "interleaved", "between_us": _r(comm_cfg.between_s * 1e6)}
                              if comm_cfg.between_s > 0 else {"mode": "back-to-back"})
            if "concurrency" in raw:
                compute["concurrency"] = {k: (v if k == "nproc" else _r(v)) for k, v in raw["concurrency"].items()}
        except CommError as e:
            comm["skipped"] = str(e)
    bar.close()
    if comm.get("skipped") and opts.progress:
        print(f"note: collectives not measured: {comm['skipped']}", file=sys.stderr)
    return {
        "format": FORMAT, "version": VERSION, "name": opts.name,
        "provenance": provenance(device, threads if device == "cpu" else None, comm_cfg.backend, opts.argv)
                      | {"preset": opts.preset, "nproc": opts.nproc},
        "device": {"kind": device, "gpu_id": gpu_id, "dtype": dtype,
                   "threads": threads if device == "cpu" else None,
                   "peak_flops": peak_ref, "memory_bw": bw_ref, "datasheet_peak_flops": peak,
                   "datasheet_memory_bw": bw},
        "compute": compute,
        "comm": comm,
    }
