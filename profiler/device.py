"""Which device is profiled, which GpuSpec id it is, and the provenance of a run.

The efficiencies of a profile are relative to a GpuSpec's datasheet peaks, so the
profiled device must be mapped to a known id of hw_profiles/gpus: "cpu" (the placeholder
the executor's CPU runs are planned on) for the host, and for CUDA the id whose file's
"device_names" match torch.cuda.get_device_name.
"""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import socket
import subprocess
import sys

from planner.cluster import default_intra
from planner.errors import UsageError
from planner.hardware import HardwareError, gpu_id_for_device_name, gpu_ids, load_gpu

def gpu_id_for_name(name: str, memory_gib: float | None = None) -> str:
    """The hw_profiles/gpus id of a CUDA device name (the "device_names" of the GPU files,
    planner.hardware.gpu_id_for_device_name, shared with the executor); UsageError if none fits."""
    try:
        return gpu_id_for_device_name(name, memory_gib, hint="pass --gpu-id")
    except HardwareError as e:
        raise UsageError(str(e)) from None


def resolve_device(device: str | None) -> str:
    import torch
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device {device}: accepted: cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (torch "
                         f"{torch.__version__}); use --device cpu")
    return device


def device_gpu_id(device: str, override: str | None = None) -> str:
    """GpuSpec id of the profiled device (--gpu-id overrides the name lookup)."""
    if override is not None:
        if override not in gpu_ids():
            raise UsageError(f"--gpu-id {override}: unknown; known: {', '.join(gpu_ids())}")
        return override
    if device == "cpu":
        return "cpu"
    import torch
    props = torch.cuda.get_device_properties(0)
    return gpu_id_for_name(torch.cuda.get_device_name(0), props.total_memory / 2**30)


def default_link(device: str, gpu_id: str) -> str:
    """The link id the measured collectives stand for: "shm" between processes of one
    host on CPU; for GPUs the intra link such a node usually has (planner.cluster)."""
    if device == "cpu":
        return "shm"
    return default_intra((load_gpu(gpu_id),))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def provenance(device: str, threads: int | None, backend: str | None, argv: list[str] | None) -> dict:
    """Where and how the profile was measured (kept in the file, never used by the planner)."""
    import torch
    prov = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "backend": backend,
        "command": shlex.join(argv if argv is not None else [os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    if device == "cuda":
        prov |= {"device_name": torch.cuda.get_device_name(0), "device_count": torch.cuda.device_count(),
                 "cuda": torch.version.cuda, "driver": _nvidia_driver()}
    else:
        prov |= {"device_name": prov["cpu_model"], "device_count": 1}
    return prov
