"""Predicted against published latencies: `python cli.py validate --data FILE`.

FILE follows ../shared/data/published/calibration.csv (schema in that folder's README):
one published run per row, with its plan string. Each row becomes a scenario and a
cluster; exactly the row's plan is evaluated, honouring `compile` and `scope`. A row that
cannot be evaluated is listed with its reason, never dropped silently.

Conventions for blank fields (the sources do not say):
- compile and scope blank -> the source's harness decides (planner/conventions.py: one
  rule per source, read from its timing code); each row's resolved values are what the
  speed-up pairs and the ranking groups are keyed by, so no group mixes eager with
  compiled runs or the loop alone with the whole pipeline.
- intra blank (some 1-GPU rows) -> the GPU's default link (it does not matter for 1 GPU).

metrics() reports the error overall, per GPU family, per model and per strategy, and
splits each parallel row's error into its serial baseline's error and its speed-up's.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cluster import build_cluster
from .conventions import Convention, resolve
from .cost.predict import predict
from .errors import UsageError
from .hardware import HardwareError, Profile
from .legality import plan_errors
from .limits import BOUNDS, Bound, parse_int, parse_real, show
from .plan import PlanError, parse_plan

COLUMNS = ("id", "source", "model", "gpu", "gpus", "nodes", "intra", "inter", "height", "width", "frames",
           "steps", "cfg", "plan", "compile", "scope", "latency_s")
# Ranking groups: the same run but for the plan (any source: a better plan from another
# paper on the same setup counts); compile and scope are the resolved conventions.
GROUP_KEYS = ("model", "gpu", "gpus", "height", "width", "frames", "steps", "compile", "scope")
# A parallel row's speed-up is over the serial row of the same source and scenario
SCENARIO_KEYS = ("source", "model", "gpu", "height", "width", "frames", "steps", "compile", "scope")


@dataclass
class RowResult:
    row: dict
    predicted_s: float | None = None
    fits: bool | None = None
    reason: str | None = None
    memory_gb: float | None = None
    convention: Convention | None = None

    def key(self, names) -> tuple:
        """The row's values of `names`, with compile and scope as resolved (conventions)."""
        conv = self.convention or resolve(self.row)
        resolved = {"compile": str(int(conv.compiled)), "scope": conv.scope}
        return tuple(resolved.get(k, self.row.get(k, "")) for k in names)

    @property
    def measured_s(self) -> float | None:
        try:
            return float(self.row["latency_s"])
        except ValueError:
            return None

    @property
    def ape(self) -> float:
        return abs(self.predicted_s - self.measured_s) / self.measured_s


@dataclass
class Report:
    rows: list[RowResult]
    metrics: dict = field(default_factory=dict)


def read_rows(path: str | Path, oom: bool = False) -> list[dict]:
    """Rows of a calibration-schema CSV; UsageError (one line) if it is not one: a missing
    column, a row with more or fewer fields than the header, no rows at all, or a
    latency_s that is not a finite positive number (OOM in an out-of-memory file)."""
    if not str(path).strip():
        raise UsageError(f"{show(str(path))}: give a CSV file of published runs")
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{path}: not a calibration-schema CSV: missing column(s) {', '.join(missing)}")
            rows = []
            for r in reader:
                if None in r or None in r.values():      # DictReader's marks of extra / missing fields
                    got = len(r) - (None in r) + len(r.get(None) or []) - sum(v is None for v in r.values())
                    raise UsageError(f"{path}:{reader.line_num}: {got} fields, but the header has "
                                     f"{len(reader.fieldnames)}")
                bad = next((k for k, v in r.items() if not v.isprintable()), None)
                if bad is not None:       # NUL, line breaks or escapes would reach the output as they are
                    raise UsageError(f"{path}:{reader.line_num}: column {show(bad)} {show(r[bad])} holds a "
                                     f"character that is not printable; give plain text")
                rows.append(r)
    except IsADirectoryError:
        raise UsageError(f"{path}: cannot read (is a directory)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{path}: cannot read ({e})") from None
    if not rows:
        raise UsageError(f"{path}: no rows (only a header); give one published run per row")
    for i, r in enumerate(rows, 2):
        v = r["latency_s"].strip()
        if oom:
            if v.upper() != "OOM":
                raise UsageError(f"{path}:{i}: latency_s {show(v)} must be OOM in an out-of-memory file")
        elif not _positive(v):
            raise UsageError(f"{path}:{i}: latency_s {show(v)} must be a number of seconds from 1e-06 to 1e+06")
    return rows


def _positive(text: str) -> bool:
    try:
        return parse_real(text, "latency_s", LATENCY) > 0
    except UsageError:
        return False


LATENCY = Bound(1e-6, 1e6, integer=False)   # seconds: published latencies lie between a microsecond and 12 days


def row_inputs(r: dict):
    """(plan, model, scenario, cluster) of a row: the same checks as the command line's
    (planner.inputs), each naming the column; UsageError or another user error."""
    from . import inputs

    def field(k):
        return f"column {k}"

    def flag(k, default: bool) -> bool:
        v = r[k].strip()
        if v not in ("", "0", "1"):
            raise UsageError(f"column {k} {show(v)}: accepted: 0, 1 (or blank)")
        return default if not v else v == "1"

    def need(k):
        v = r[k].strip()
        if not v:
            raise UsageError(f"column {k} is empty")
        return v
    plan = parse_plan(need("plan"))
    if not r["cfg"].strip():
        raise UsageError("column cfg is empty")
    flag("compile", False)          # 0, 1 or blank; a blank resolves by the source's rule
    conv = resolve(r)               # planner/conventions.py: the row's scope and compile mode
    model, sc = inputs.scenario(need("model"), height=need("height"), width=need("width"),
                                frames=r["frames"].strip() or None, steps=need("steps"), batch=1,
                                cfg=flag("cfg", True), dtype="fp16", scope=conv.scope,
                                compiled=conv.compiled, name=field)
    gpus = parse_int(need("gpus"), field("gpus"), BOUNDS["gpus"])
    nodes = parse_int(r["nodes"].strip() or "1", field("nodes"), BOUNDS["nodes"])
    inter = r["inter"].strip() or "none"
    cluster = build_cluster(need("gpu"), gpus, nodes, r["intra"].strip() or None, inter)
    return plan, model, sc, cluster


def evaluate(rows: list[dict], profile: Profile) -> list[RowResult]:
    from .zoo import ZooError
    out = []
    for r in rows:
        res = RowResult(r, convention=resolve(r))
        try:
            plan, model, sc, cluster = row_inputs(r)
            errs = plan_errors(plan, model, sc, cluster.n)
            if errs:
                res.reason = _line(f"constraint: {errs[0]}")
            else:
                p = predict(plan, model, sc, cluster, profile)
                res.predicted_s, res.fits, res.memory_gb = p.latency_s, p.fits, p.memory_bytes / 2**30
        except (ZooError, HardwareError, PlanError, UsageError, ValueError) as e:
            res.reason = _line(f"{type(e).__name__}: {e}")
        out.append(res)
    return out


def _line(text: str) -> str:
    """A reason on one line, whatever the row's cells held (a quoted CSV cell may hold
    line breaks)."""
    return " ".join(text.split())


def metrics(results: list[RowResult]) -> dict:
    ok = [r for r in results if r.predicted_s is not None]
    apes = [r.ape for r in ok]
    # speed-up over the serial row of the same source and scenario; each parallel row's
    # log error = its serial baseline's log error - its speed-up's log error
    serial = {r.key(SCENARIO_KEYS): r for r in ok if r.row["plan"].strip() == "serial"}
    sp_err, speedup_of = [], {}
    split = {"serial": [], "speedup": [], "total": []}
    for r in ok:
        s = serial.get(r.key(SCENARIO_KEYS))
        if s is None or r.row["plan"].strip() == "serial":
            continue
        measured = s.measured_s / r.measured_s
        predicted = s.predicted_s / r.predicted_s
        speedup_of[id(r)] = abs(predicted - measured) / measured
        sp_err.append(speedup_of[id(r)])
        split["serial"].append(abs(math.log(s.predicted_s / s.measured_s)))
        split["speedup"].append(abs(math.log(predicted / measured)))
        split["total"].append(abs(math.log(r.predicted_s / r.measured_s)))
    # ranking within groups of the same scenario (ranking_groups)
    top1, rhos, misses = [], [], []
    for g in ranking_groups(ok).values():
        best_p, best_m = min(g, key=lambda r: r.predicted_s), min(g, key=lambda r: r.measured_s)
        top1.append(best_p is best_m)
        if best_p is not best_m:
            misses.append({"group": best_m.row["id"], "predicted_best": best_p.row["plan"],
                           "measured_best": best_m.row["plan"],
                           "loss": round(best_p.measured_s / best_m.measured_s - 1, 4)})
        if len(g) >= 3:
            rhos.append(_spearman([r.predicted_s for r in g], [r.measured_s for r in g]))
    per_source = {}
    for r in ok:
        per_source.setdefault(r.row["source"], []).append(r.ape)
    return {
        "rows": len(results), "evaluated": len(ok),
        "skipped": [{"id": r.row["id"], "reason": r.reason} for r in results if r.predicted_s is None],
        "mape": _mean(apes), "max_ape": max(apes) if apes else None,
        "speedup_mape": _mean(sp_err), "speedup_rows": len(sp_err),
        "top1": _mean(top1), "top1_groups": len(top1), "top1_misses": misses,
        "spearman": _mean(rhos), "spearman_groups": len(rhos),
        "serial_mape": _mean([r.ape for r in serial.values()]), "serial_rows": len(serial),
        "error_split": {k: _mean(v) for k, v in split.items()} | {"rows": len(split["total"])},
        "predicted_oom": [r.row["id"] for r in ok if r.fits is False],
        "per_source": [{"source": s, "rows": len(v), "mape": _mean(v), "max_ape": max(v)}
                       for s, v in sorted(per_source.items())],
        "per_family": _breakdown(ok, speedup_of, _family),
        "per_model": _breakdown(ok, speedup_of, lambda r: r.row["model"]),
        "per_strategy": _breakdown(ok, speedup_of, lambda r: strategy_of(r.row["plan"])),
        "rows_detail": [{"id": r.row["id"], "plan": r.row["plan"], "predicted_s": round(r.predicted_s, 4),
                         "measured_s": r.measured_s, "ape": round(r.ape, 4)} for r in ok],
    }


def ranking_groups(ok: list[RowResult]) -> dict[tuple, list[RowResult]]:
    """Rows of one scenario (GROUP_KEYS) with at least two different plans."""
    groups: dict[tuple, list[RowResult]] = {}
    for r in ok:
        groups.setdefault(r.key(GROUP_KEYS), []).append(r)
    return {k: g for k, g in groups.items() if len({r.row["plan"].strip() for r in g}) >= 2}


def strategy_of(plan: str) -> str:
    """'cfg=2 pipefusion=4 patches=8' -> 'cfg+pipefusion' (modifiers are not strategies)."""
    from .strategies import STRATEGIES
    keys = [k.split("=")[0] for k in plan.split() if "=" in k]
    keys = [k for k in keys if k in STRATEGIES]
    return "+".join(keys) if keys else plan.strip()


def _family(r: RowResult) -> str:
    from .hardware import load_gpu
    try:
        return load_gpu(r.row["gpu"]).family
    except HardwareError:
        return r.row["gpu"]


def _breakdown(ok: list[RowResult], speedup_of: dict, key) -> list[dict]:
    """MAPE, bias (mean log(predicted/measured)) and speed-up MAPE per value of key(row)."""
    out: dict[str, list[RowResult]] = {}
    for r in ok:
        out.setdefault(key(r), []).append(r)
    rows = []
    for name, rs in sorted(out.items(), key=lambda kv: -len(kv[1])):
        sp = [speedup_of[id(r)] for r in rs if id(r) in speedup_of]
        rows.append({"name": name, "rows": len(rs), "mape": _mean(r.ape for r in rs),
                     "bias": _mean(math.log(r.predicted_s / r.measured_s) for r in rs),
                     "speedup_mape": _mean(sp), "speedup_rows": len(sp)})
    return rows


def oom_metrics(results: list[RowResult]) -> dict:
    ok = [r for r in results if r.predicted_s is not None]
    return {"rows": len(results), "evaluated": len(ok),
            "predicted_oom": sum(1 for r in ok if not r.fits),
            "skipped": [{"id": r.row["id"], "reason": r.reason} for r in results if r.predicted_s is None],
            "rows_detail": [{"id": r.row["id"], "plan": r.row["plan"], "fits": r.fits,
                             "memory_gb": round(r.memory_gb, 2)} for r in ok]}


def _mean(xs) -> float | None:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else None


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr
    rho = spearmanr(a, b).statistic
    return 0.0 if math.isnan(rho) else float(rho)


def table(m: dict) -> str:
    lines = [f"{'id':<24} {'plan':<30} {'predicted':>9} {'measured':>9} {'error':>7}"]
    for d in m["rows_detail"]:
        lines.append(f"{d['id']:<24} {d['plan']:<30} {d['predicted_s']:>8.3f}s {d['measured_s']:>8.3f}s "
                     f"{100 * d['ape']:>6.1f}%")
    lines.append("")
    lines.append(f"{'source':<72} {'rows':>4} {'MAPE':>7} {'max':>7}")
    for s in m["per_source"]:
        lines.append(f"{s['source'][:72]:<72} {s['rows']:>4} {100 * s['mape']:>6.1f}% {100 * s['max_ape']:>6.1f}%")
    lines.append("")
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"
    num = lambda x: "n/a" if x is None else f"{x:.3f}"
    for title, key in (("GPU family", "per_family"), ("model", "per_model"), ("strategy", "per_strategy")):
        lines += [""] + breakdown_table(m[key], title)
    lines.append("")
    lines.append(f"rows {m['rows']}, evaluated {m['evaluated']}, skipped {len(m['skipped'])}")
    lines.append(f"MAPE {pct(m['mape'])}   max APE {pct(m['max_ape'])}   speed-up MAPE {pct(m['speedup_mape'])}"
                 f" ({m['speedup_rows']} rows)   top-1 {num(m['top1'])} ({m['top1_groups']} groups)"
                 f"   Spearman {num(m['spearman'])} ({m['spearman_groups']} groups)")
    e = m["error_split"]
    lines.append(f"serial rows MAPE {pct(m['serial_mape'])} ({m['serial_rows']} rows); parallel rows with a serial "
                 f"baseline ({e['rows']}): mean |log error| {num(e['total'])} = baseline {num(e['serial'])} "
                 f"and speed-up {num(e['speedup'])} (each part's mean |log|)")
    for s in m["skipped"]:
        lines.append(f"skipped {s['id']}: {s['reason']}")
    if m["predicted_oom"]:
        lines.append(f"published successful runs predicted OOM: {', '.join(m['predicted_oom'])}")
    return "\n".join(lines)


def breakdown_table(rows: list[dict], title: str) -> list[str]:
    """Markdown table of a per-family / per-model / per-strategy breakdown (metrics)."""
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"
    out = [f"| {title} | rows | MAPE | bias (mean log pred/meas) | speed-up MAPE (rows) |", "|---|---|---|---|---|"]
    for d in rows:
        out.append(f"| {d['name']} | {d['rows']} | {pct(d['mape'])} | {d['bias']:+.3f} | "
                   f"{pct(d['speedup_mape'])} ({d['speedup_rows']}) |")
    return out


def log_ratio(results: list[RowResult]) -> np.ndarray:
    """log(predicted / measured) of every evaluated row (the calibration's residuals)."""
    return np.array([math.log(r.predicted_s / r.measured_s) for r in results if r.predicted_s is not None])
