"""Full search time, integer programs included, from 2 to 1,024 GPUs.

    python bench/search_time.py [--runs 3] [--only LABEL]

Each scenario runs in a fresh interpreter (cold caches: routes, op tables, patterns, as a
user's first `cli.py plan`), and the time is planner.search.search() itself: enumerate,
predict, re-place the top plans (placement program), and the switching schedule
(schedule program). Imports and printing are left out (bench/plan_time.py has those).
Writes its own section "## Search time" of BENCHMARKS.md with the date and commit.

Targets: <= 1 s for 8 GPUs, <= 10 s for 64 (issue 6), < 5 s for 1,024 (128 nodes x 8; issue 13).
Scenarios are chosen so that legal plans exist: the large video case uses Wan2.1-14B at
512x512 with 125 frames (32 latent frames x 32 rows = 1,024 rows, divisible by every
power of two up to 1,024) and a batch of 8 so data parallelism can absorb GPUs.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402

# label, target seconds (None: informative), scenario, cluster, search options
SCENARIOS = [
    ("8x L40 PCIe, two sockets: PixArt-alpha 1024^2 (the default scenario)", 1.0,
     dict(model="pixart-alpha"), dict(gpu="l40", gpus=8, intra="pcie4-2socket"), {}),
    ("8x L40 PCIe, two sockets: SDXL 1024^2", 1.0,
     dict(model="sdxl"), dict(gpu="l40", gpus=8, intra="pcie4-2socket"), {}),
    ("2x RTX 3090 PCIe 3: SDXL 1024^2 (switching schedule)", 1.0,
     dict(model="sdxl"), dict(gpu="rtx3090", gpus=2, intra="pcie3"), {}),
    ("2x RTX 3090 + 2x RTX 4090 (cluster file): SD3-medium", 1.0,
     dict(model="sd3-medium"), dict(file="3090+4090"), {}),
    ("2 nodes x 8 L40 over Ethernet: Flux.1-dev, exact plans (placement)", None,
     dict(model="flux.1-dev"), dict(gpu="l40", gpus=16, nodes=2, intra="pcie4-2socket", inter="ethernet"),
     dict(exact_only=True)),
    ("8 nodes x 8 H100, IB NDR: Wan2.1-14B 512^2 x 125 frames", 10.0,
     dict(model="wan2.1-t2v-14b", height=512, width=512, frames=125),
     dict(gpu="h100-sxm5-80gb", gpus=64, nodes=8, intra="nvswitch", inter="ib-ndr"), {}),
    ("128 nodes x 8 H100, IB NDR: Wan2.1-14B 512^2 x 125 frames, batch 8", 5.0,
     dict(model="wan2.1-t2v-14b", height=512, width=512, frames=125, batch=8),
     dict(gpu="h100-sxm5-80gb", gpus=1024, nodes=128, intra="nvswitch", inter="ib-ndr"), {}),
]


def inputs(scen: dict, clus: dict):
    """(ModelSpec, Scenario, Cluster) of one scenario row."""
    from planner import zoo
    from planner.cluster import build_cluster, load_cluster_file
    from planner.spec import Scenario
    f = zoo.facts(scen["model"])
    sc = Scenario(model=scen["model"], height=scen.get("height", f.default_height),
                  width=scen.get("width", f.default_width), frames=scen.get("frames", f.default_frames),
                  steps=f.default_steps, batch=scen.get("batch", 1), cfg=f.cfg_default)
    model = zoo.build(sc.model, sc.height, sc.width, sc.frames)
    cluster = load_cluster_file(clus["file"]) if "file" in clus else \
        build_cluster(clus["gpu"], clus["gpus"], clus.get("nodes", 1), clus["intra"], clus.get("inter", "none"))
    return model, sc, cluster


def one(index: int) -> dict:
    """Run scenario `index` in this (fresh) process; return the measurements."""
    from planner.hardware import default_profile
    from planner.search import search
    label, target, scen, clus, opts = SCENARIOS[index]
    profile = default_profile()
    t0 = time.perf_counter()
    model, sc, cluster = inputs(scen, clus)
    res = search(model, sc, cluster, profile, **opts)
    seconds = time.perf_counter() - t0
    rec = res.recommended
    pl = res.placement_of(rec.plan) if rec else None
    moved = pl is not None and pl.moved
    return {"seconds": seconds, "ilp_seconds": res.ilp_seconds, "gpus": cluster.n, "considered": res.considered,
            "predicted": len(res.ranked), "recommended": str(rec.plan) if rec else "none",
            "speedup": rec.speedup if rec else 0.0, "placement_gain": round(pl.gain, 4) if moved else 0.0,
            "placement_order": " < ".join(pl.order) if moved else "",
            "schedule": str(res.schedule.plan) if res.schedule else ""}


def measure(index: int, runs: int) -> dict:
    outs = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, __file__, "--one", str(index)], capture_output=True, text=True,
                           cwd=ROOT)
        if r.returncode:
            raise SystemExit(f"{SCENARIOS[index][0]}: {r.stderr.strip().splitlines()[-1:]}")
        outs.append(json.loads(r.stdout))
    best = dict(outs[0])
    best["seconds"] = statistics.median(o["seconds"] for o in outs)
    best["ilp_seconds"] = statistics.median(o["ilp_seconds"] for o in outs)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario; the median is kept (1,024 GPUs: 1)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--only", help="scenarios whose label contains this (no BENCHMARKS.md update)")
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return 0
    rows = []
    for i, (label, target, *_rest) in enumerate(SCENARIOS):
        if args.only and args.only not in label:
            continue
        m = measure(i, 1 if "1024" in str(SCENARIOS[i][3].get("gpus")) else args.runs)
        ok = "" if target is None else ("yes" if m["seconds"] <= target else "**no**")
        rows.append((label, target, ok, m))
        print(f"{m['seconds']:7.2f} s  (ILP {m['ilp_seconds']:.2f} s)  {label}: {m['recommended']}", flush=True)
    if args.only:
        return 0
    commit = common.commit()
    lines = [f"## Search time ({datetime.date.today()}, commit {commit})", "",
             f"`python bench/search_time.py`: planner.search.search() in a fresh interpreter per scenario "
             f"(median of {args.runs} runs; 1,024 GPUs: one run) on this machine "
             f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores): enumeration, prediction, "
             f"placement program on the top plans, switching-schedule program; cluster construction and "
             f"routing included, imports excluded. Profile: the default (datasheet + committed calibration).", "",
             "| scenario | GPUs | search | of which ILP | target | met | candidates | ranked | recommended "
             "| speed-up | placement gain |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(plan: str) -> str:       # a schedule's "|" would end the table cell
        return "`" + plan.replace("|", "\\|") + "`"
    for label, target, ok, m in rows:
        tgt = f"<= {target:g} s" if target else "-"
        # gains below 0.05% are ties (no placement order is named for them)
        gain = f"{m['placement_gain']:.1%} ({m['placement_order']})" if m["placement_order"] else "0"
        lines.append(f"| {label} | {m['gpus']} | {m['seconds']:.2f} s | {m['ilp_seconds']:.2f} s | {tgt} | "
                     f"{ok or '-'} | {m['considered']} | {m['predicted']} | {cell(m['recommended'])} | "
                     f"{m['speedup']:.2f}x | {gain} |")
    lines += ["", "Candidates: plans enumerated (legal or not); ranked: legal plans predicted, plus the "
              "switching schedule when one is proposed (plans with ` | ` are schedules). Placement gain: "
              "xDiT's fixed order over the chosen one for the recommended plan (predicted latency ratio - 1).", ""]
    common.replace_section("## Search time", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
