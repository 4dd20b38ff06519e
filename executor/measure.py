"""What a run reports: measured against predicted latency and speed-up, memory, traffic,
and how far the output is from the serial one.

Definitions (also in the report's JSON):
- latency: median over the repeats of the denoising loop's wall time (barrier to
  barrier, the final gather of the latent included); time per step = latency / steps.
- speed-up: serial latency (same machine, model, scenario; one process, one thread on
  CPU) over the plan's latency. error = |predicted - measured| / measured.
- memory_peak_mb: per rank. CUDA: torch.cuda.max_memory_allocated over the timed runs.
  CPU: the process's resident-set high-water mark (VmHWM) over the timed runs, reset
  through /proc/self/clear_refs before them ("rss_hwm"); where the reset is refused, the
  peak since the process started (ru_maxrss, "ru_maxrss"). Both include the Python and
  torch runtime (a few hundred MB), which the planner counts as "runtime" too.
- comm_bytes: per rank, per run, bytes the rank sent (executor/comm.py's convention);
  comm_seconds: per rank, per run, wall time inside blocking collectives by kind (waiting
  for a slower peer included).
- fidelity against the serial output latent x_ref: max_rel_err = max|x - x_ref| /
  max|x_ref|; rel_l2 = ||x - x_ref|| / ||x_ref||; psnr = 10 log10(peak^2 / MSE) dB with
  peak = max(x_ref) - min(x_ref) (inf when identical).
"""
from __future__ import annotations

import math
import resource
import statistics
from dataclasses import dataclass, field

import torch


class MemoryPeak:
    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.method = "cuda_max_allocated"
            return
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.method = "rss_hwm"
        except OSError:
            self.method = "ru_maxrss"

    def peak_mb(self) -> float:
        if self.method == "cuda_max_allocated":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.method == "rss_hwm":
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fidelity(out: torch.Tensor, ref: torch.Tensor) -> dict:
    out, ref = out.double(), ref.double()
    diff = out - ref
    peak = float(ref.max() - ref.min())
    mse = float((diff ** 2).mean())
    return {"max_rel_err": float(diff.abs().max() / ref.abs().max()),
            "rel_l2": float(diff.norm() / ref.norm()),
            "psnr": math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)}


def _err(pred: float, meas: float) -> float:
    return abs(pred - meas) / meas if meas > 0 else math.inf


@dataclass
class Measurement:
    plan: str
    nproc: int
    model: str
    backend: str
    steps: int
    repeats: int
    latencies_s: list[float]             # every timed repeat (max over ranks)
    serial_latencies_s: list[float]
    predicted_latency_s: float
    predicted_speedup: float
    predicted_serial_s: float
    memory_peak_mb: list[float]
    memory_method: str
    comm_bytes: list[float]
    fidelity: dict
    exact: bool
    profile: str
    comm_seconds: list[dict] = field(default_factory=list)   # per rank: seconds in blocking collectives by kind
    predicted_comm_bytes_per_step: float = 0.0
    predicted_memory_gb: float = 0.0
    extra: dict = field(default_factory=dict)
    model_info: dict = field(default_factory=dict)   # diffusers classes, weights' origin, scale
    components: dict = field(default_factory=dict)   # seconds of text encoders / VAE decode
    pixels: object = None                            # decoded uint8 frames (rank 0), not in the JSON

    @property
    def latency_s(self) -> float:
        return statistics.median(self.latencies_s)

    @property
    def serial_latency_s(self) -> float:
        return statistics.median(self.serial_latencies_s)

    @property
    def speedup(self) -> float:
        return self.serial_latency_s / self.latency_s

    def to_json(self) -> dict:
        fid = {k: (None if math.isinf(v) else round(v, 8)) for k, v in self.fidelity.items()}
        return {
            "plan": self.plan, "nproc": self.nproc, "model": self.model, "backend": self.backend,
            "steps": self.steps, "repeats": self.repeats, "exact": self.exact, "profile": self.profile,
            "measured": {"latency_s": round(self.latency_s, 5), "step_s": round(self.latency_s / self.steps, 6),
                         "speedup": round(self.speedup, 4), "serial_latency_s": round(self.serial_latency_s, 5),
                         "latencies_s": [round(t, 5) for t in self.latencies_s]},
            "predicted": {"latency_s": round(self.predicted_latency_s, 5),
                          "speedup": round(self.predicted_speedup, 4),
                          "serial_latency_s": round(self.predicted_serial_s, 5),
                          "comm_bytes_per_step": int(self.predicted_comm_bytes_per_step),
                          "memory_gb_per_gpu": round(self.predicted_memory_gb, 3)},
            "error": {"latency": round(_err(self.predicted_latency_s, self.latency_s), 4),
                      "speedup": round(_err(self.predicted_speedup, self.speedup), 4)},
            "fidelity": fid | {"psnr_inf": math.isinf(self.fidelity.get("psnr", 0.0))},
            "memory_peak_mb": [round(m, 1) for m in self.memory_peak_mb], "memory_method": self.memory_method,
            "comm_bytes": [int(b) for b in self.comm_bytes],
            "comm_seconds": [{k: round(v, 5) for k, v in d.items()} for d in self.comm_seconds],
            "extra": self.extra,
        } | ({"model_info": self.model_info} if self.model_info else {}) | (
            {"components": {k: round(v, 5) for k, v in self.components.items()}} if self.components else {})

    def table(self) -> str:
        j = self.to_json()
        m, p, e, f = j["measured"], j["predicted"], j["error"], self.fidelity
        psnr = "inf (identical)" if math.isinf(f["psnr"]) else f"{f['psnr']:.1f} dB"
        lines = [
            f"plan: {self.plan}   ({self.nproc} ranks, {self.backend}, {self.model}, {self.steps} steps, "
            f"median of {self.repeats})",
            f"{'':22}{'measured':>12}{'predicted':>12}{'error':>9}",
            f"{'latency':22}{m['latency_s']:>11.3f}s{p['latency_s']:>11.3f}s{e['latency']:>8.1%}",
            f"{'speed-up vs serial':22}{m['speedup']:>11.2f}x{p['speedup']:>11.2f}x{e['speedup']:>8.1%}",
            f"{'serial latency':22}{m['serial_latency_s']:>11.3f}s{p['serial_latency_s']:>11.3f}s",
            f"{'time per step':22}{m['step_s'] * 1e3:>10.1f}ms",
            f"fidelity vs serial: max rel err {f['max_rel_err']:.2e}, rel L2 {f['rel_l2']:.2e}, PSNR {psnr}"
            f"   ({'exact' if self.exact else 'approximate'} plan)",
            f"peak memory per rank ({self.memory_method}): " + ", ".join(f"{v:.0f} MB" for v in self.memory_peak_mb),
            "bytes sent per rank per run: " + ", ".join(f"{b / 2**20:.2f} MiB" for b in self.comm_bytes)
            + f"   (predicted {self.predicted_comm_bytes_per_step / 2**20:.2f} MiB per step)",
            "time in blocking collectives per rank per run: "
            + ", ".join(f"{sum(d.values()):.3f}s" for d in self.comm_seconds),
            f"hardware profile: {self.profile}",
        ]
        if self.model_info.get("pipeline"):
            mi = self.model_info
            lines.insert(1, f"model: {mi['pipeline']} ({mi['denoiser']}; text: {', '.join(mi['text_encoders'])}; "
                            f"VAE: {mi['vae']}), --scale {mi['scale']}, weights: {mi['weights']}")
        if self.components:
            c = self.components
            lines.append("outside the loop: " + ", ".join(
                f"{k.removesuffix('_s').replace('_', ' ')} {v:.3f}s" for k, v in c.items() if not k.startswith("serial")))
        if self.extra:
            lines.append("notes: " + "; ".join(f"{k}: {v}" for k, v in self.extra.items()))
        return "\n".join(lines)
