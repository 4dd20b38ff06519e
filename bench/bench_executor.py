"""Measured against predicted speed-up of every strategy at 2 ranks on this machine (CPU,
gloo, one thread per rank), on the reference "s" presets where compute dominates.

    python bench/bench_executor.py                 # every case, 3 timed repeats each
    python bench/bench_executor.py --only cfg=2,ulysses=2 --repeats 1 --no-write

Writes the "## Executor: measured vs predicted speed-up" section of BENCHMARKS.md (date,
git commit, machine, hardware profile, load average before and after: other processes on
the machine skew every number). Targets: measured speed-up within 15% of the predicted
one for every strategy; cfg=2 at 1.8x or better. usp (ulysses x ring) needs 4 ranks and
is not a 2-rank case; its correctness is covered by tests/test_executor.py.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from executor.cli import DEFAULT_TOLERANCE  # noqa: E402
from executor.experiment import hw_profile, local_cluster, measure, prepare, run_serial  # noqa: E402
from planner import zoo  # noqa: E402
from planner.spec import Scenario  # noqa: E402

SECTION = "## Executor: measured vs predicted speed-up"
TOLERANCE = 0.15
# (plan, model, batch): every strategy on the DiT, dsp on the video DiT (the only kind of
# model it applies to), and the main strategies on the MM-DiT and the U-Net too.
CASES = [(p, "ref-dit-s", 1) for p in (
    "cfg=2", "ulysses=2", "ring=2", "tp=2", "sync_patch=2", "distrifusion=2", "naive_patch=2", "pipefusion=2",
    "asyncdiff=2", "paradigms=2", "parastep=2", "hybridiff=2")] + [
    ("dp=2", "ref-dit-s", 2), ("dsp=2", "ref-video-s", 1)] + [
    (p, m, 1) for m in ("ref-mmdit-s", "ref-unet-s") for p in ("cfg=2", "ulysses=2", "pipefusion=2", "distrifusion=2")]


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    return f"{cpu}, {len(__import__('os').sched_getaffinity(0))} cores, {platform.system()} {platform.release()}, torch {torch.__version__}"


def loadavg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def replace_section(path: Path, body: str) -> None:
    """Replace this script's section of BENCHMARKS.md (up to the next '## ') or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip() + "\n\n" + body + "\n"
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + ("\n" + text[end + 1:] if end >= 0 else "\n")
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="comma-separated plans to run (default: all cases)")
    ap.add_argument("--models", help="comma-separated models (default: all cases)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    cases = [c for c in CASES if (not args.only or c[0] in args.only.split(","))
             and (not args.models or c[1] in args.models.split(","))]
    profile = hw_profile()
    cluster = local_cluster(2)
    load0, t0 = loadavg(), time.time()
    serial: dict = {}
    rows = []
    for plan, model, batch in cases:
        f = zoo.facts(model)
        sc = Scenario(model=model, height=f.default_height, width=f.default_width, frames=f.default_frames,
                      steps=f.default_steps, batch=batch, dtype="fp32", scope="denoise")
        spec = zoo.build(model, sc.height, sc.width, sc.frames)
        prep = prepare(spec, sc, plan, cluster, profile, repeats=args.repeats, warmup_runs=1,
                       tolerance=DEFAULT_TOLERANCE)
        key = (model, batch)
        if key not in serial:
            serial[key] = run_serial(prep.job)
        m = measure(prep, 2, serial=serial[key], timeout_s=300)
        j = m.to_json()
        err = j["error"]["speedup"]
        psnr = "exact" if m.fidelity["max_rel_err"] < 1e-5 else f"{m.fidelity['psnr']:.1f} dB"
        rows.append((plan, model, batch, m.latency_s, m.serial_latency_s, m.speedup, m.predicted_speedup, err, psnr,
                     j["extra"]))
        print(f"{plan:16} {model:12} b{batch} {m.latency_s:7.2f}s serial {m.serial_latency_s:7.2f}s measured "
              f"{m.speedup:5.2f}x predicted {m.predicted_speedup:5.2f}x error {err:6.1%} {psnr} {j['extra'] or ''}",
              flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    lines = [SECTION, "",
             f"`python bench/bench_executor.py` on {datetime.date.today().isoformat()}, commit {commit} "
             f"(working tree), {machine()}; 2 ranks, gloo, one thread per rank, fp32, "
             f"median of {args.repeats} runs after one warm-up run; serial = one process, one thread. "
             f"Hardware profile: {getattr(profile, 'name', '?')}. Load average {load0} before, {loadavg()} after "
             f"({time.time() - t0:.0f} s). Target: |measured - predicted| / measured <= {TOLERANCE:.0%}; "
             f"cfg=2 >= 1.8x. Fidelity: 'exact' = max relative error < 1e-5, else PSNR against serial.", "",
             "| plan | model | batch | latency s | serial s | measured | predicted | error | within 15% | fidelity |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for plan, model, batch, lat, ser, meas, pred, err, psnr, extra in rows:
        note = "; ".join(f"{k} {v}" for k, v in extra.items())
        lines.append(f"| {plan} | {model} | {batch} | {lat:.2f} | {ser:.2f} | {meas:.2f}x | {pred:.2f}x | "
                     f"{err:.1%} | {'yes' if err <= TOLERANCE else 'no'} | {psnr}{' (' + note + ')' if note else ''} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
