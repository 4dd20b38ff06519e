"""Maintainer tool: regenerate hw_profiles/gpus/*.json and hw_profiles/links/*.json from
the project's research tables (../shared/data/gpus.csv, links.csv).

Not used at run time: the planner only reads the JSON files this writes. Run it from the
repository root when the tables change:  python hw_profiles/import_shared.py

Each file keeps the table's source URLs and notes. Values the tables lack are marked
ASSUMED with the reason, in the file itself.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"

# GPU family: the unit that calibrated efficiency factors are fitted for. GPUs of one
# family share the silicon that sets the fraction of peak they reach: SM design and
# tensor-core generation, and also the fp32-accumulate rate (GeForce and the L20/L40 run
# it at half rate, so their datasheet peak is already the half-rate figure and cuBLAS
# reaches ~100% of it, against ~80% for full-rate pro cards), compute caps (H20: ~15% of
# H100's FLOP/s) and the attention kernel available (no FlashAttention before sm80).
FAMILY = {
    "v100-sxm2-32gb": "volta",
    "a100-sxm4-40gb": "ampere-dc", "a100-sxm4-80gb": "ampere-dc", "a100-pcie-80gb": "ampere-dc",
    "a800-sxm4-80gb": "ampere-dc",
    "rtx3090": "ampere-geforce", "rtx-a5000": "ampere-pro", "rtx-a6000": "ampere-pro", "a10": "ampere-pro",
    "l40": "ada-dc", "l4": "ada-dc", "l20": "ada-dc", "l40s": "ada-l40s", "rtx4090": "ada-geforce",
    "t4": "turing", "rtx2080ti": "turing-geforce",
    "h100-sxm5-80gb": "hopper", "h100-pcie-80gb": "hopper", "h200-sxm-141gb": "hopper",
    "h800-sxm5-80gb": "hopper", "h20": "hopper-h20",
    "b200": "blackwell", "mi250x": "cdna2", "mi300x": "cdna3",
}


# Placeholder efficiency curves for a GPU file written for the first time; the shipped
# files carry sourced priors per class (published kernel benchmarks, each with its
# source), which a re-import keeps. Prior efficiency curves: fraction of peak against op
# size, per op class, used until a calibration or a measured profile replaces them. Form: an op of size s (FLOPs, or bytes
# for memory-bound classes) takes s / (peak * e_max) + t0, i.e. efficiency
# e_max * s / (s + e_max * peak * t0). ASSUMED values, typical of eager PyTorch on
# datacenter GPUs (cuBLAS GEMMs ~70% of dense peak, implicit-GEMM convs lower,
# flash/mem-efficient attention ~50%); the calibration fits them per family.
PRIOR_CURVES = {
    "gemm": {"e_max": 0.70, "t0_us": 6.0},
    "conv": {"e_max": 0.55, "t0_us": 8.0},
    "attn": {"e_max": 0.50, "t0_us": 10.0},
    "mem": {"e_max": 0.70, "t0_us": 3.0},
}


# How torch names each GPU (torch.cuda.get_device_name, the CUDA/HIP device property
# `name`, which nvidia-smi prints too): regular expressions searched in the lower-cased
# name, written so that each real name matches exactly one file (tests/test_gpu_names.py
# checks them against real names). A variant with other memory or links (A100 PCIe 40GB,
# V100 16GB, H100 NVL, H200 NVL, RTX 3090 Ti) matches none, so it is refused rather than
# planned as the wrong card; the executor and the profiler share the lookup
# (planner.hardware.gpu_id_for_device_name).
DEVICE_NAMES = {
    "a10": [r"\ba10\b"],                                  # NVIDIA A10 (not A10G)
    "a100-pcie-80gb": [r"\ba100 80gb pcie\b", r"\ba100-pcie-80gb\b"],
    "a100-sxm4-40gb": [r"\ba100-sxm4?-40gb\b"],
    "a100-sxm4-80gb": [r"\ba100-sxm4?-80gb\b"],
    "a800-sxm4-80gb": [r"\ba800-sxm4?-80gb\b"],
    "b200": [r"\bb200\b"],
    "h100-pcie-80gb": [r"\bh100 pcie\b"],
    "h100-sxm5-80gb": [r"\bh100 80gb hbm3\b", r"\bh100 sxm5? ?80gb\b"],
    "h20": [r"\bh20\b(?!-)"],                             # NVIDIA H20 (not the 141 GB H20-3e)
    "h200-sxm-141gb": [r"\bh200\b(?! nvl)"],
    "h800-sxm5-80gb": [r"\bh800\b(?! pcie)"],
    "l20": [r"\bl20\b"],
    "l4": [r"\bl4\b"],
    "l40": [r"\bl40\b"],
    "l40s": [r"\bl40s\b"],
    "mi250x": [r"\bmi250x\b"],                            # AMD Instinct MI250X (one GCD per device)
    "mi300x": [r"\bmi300x\b"],
    "rtx-a5000": [r"\brtx a5000\b"],
    "rtx-a6000": [r"\brtx a6000\b"],
    "rtx2080ti": [r"\brtx 2080 ti\b"],
    "rtx3090": [r"\brtx 3090\b(?! ti)"],
    "rtx4090": [r"\brtx 4090\b(?! d\b)"],
    "t4": [r"\bt4\b"],                                    # Tesla T4
    "v100-sxm2-32gb": [r"\bv100-sxm2-32gb\b"],
}


def _num(s: str) -> float | None:
    s = (s or "").strip()
    return float(s) if s else None


def gpu_files() -> None:
    out = HERE / "gpus"
    out.mkdir(exist_ok=True)
    for row in csv.DictReader(open(SHARED / "gpus.csv")):
        peaks = {}
        for key, col in (("bf16", "peak_dense_bf16_tflops"), ("fp16", "peak_dense_fp16_tflops"),
                         ("fp32", "peak_fp32_tflops"), ("tf32", "peak_tf32_tflops"),
                         ("fp8", "peak_fp8_tflops")):
            v = _num(row[col])
            if v is not None:
                peaks[key] = v
        # Volta and Turing have no bf16 units: no bf16 peak, so `plan --dtype bf16` is refused
        # there and the default dtype is fp16 (planner.inputs.default_dtype)
        notes = row["notes"]
        doc = {
            "id": row["id"],
            "name": row["gpu"],
            "family": FAMILY[row["id"]],
            "memory_gib": _num(row["mem_GiB"]),
            "memory_bw_gbps": _num(row["hbm_bw_GBps"]),
            "peak_tflops": peaks,
            "sm_count": _num(row["sm_count"]),
            "l2_mb": _num(row["l2_MB"]),
            "intra_node_link": row["intra_node_link"],
            "nvlink_gbps_per_direction": _num(row["nvlink_bw_GBps_per_direction_per_gpu"]),
            "pcie_gen": int(_num(row["pcie_gen"]) or 4),
            "tdp_w": _num(row["tdp_W"]),
            "efficiency": {"form": "t = s/(peak*e_max) + t0", "prior": True,
                           "why": "ASSUMED prior until calibrated or profiled", **PRIOR_CURVES},
            "device_names": DEVICE_NAMES[row["id"]],
            "source": row["source"],
            "notes": notes,
        }
        path = out / f"{row['id']}.json"
        if path.exists():     # keep the sourced priors written into the file
            doc["efficiency"] = json.loads(path.read_text()).get("efficiency", doc["efficiency"])
        path.write_text(json.dumps(doc, indent=1) + "\n")


# What the cost model uses per link id: effective bandwidth per direction (GB/s) and
# per-hop latency (us). Chosen from the table rows above, with the reason kept in the file.
# "from_gpu" links (NVSwitch ports, NVLink bridges) take the GPU's own NVLink bandwidth
# (gpus.csv nvlink_bw_GBps_per_direction_per_gpu) times `efficiency`, because the same
# link id means 300 GB/s on an A100 and 200 GB/s on an A800.
LINK_MODEL = {
    "pcie3": {"bw_gbps": 12.0, "latency_us": 5.7,
              "why": "NCCL PCI_BW model for Gen3 x16 = typical measured H2D; latency: NCCL Simple PCI hop"},
    "pcie4": {"bw_gbps": 25.1, "latency_us": 5.7,
              "why": "nvbandwidth H2D 25.1 GB/s; NCCL model 24; latency: NCCL Simple PCI hop"},
    "pcie5": {"bw_gbps": 48.0, "latency_us": 5.7,
              "why": "NCCL model value for Gen5 x16 (measured 35-53 depending on direction)"},
    "nvswitch": {"from_gpu": "nvlink_gbps_per_direction", "efficiency": 0.8, "latency_us": 3.4,
                 "why": "NCCL ring busbw reaches ~80% of NVLink: 240/300 (A100), 370/450 (H100); "
                        "latency: NCCL Simple NVLink hop"},
    "nvlink-bridge": {"from_gpu": "nvlink_gbps_per_direction", "efficiency": 0.85, "latency_us": 3.4,
                      "why": "NCCL model 48/56.25 GB/s for GA102 bridges"},
    "ib-hdr": {"bw_gbps": 24.0, "latency_us": 14.0,
               "why": "nccl-tests busbw per HDR port at peak; latency: NCCL NET Simple hop"},
    "ib-ndr": {"bw_gbps": 48.0, "latency_us": 14.0,
               "why": "ASSUMED: 96% of the 50 GB/s line rate, the ratio HDR reaches"},
    "roce": {"bw_gbps": 12.2, "latency_us": 14.0,
             "why": "RoCE v2 100 GbE WRITE measured 97.5 Gb/s (the most common speed in the table)"},
}

# Links the tables do not have, but which the id vocabulary needs.
EXTRA_LINKS = {
    "ethernet": {"id": "ethernet", "variants": [], "model": {
        "bw_gbps": 2.8, "latency_us": 30.0,
        "why": "ASSUMED (links.csv has no ethernet row): 25 GbE with NCCL's socket transport, "
               "about 90% of the 3.125 GB/s line rate; latency of a TCP hop through one switch. "
               "Give a cluster file with the real bandwidth where it differs."}},
    "upi": {"id": "upi", "variants": [], "model": {
        "bw_gbps": 10.0, "latency_us": 10.0,
        "why": "ASSUMED (links.csv: 'its cross-socket bandwidth was not found'): GPU peer traffic "
               "between CPU sockets goes through host memory over QPI/UPI; ~10 GB/s per direction "
               "is typical of such staged copies. Calibration fits its efficiency on the 8xL40/L20 "
               "2-socket runs."}},
}


def link_files() -> None:
    """One file per intra/inter id. Ids that links.csv lists several times (NVSwitch
    generations, bridge and RoCE speeds) keep every row as a variant."""
    out = HERE / "links"
    out.mkdir(exist_ok=True)
    rows: dict[str, list[dict]] = {}
    for row in csv.DictReader(open(SHARED / "links.csv")):
        if row["id"]:
            rows.setdefault(row["id"], []).append(row)
    for link_id, variants in rows.items():
        docs = []
        for r in variants:
            docs.append({
                "name": r["link"],
                "category": r["category"],
                "theoretical_gbps_per_direction": _num(r["per_direction_GBps_theoretical"]),
                "measured_gbps": _num(r["typical_measured_GBps"]),
                "measured_what": r["measured_what"],
                "latency_us": r["latency_us"],
                "latency_what": r["latency_what"],
                "source": r["source"],
            })
        doc = {"id": link_id, "model": LINK_MODEL[link_id], "variants": docs}
        (out / f"{link_id}.json").write_text(json.dumps(doc, indent=1) + "\n")
    for link_id, doc in EXTRA_LINKS.items():
        (out / f"{link_id}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if not SHARED.exists():
        sys.exit(f"error: {SHARED} not found; this tool needs the research tables beside the repo")
    gpu_files()
    link_files()
    print("wrote", len(list((HERE / "gpus").glob("*.json"))), "gpu files and",
          len(list((HERE / "links").glob("*.json"))), "link files")
