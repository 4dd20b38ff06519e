"""Wall time of `python cli.py plan` (the default scenario), end to end: interpreter start,
imports, search and printing. Records the median of several runs in BENCHMARKS.md.

    python bench/plan_time.py [--runs 7]
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

SCENARIOS = [
    ("default scenario", []),
    ("Flux.1-dev 1024^2 on 8x H100 (NVSwitch)", ["--model", "flux.1-dev", "--gpu", "h100-sxm5-80gb", "--gpus", "8"]),
    ("SDXL 1024^2 on 4x A100 (NVSwitch)", ["--model", "sdxl", "--gpu", "a100-sxm4-80gb", "--gpus", "4"]),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rows = []
    for label, extra in SCENARIOS:
        walls, inner = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "plan", "--json", "--timings", *extra],
                               capture_output=True, text=True, cwd=ROOT)
            walls.append(time.perf_counter() - t)
            if r.returncode:
                raise SystemExit(r.stderr)
            out = json.loads(r.stdout)
            inner.append(out["seconds"])   # present with --timings
        rows.append((label, statistics.median(walls), statistics.median(inner), len(out["plans"]),
                     out["recommended"]["plan"] if out["recommended"] else "none"))
    commit = common.commit()
    lines = [f"## Plan time ({datetime.date.today()}, commit {commit})", "",
             f"`python bench/plan_time.py`: median of {args.runs} runs of `python cli.py plan --json` on "
             f"this machine ({platform.processor() or platform.machine()}, {os.cpu_count()} cores). Wall = the "
             f"whole command (interpreter, imports, search, output); search = inside the command.", "",
             "| scenario | wall | search | plans | recommended |", "|---|---|---|---|---|"]
    lines += [f"| {l} | {w:.2f} s | {s:.2f} s | {n} | `{p}` |" for l, w, s, n, p in rows]
    lines += ["", "Target: under 0.5 s for the default scenario (issue 13).", ""]
    common.replace_section("## Plan time", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
