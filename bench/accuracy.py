"""Prediction accuracy on published runs: fit, leave-one-source-out, and BENCHMARKS.md.

    python bench/accuracy.py            # fit, save hw_profiles/calibrated/calibration.json, LOSO
    python bench/accuracy.py --no-loso  # skip the (slow) leave-one-source-out refits

Records mape, speedup_mape, top1, spearman and max_ape for the prior (unfitted)
parameters, the fitted ones, and leave-one-source-out, plus the out-of-memory check.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from planner import calibrate  # noqa: E402
from planner.hardware import CALIBRATED_FILE, Profile  # noqa: E402
from planner.validate import breakdown_table, evaluate, metrics, oom_metrics, read_rows  # noqa: E402

DATA = ROOT / "bench" / "data" / "calibration.csv"
OOM = ROOT / "bench" / "data" / "oom.csv"


def _fold(args):
    source, rows, x0, nfev = args
    train = [r for r in rows if r["source"] != source]
    held = [r for r in rows if r["source"] == source]
    f = calibrate.fit(train, x0=x0, max_nfev=nfev)
    return evaluate(held, Profile(calibration=f.calibration, name=f"loso:{source}"))


def summary(m: dict) -> dict:
    return {k: m[k] for k in ("rows", "evaluated", "mape", "max_ape", "speedup_mape", "top1", "top1_groups",
                              "spearman", "serial_mape", "error_split")} | {"skipped": len(m["skipped"])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-loso", action="store_true")
    ap.add_argument("--nfev", type=int, default=60, help="function evaluations of the full fit")
    ap.add_argument("--loso-nfev", type=int, default=20, help="per leave-one-source-out refit")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    rows = read_rows(DATA)
    oom_rows = read_rows(OOM, oom=True)
    t0 = time.time()
    prior = metrics(evaluate(rows, Profile()))
    fit = calibrate.fit(rows, max_nfev=args.nfev)
    fitted_profile = Profile(calibration=fit.calibration, name="calibrated")
    fitted = metrics(evaluate(rows, fitted_profile))
    oom = oom_metrics(evaluate(oom_rows, fitted_profile))
    fit_s = time.time() - t0
    result = {"prior": summary(prior), "fitted": summary(fitted), "free_parameters": len(fit.names),
              "oom": {"cases": oom["rows"], "predicted_oom": oom["predicted_oom"], "rows": oom["rows_detail"]},
              "successful_runs_predicted_oom": fitted["predicted_oom"], "fit_seconds": round(fit_s, 1),
              "skipped": fitted["skipped"], "at_bounds": calibrate.bound_hits(fit.values),
              "tables": {k: fitted[k] for k in ("per_family", "per_model", "per_strategy")},
              "top1_misses": fitted["top1_misses"]}
    if not args.no_loso:
        t1 = time.time()
        sources = sorted({r["source"] for r in rows})
        jobs = [(s, rows, fit.values, args.loso_nfev) for s in sources]
        with ProcessPoolExecutor(args.workers) as pool:
            held = [r for part in pool.map(_fold, jobs) for r in part]
        loso = metrics(held)
        result["loso"] = summary(loso) | {"per_source": [{k: s[k] for k in ("source", "rows", "mape")}
                                                          for s in loso["per_source"]]}
        result["loso_tables"] = {k: loso[k] for k in ("per_family", "per_model", "per_strategy")}
        result["loso_seconds"] = round(time.time() - t1, 1)
    calibrate.save(fit, DATA, CALIBRATED_FILE, extra={"benchmark": {k: v for k, v in result.items()
                                                                     if k in ("prior", "fitted", "loso")}})
    print(json.dumps(result, indent=1))
    write_benchmarks(result, fit)
    return 0


def write_benchmarks(r: dict, fit) -> None:
    commit = common.commit()
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"
    num = lambda x: "n/a" if x is None else f"{x:.2f}"
    lines = [f"## Prediction accuracy on published runs ({datetime.date.today()}, commit {commit})", "",
             f"`python bench/accuracy.py` on bench/data/calibration.csv ({r['fitted']['rows']} rows, "
             f"{r['fitted']['evaluated']} evaluated, {r['fitted']['skipped']} skipped with reasons by "
             f"`cli.py validate`). {r['free_parameters']} free parameters "
             f"(planner/calibrate.py), fitted in {r['fit_seconds']} s.", "",
             "| parameters | MAPE | speed-up MAPE | top-1 | Spearman | max APE | serial rows MAPE |",
             "|---|---|---|---|---|---|---|"]
    for key, label in (("prior", "prior (datasheets + sourced kernel efficiencies)"), ("fitted", "fitted on all rows"),
                       ("loso", "leave one source out")):
        if key in r:
            m = r[key]
            lines.append(f"| {label} | {pct(m['mape'])} | {pct(m['speedup_mape'])} | {num(m['top1'])} "
                         f"({m['top1_groups']} groups) | {num(m['spearman'])} | {pct(m['max_ape'])} | "
                         f"{pct(m['serial_mape'])} |")
    lines += ["", "Targets (issue 14): fitted MAPE <= 10%, leave-one-source-out MAPE <= 14%, speed-up MAPE <= 10%, "
              "top-1 >= 0.85 (groups keyed by model, GPU, count, resolution, frames, steps, compile and scope).", ""]
    for key, label in (("fitted", "fitted"), ("loso", "leave one source out")):
        if key in r:
            e = r[key]["error_split"]
            lines.append(f"Error split ({label}): over {e['rows']} parallel rows with a serial baseline, mean "
                         f"|log(predicted/measured)| {num(e['total'])}; its baseline's {num(e['serial'])}, its "
                         f"speed-up's {num(e['speedup'])}.")
    lines += ["", f"Out-of-memory check (bench/data/oom.csv): {r['oom']['predicted_oom']} of {r['oom']['cases']} "
              f"published OOM cases predicted not to fit; published successful runs predicted OOM: "
              f"{len(r['successful_runs_predicted_oom'])} {r['successful_runs_predicted_oom'] or ''}.", ""]
    lines += [f"- {d['id']} `{d['plan']}`: {d['memory_gb']:.1f} GiB per GPU, "
              f"{'fits' if d['fits'] else 'OOM'}" for d in r["oom"]["rows"]]
    lines.append("")
    skipped = r.get("skipped") or []
    lines.append(f"Skipped rows: {len(skipped)}." + ("" if not skipped else ""))
    lines += [f"- {s['id']}: {s['reason']}" for s in skipped]
    lines.append("")
    bounds = r.get("at_bounds") or []
    lines.append(f"Parameters at a bound: {len(bounds)}" + (":" if bounds else "."))
    lines += [f"- {b['parameter']} = {b['value']:.4g} at its {b['bound']} bound ({b['bound_value']:.4g}): {b['means']}"
              for b in bounds]
    lines.append("")
    for key, title in (("per_family", "GPU family"), ("per_model", "model"), ("per_strategy", "strategy")):
        lines += [f"Fitted, per {title}:", ""] + breakdown_table(r["tables"][key], title) + [""]
        if "loso_tables" in r:
            lines += [f"Leave one source out, per {title}:", ""] + breakdown_table(r["loso_tables"][key], title) + [""]
    if "loso" in r:
        lines += ["Leave-one-source-out MAPE per source:", ""]
        lines += [f"- {s['source']}: {pct(s['mape'])} ({s['rows']} rows)" for s in r["loso"]["per_source"]]
        lines.append("")
    lines += ["Fitted parameters: " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(fit.values.items())), ""]
    common.replace_section("## Prediction accuracy on published runs", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
