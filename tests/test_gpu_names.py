"""torch's device names map to the right hw_profiles/gpus file, from the "device_names"
patterns in each file, for the profiler and the executor alike (issue 13: the executor's
own matcher took "NVIDIA H200" for an H20, "NVIDIA L40" for an L4 and "NVIDIA
A100-SXM4-80GB" for an A10)."""
from __future__ import annotations

import pytest

from planner.hardware import HardwareError, gpu_id_for_device_name, gpu_ids

# (torch.cuda.get_device_name, total_memory in GiB as torch reports it, file id)
REAL = [
    ("NVIDIA H100 80GB HBM3", 79.1, "h100-sxm5-80gb"), ("NVIDIA H100 PCIe", 79.6, "h100-pcie-80gb"),
    ("NVIDIA A100-SXM4-80GB", 79.2, "a100-sxm4-80gb"), ("NVIDIA A100-SXM4-40GB", 39.4, "a100-sxm4-40gb"),
    ("NVIDIA A100 80GB PCIe", 79.2, "a100-pcie-80gb"), ("NVIDIA H200", 139.8, "h200-sxm-141gb"),
    ("NVIDIA H20", 95.0, "h20"), ("NVIDIA L40", 44.5, "l40"), ("NVIDIA L40S", 44.4, "l40s"),
    ("NVIDIA L20", 44.5, "l20"), ("NVIDIA L4", 22.0, "l4"), ("Tesla T4", 14.6, "t4"),
    ("Tesla V100-SXM2-32GB", 31.7, "v100-sxm2-32gb"), ("NVIDIA GeForce RTX 3090", 23.7, "rtx3090"),
    ("NVIDIA GeForce RTX 4090", 23.6, "rtx4090"), ("NVIDIA GeForce RTX 2080 Ti", 10.7, "rtx2080ti"),
    ("NVIDIA RTX A5000", 23.7, "rtx-a5000"), ("NVIDIA RTX A6000", 47.5, "rtx-a6000"), ("NVIDIA A10", 22.1, "a10"),
    ("NVIDIA A800-SXM4-80GB", 79.2, "a800-sxm4-80gb"), ("NVIDIA H800", 79.1, "h800-sxm5-80gb"),
    ("NVIDIA B200", 178.4, "b200"), ("AMD Instinct MI300X", 191.5, "mi300x"),
    ("AMD Instinct MI250X", 64.0, "mi250x"), ("AMD Instinct MI250X / MI250", 64.0, "mi250x"),
]
# cards without a file of their own: refused, never planned as a similar card
OTHERS = ["NVIDIA A100-PCIE-40GB", "Tesla V100-SXM2-16GB", "NVIDIA H100 NVL", "NVIDIA H200 NVL",
          "NVIDIA GeForce RTX 3090 Ti", "NVIDIA A10G", "NVIDIA H800 PCIe", "NVIDIA RTX 6000 Ada Generation",
          "NVIDIA GeForce RTX 4080", "Voodoo 5 6000", ""]


@pytest.mark.parametrize("name, mem, gid", REAL)
def test_real_device_names(name, mem, gid):
    assert gpu_id_for_device_name(name, mem) == gid
    assert gpu_id_for_device_name(name) == gid          # the name alone suffices


def test_every_gpu_file_is_reachable():
    assert {g for _, _, g in REAL} == set(gpu_ids()) - {"cpu"}


@pytest.mark.parametrize("name", OTHERS)
def test_other_cards_are_refused(name):
    with pytest.raises(HardwareError, match="not in hw_profiles/gpus"):
        gpu_id_for_device_name(name, 40.0)


def test_profiler_and_executor_share_the_matcher(monkeypatch):
    """Both read torch's name of device 0 and give the same id."""
    import argparse

    import torch

    from executor.cli import _gpu_id
    from profiler.device import device_gpu_id
    for name, mem, gid in REAL:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0, n=name: n)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda i=0, m=mem: argparse.Namespace(total_memory=m * 2**30))
        assert device_gpu_id("cuda") == gid
        assert _gpu_id(argparse.Namespace(gpu=None), "nccl") == gid
