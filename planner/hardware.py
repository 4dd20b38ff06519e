"""GPUs, links and the calibrated parameters of the cost model, loaded from hw_profiles/.

- GpuSpec: datasheet peaks, memory, and prior efficiency curves (one file per GPU id).
- LinkSpec: effective bandwidth per direction and per-hop latency (one file per link id).
- Calibration: the few fitted parameters (hw_profiles/calibrated/*.json).
- Profile: what the cost model reads besides the cluster: calibration + measured curves.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError, read_json

HW_DIR = Path(__file__).resolve().parent.parent / "hw_profiles"
OP_CLASSES = ("gemm", "conv", "attn", "mem")   # mem = norms + elementwise (bandwidth bound)
# The collectives the cost model times (planner/cost/comm.py) and a profile may measure
COLLECTIVE_KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "p2p")


class HardwareError(UserError):
    """A hardware id or file that cannot be used; the message says what is accepted."""


@functools.lru_cache(maxsize=256)
def _as_dict(pairs: tuple) -> dict:
    """A frozen spec's (key, value) pairs as a dict, built once per tuple (the cost model
    looks peaks and link efficiencies up millions of times). Callers must not mutate it."""
    return dict(pairs)


@dataclass(frozen=True, slots=True)
class EfficiencyCurve:
    """Fraction of peak reached against op size (FLOPs, or bytes for `mem`).

    Parametric form: an op of size s takes s / (peak * e_max) + t0, so efficiency is
    e_max * s / (s + e_max * peak * t0): small ops pay a ramp latency t0 (launch tail,
    wave quantisation), large ones reach e_max. Measured profiles give `points`
    (size, efficiency) instead; then efficiency is interpolated in log(size).
    """

    e_max: float
    t0_s: float
    points: tuple[tuple[float, float], ...] = ()

    def time(self, size: float, peak: float) -> float:
        if size <= 0:
            return 0.0
        if self.points:
            xs = np.log10([p[0] for p in self.points])
            ys = [p[1] for p in self.points]
            eff = float(np.interp(math.log10(size), xs, ys))
            return size / (peak * max(eff, 1e-4))
        return size / (peak * self.e_max) + self.t0_s

    def efficiency(self, size: float, peak: float) -> float:
        t = self.time(size, peak)
        return size / (peak * t) if t > 0 else 0.0

    @staticmethod
    def from_json(d: dict) -> "EfficiencyCurve":
        pts = tuple((float(a), float(b)) for a, b in d.get("points", ()))
        return EfficiencyCurve(float(d.get("e_max", 0.5)), float(d.get("t0_us", 0.0)) * 1e-6, pts)

    def to_json(self) -> dict:
        d = {"e_max": round(self.e_max, 5), "t0_us": round(self.t0_s * 1e6, 4)}
        if self.points:
            d["points"] = [[float(f"{a:.6g}"), round(b, 5)] for a, b in self.points]
        return d


@dataclass(frozen=True, slots=True)
class AttentionKernel:
    """How the fused attention kernel an engine runs on this GPU departs from its long-
    sequence, head-dim-128 efficiency (the attn curve's e_max), from published kernel
    benchmarks (hw_profiles/gpus/*.json efficiency.attn):

    - head dim: FlashAttention-2 pads it to a multiple of 32 up to 128, of 64 above
      (flash_api.cpp mha_fwd: round_multiple(head_size, head_size <= 128 ? 32 : 64)), so
      hd 72 and 88 run the hd-96 kernel with 72/96 and 88/96 of its MMAs useful; the
      hd-64 kernel reaches `hd64` x the hd-128 one, hd 96 the mean of the two;
    - keys per call: per-tile overheads amortise over the K/V loop, so short sequences
      (a ring chunk, a patch's stale K/V, a temporal sequence of 16 frames) run below
      e_max: `kv_points` (keys, fraction of e_max), interpolated in log2(keys), 1.0 past
      the last point, and proportional to the keys below the first (a fixed tile cost).
    """

    kernel: str = "fa2"
    hd64: float = 1.0
    kv_points: tuple[tuple[float, float], ...] = ()
    source: str = ""

    def factor(self, head_dim: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Efficiency relative to e_max for each (head dim, keys per call)."""
        hd = np.maximum(head_dim, 1.0)
        pad = np.where(hd <= 128, np.ceil(hd / 32) * 32, np.ceil(hd / 64) * 64)
        cls = np.interp(np.minimum(pad, 128.0), [64.0, 128.0], [self.hd64, 1.0])
        out = cls * hd / pad
        if self.kv_points:
            xs = np.log2([p[0] for p in self.kv_points])
            ys = np.array([p[1] for p in self.kv_points])
            k = np.maximum(keys, 1.0)
            scale = np.interp(np.log2(k), xs, ys, right=1.0)
            scale = np.where(k < self.kv_points[0][0], ys[0] * k / self.kv_points[0][0], scale)
            out = out * scale
        return out

    @staticmethod
    def from_json(d: dict) -> "AttentionKernel":
        pts = tuple((float(a), float(b)) for a, b in d.get("kv_scale", ()))
        return AttentionKernel(str(d.get("kernel", "fa2")), float(d.get("hd64", 1.0)), pts,
                               str(d.get("shape_source", "")))


@dataclass(frozen=True, slots=True)
class GpuSpec:
    id: str
    name: str
    family: str
    memory_bytes: float
    memory_bw: float                      # bytes/s
    peak_flops: tuple[tuple[str, float], ...]   # (dtype, FLOP/s)
    nvlink_gbps: float | None
    pcie_gen: int
    efficiency: tuple[tuple[str, EfficiencyCurve], ...]   # prior curves per op class
    source: str = ""
    # regexes on the lower-cased torch device name (torch.cuda.get_device_name) of this GPU
    device_names: tuple[str, ...] = ()
    attention: AttentionKernel = AttentionKernel()
    efficiency_sources: tuple[tuple[str, str], ...] = ()    # op class -> where its prior comes from
    # what CUDA can allocate of memory_bytes: ECC on GDDR6 data-centre cards keeps parity in
    # the DRAM itself (HBM keeps it beside), so they report ~1/16 less (GpuSpec file)
    usable_fraction: float = 1.0

    @property
    def usable_bytes(self) -> float:
        return self.memory_bytes * self.usable_fraction

    def peak(self, dtype: str) -> float:
        table = _as_dict(self.peak_flops)
        for key in (dtype, "fp16" if dtype == "bf16" else "bf16", "fp32"):
            if key in table:
                return table[key]
        raise HardwareError(f"GPU {self.id} has no peak for dtype {dtype}")

    def prior_curve(self, op_class: str) -> EfficiencyCurve:
        return dict(self.efficiency)[op_class]


@dataclass(frozen=True, slots=True)
class LinkSpec:
    id: str
    bw_gbps: float | None          # effective GB/s per direction; None: taken from the GPU
    latency_us: float
    from_gpu: str | None = None    # GpuSpec field giving the raw bandwidth (NVLink links)
    efficiency: float = 1.0        # applied to the GPU's raw bandwidth
    why: str = ""

    def bandwidth(self, gpu: GpuSpec | None = None) -> float:
        """Effective bytes/s per direction on this link, for links attached to `gpu`."""
        if self.from_gpu:
            raw = getattr(gpu, "nvlink_gbps", None) if gpu else None
            if not raw:
                raise HardwareError(f"link {self.id} needs a GPU with NVLink; "
                                    f"{gpu.id if gpu else 'none'} has none")
            return raw * self.efficiency * 1e9
        return float(self.bw_gbps) * 1e9


# ---------------------------------------------------------------- loading
def _read_json(path: Path, what: str) -> dict:
    return read_json(path, f"{what} file {path}", HardwareError)


@functools.lru_cache(maxsize=None)
def gpu_ids() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (HW_DIR / "gpus").glob("*.json")))


@functools.lru_cache(maxsize=None)
def link_ids() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (HW_DIR / "links").glob("*.json")))


def gpu_from_json(d: dict) -> GpuSpec:
    eff = d.get("efficiency", {})
    curves = tuple((c, EfficiencyCurve.from_json(eff[c])) for c in OP_CLASSES if c in eff)
    missing = [c for c in OP_CLASSES if c not in eff]
    if missing:
        raise HardwareError(f"GPU file for {d.get('id')} lacks efficiency curves for {missing}")
    return GpuSpec(
        attention=AttentionKernel.from_json(eff["attn"]),
        efficiency_sources=tuple((c, str(eff[c].get("source", ""))) for c in OP_CLASSES),
        id=d["id"], name=d.get("name", d["id"]), family=d.get("family", d["id"]),
        memory_bytes=float(d["memory_gib"]) * 2**30,
        usable_fraction=float(d.get("usable_fraction", 1.0)),
        memory_bw=float(d["memory_bw_gbps"]) * 1e9,
        peak_flops=tuple((k, float(v) * 1e12) for k, v in d["peak_tflops"].items()),
        nvlink_gbps=d.get("nvlink_gbps_per_direction"),
        pcie_gen=int(d.get("pcie_gen", 4)),
        efficiency=curves,
        source=d.get("source", ""),
        device_names=_patterns(d.get("device_names", []), d["id"]),
    )


def _patterns(xs, gpu_id: str) -> tuple[str, ...]:
    if not isinstance(xs, list) or not all(isinstance(x, str) and x for x in xs):
        raise ValueError(f"device_names of {gpu_id} must be a list of regular expressions")
    for x in xs:
        try:
            re.compile(x)
        except re.error as e:
            raise ValueError(f"device_names of {gpu_id}: {x!r} is not a regular expression ({e})") from None
    return tuple(xs)


def gpu_id_for_device_name(name: str, memory_gib: float | None = None, hint: str = "give the GPU id") -> str:
    """The hw_profiles/gpus id whose "device_names" match torch's name of a device (e.g.
    "NVIDIA A100-SXM4-80GB" -> a100-sxm4-80gb). Several matches are told apart by the
    memory (GiB, torch's total_memory), when given. HardwareError when none or several fit:
    `hint` says what the user can do instead."""
    low = " ".join(str(name).lower().split())
    hits = [g for g in (load_gpu(i) for i in gpu_ids()) if any(re.search(p, low) for p in g.device_names)]
    if len(hits) > 1 and memory_gib is not None:
        hits = [min(hits, key=lambda g: abs(g.memory_bytes / 2**30 - memory_gib))]
    if len(hits) == 1:
        return hits[0].id
    if hits:
        raise HardwareError(f"GPU '{name}' matches several hw_profiles/gpus files ({', '.join(g.id for g in hits)}); "
                            f"{hint}")
    raise HardwareError(f"GPU '{name}' is not in hw_profiles/gpus (no file's device_names matches it); add a file "
                        f"for it or {hint} (known: {', '.join(g for g in gpu_ids() if g != 'cpu')})")


@functools.lru_cache(maxsize=None)
def load_gpu(gpu_id: str) -> GpuSpec:
    path = HW_DIR / "gpus" / f"{gpu_id}.json"
    if not isinstance(gpu_id, str) or gpu_id not in gpu_ids():   # also refuses "../links/x"
        raise HardwareError(f"unknown GPU '{gpu_id}'; known: {', '.join(gpu_ids())}")
    d = _read_json(path, "GPU")
    try:
        return gpu_from_json(d)
    except (KeyError, TypeError, ValueError) as e:
        raise HardwareError(f"GPU file {path} is malformed: {e}") from None


@functools.lru_cache(maxsize=None)
def load_link(link_id: str) -> LinkSpec:
    path = HW_DIR / "links" / f"{link_id}.json"
    if not isinstance(link_id, str) or link_id not in link_ids():
        raise HardwareError(f"unknown link '{link_id}'; known: {', '.join(link_ids())}")
    try:
        m = _read_json(path, "link")["model"]
        spec = LinkSpec(id=link_id, bw_gbps=m.get("bw_gbps"), latency_us=float(m["latency_us"]),
                        from_gpu=m.get("from_gpu"), efficiency=float(m.get("efficiency", 1.0)),
                        why=m.get("why", ""))
        if spec.bw_gbps is None and not spec.from_gpu:
            raise ValueError("neither bw_gbps nor from_gpu")
        return spec
    except HardwareError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise HardwareError(f"link file {path} is malformed: {e!r}") from None


# ---------------------------------------------------------------- calibration
@dataclass(frozen=True, slots=True)
class Calibration:
    """The cost model's free parameters. Fitted per GPU family, op class and link type,
    never per data row (see planner/calibrate.py). Defaults are the un-fitted priors."""

    curves: tuple[tuple[tuple[str, str], EfficiencyCurve], ...] = ()   # ((family, class), curve)
    # ((family, class), factor on each GPU's own prior e_max): what fits write
    eff_factor: tuple[tuple[tuple[str, str], float], ...] = ()
    launch_eager_s: float = 10e-6       # host time per kernel issued, eager PyTorch
    launch_compiled_s: float = 3e-6     # with torch.compile / CUDA graphs
    # Fixed cost of one denoising step outside the network's kernels: the pipeline's Python
    # loop, guidance combine and scheduler update (ASSUMED prior ~ ten kernel launches).
    step_eager_s: float = 100e-6
    step_compiled_s: float = 30e-6
    compiled_mem_factor: float = 0.3    # share of eager's extra memory-bound traffic left after fusion
    coll_eff: tuple[tuple[str, float], ...] = ()   # (link id, bandwidth efficiency)
    overlap_eff: float = 0.85           # DistriFusion: 1.48/1.77 s at 1024^2 .. 21.3/22.9 at 3840^2
    name: str = "prior"
    fitted_on: str = ""

    def curve(self, family: str, op_class: str) -> EfficiencyCurve | None:
        return dict(self.curves).get((family, op_class))

    def factor(self, family: str, op_class: str) -> float | None:
        return dict(self.eff_factor).get((family, op_class))

    def link_efficiency(self, link_id: str, kind: str = "") -> float:
        """Fraction of the link file's bandwidth collectives reach; all-to-all may have
        its own entry "<link>/all_to_all"."""
        eff = _as_dict(self.coll_eff)
        if kind == "all_to_all" and f"{link_id}/all_to_all" in eff:
            return eff[f"{link_id}/all_to_all"]
        return eff.get(link_id, 1.0)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "fitted_on": self.fitted_on,
            "curves": {f"{f}/{c}": cv.to_json() for (f, c), cv in self.curves},
            "eff_factor": {f"{f}/{c}": round(v, 5) for (f, c), v in self.eff_factor},
            "launch_eager_us": round(self.launch_eager_s * 1e6, 4),
            "launch_compiled_us": round(self.launch_compiled_s * 1e6, 4),
            "step_eager_us": round(self.step_eager_s * 1e6, 3),
            "step_compiled_us": round(self.step_compiled_s * 1e6, 3),
            "compiled_mem_factor": round(self.compiled_mem_factor, 5),
            "coll_eff": {k: round(v, 5) for k, v in self.coll_eff},
            "overlap_eff": round(self.overlap_eff, 5),
        }

    @staticmethod
    def from_json(d: dict) -> "Calibration":
        for key in ("name", "fitted_on"):
            if not isinstance(d.get(key, ""), str):
                raise HardwareError(f"calibration '{key}' must be a string, got {type(d[key]).__name__}")
        curves = []
        for key, cv in d.get("curves", {}).items():
            fam, cls = key.split("/")
            if cls not in OP_CLASSES:
                raise HardwareError(f"calibration curve '{key}': op class must be one of {OP_CLASSES}")
            curves.append(((fam, cls), EfficiencyCurve.from_json(cv)))
        factors = []
        for key, v in d.get("eff_factor", {}).items():
            fam, cls = key.split("/")
            if cls not in OP_CLASSES:
                raise HardwareError(f"calibration factor '{key}': op class must be one of {OP_CLASSES}")
            factors.append(((fam, cls), float(v)))
        return Calibration(
            curves=tuple(curves), eff_factor=tuple(factors),
            launch_eager_s=float(d.get("launch_eager_us", 10.0)) * 1e-6,
            launch_compiled_s=float(d.get("launch_compiled_us", 3.0)) * 1e-6,
            step_eager_s=float(d.get("step_eager_us", 100.0)) * 1e-6,
            step_compiled_s=float(d.get("step_compiled_us", 30.0)) * 1e-6,
            compiled_mem_factor=float(d.get("compiled_mem_factor", 0.3)),
            coll_eff=tuple((k, float(v)) for k, v in d.get("coll_eff", {}).items()),
            overlap_eff=float(d.get("overlap_eff", 0.85)),
            name=d.get("name", "calibration"),
            fitted_on=d.get("fitted_on", ""),
        )


@dataclass(frozen=True, slots=True)
class CommCurve:
    """A measured collective: bus bandwidth (bytes/s) against message bytes, for a
    number of ranks on one link type; interpolated, with bandwidth kept monotone."""

    kind: str
    nranks: int
    sizes: tuple[float, ...]
    times: tuple[float, ...]

    def time(self, nbytes: float) -> float:
        xs = np.log10(self.sizes)
        ys = np.log10(self.times)
        if nbytes <= self.sizes[-1]:
            return float(10 ** np.interp(math.log10(max(nbytes, 1.0)), xs, ys))
        # beyond the largest measured size: extend at the last measured bandwidth
        return self.times[-1] * nbytes / self.sizes[-1]


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything the cost model reads besides the model, the cluster and the plan."""

    calibration: Calibration = field(default_factory=Calibration)
    measured_curves: tuple[tuple[tuple[str, str], EfficiencyCurve], ...] = ()  # ((gpu id, class), curve)
    measured_comm: tuple[tuple[tuple[str, str, int], CommCurve], ...] = ()     # ((link id, kind, n), curve)
    measured_launch_s: float | None = None
    # Compute slows by this factor when every local rank computes at once: ranks that share
    # a host's cores, SMT siblings, caches and memory bandwidth (a CPU profile, measured by
    # the profiler); 1 where each rank owns its device (GPUs).
    concurrent_slowdown: float = 1.0
    name: str = "datasheet"
    # measured denoiser blocks, text encoders and VAE of models (`cli.py profile --model`):
    # planner.profile_io.BlockTable per model and scale; planner/cost/measured.py uses them
    blocks: tuple = ()

    def curve(self, gpu: GpuSpec, op_class: str) -> EfficiencyCurve:
        """Measured on this GPU, else its prior scaled by its family's fitted factor (or a
        fitted curve of the family, the older calibration form), else its prior."""
        measured = dict(self.measured_curves).get((gpu.id, op_class))
        if measured is not None:
            return measured
        k = self.calibration.factor(gpu.family, op_class)
        prior = gpu.prior_curve(op_class)
        if k is not None:
            return EfficiencyCurve(prior.e_max * k, prior.t0_s)
        fitted = self.calibration.curve(gpu.family, op_class)
        return fitted if fitted is not None else prior

    def measured(self, gpu: GpuSpec, op_class: str) -> bool:
        """A profiled curve (it already holds the kernel's head-dim and length effects)."""
        return (gpu.id, op_class) in dict(self.measured_curves)

    def launch_s(self, compiled: bool) -> float:
        if self.measured_launch_s is not None and not compiled:
            return self.measured_launch_s
        c = self.calibration
        return c.launch_compiled_s if compiled else c.launch_eager_s

    def comm_curve(self, link_id: str, kind: str, nranks: int) -> CommCurve | None:
        return dict(self.measured_comm).get((link_id, kind, nranks))


CALIBRATED_FILE = HW_DIR / "calibrated" / "calibration.json"


@functools.lru_cache(maxsize=None)
def default_profile(calibrated: bool = True) -> Profile:
    """The datasheet profile, with the committed calibration when there is one."""
    if calibrated and CALIBRATED_FILE.exists():
        cal = Calibration.from_json(_read_json(CALIBRATED_FILE, "calibration"))
        return Profile(calibration=cal, name=f"datasheet+{cal.name}")
    return Profile()
