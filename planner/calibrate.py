"""Fit the cost model's few free parameters to published runs (scipy least squares).

Parameters, each shared by every row it applies to (never one per row or per source):
- eff/<family>/<class>: peak efficiency (e_max) of GEMM, convolution and attention
  kernels per GPU family (ampere-dc, ampere-pro, ada-dc, turing, ...), as a factor on
  each GPU's sourced prior (hw_profiles/gpus: published kernel benchmarks);
- host/eager, host/compiled: the host's time per kernel it issues (PyTorch dispatch,
  module hooks and the launch), eager and with torch.compile / CUDA graphs; the host
  runs as its own stream beside the GPU (cost/compute.two_stream), and eager counts the
  kernels diffusers really launches (EagerInventory); step/eager, step/compiled: the
  host's fixed work per denoising step outside the network (pipeline loop, scheduler);
  compiled_mem: the share of eager's extra memory-bound traffic (EagerInventory) that
  kernel fusion leaves;
- link/<id>: the fraction of a link's bandwidth that collectives reach, per link type
  (all-to-all included: its layout copies are modelled as device-memory work,
  Comm.copy_bytes); link/upi/all_to_all: cross-socket all-to-all, which NCCL stages
  through host memory as many concurrent peer flows (no GPU peer-to-peer across
  sockets), far below the pipelined rings of the other collectives on the same path;
- overlap: how well asynchronous communication hides under compute.
A parameter is free only where the training rows exercise it (a family with no conv
model keeps its prior conv curve, a family with fewer than MIN_FAMILY_ROWS rows its
sourced priors); the others keep their priors.

The fit minimises a robust (soft-L1) loss of log(predicted / measured), so no row can
dominate, and errors are relative. Leave-one-source-out: refit on every source but one,
predict that one: what a new paper's setup, model or GPU will see.
"""
from __future__ import annotations

import datetime
import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from .hardware import Calibration, Profile
from .strategies import STRATEGIES
from .validate import RowResult, evaluate, row_inputs

COMPUTE_CLASSES = ("gemm", "conv", "attn")
# (lower, upper) bounds of log(parameter / prior)
# Host time per kernel: eager PyTorch dispatch costs 5-20 us per op on a modern host and
# diffusers' module/hook overhead adds to it; xDiT's Flux.1-dev on 4 H100 (151 ms per
# eager step against ~57 ms of GPU work per rank, docs/performance/flux.md) implies about
# 40 us per kernel of its 3.8k. Bounds 2-60 us eager, 0.3-30 us compiled (CUDA graphs
# replay for well under 1 us a kernel; Inductor's wrapper launches each Triton kernel
# for a few us). Per-step overhead is its own parameter (step/*).
BOUNDS = {"eff": (math.log(0.15), math.log(2.0)), "host": (math.log(0.2), math.log(6.0)),
          "step": (math.log(0.1), math.log(300.0)),
          "compiled_mem": (math.log(0.02), 0.0), "link": (math.log(0.05), math.log(3.0)),
          "overlap": (math.log(0.02), 0.0)}


# A class's efficiency is fitted only on models where it does a real share of the work
# (PixArt's patch-embedding conv is ~0.1% of its FLOPs and cannot pin a conv efficiency).
MIN_SHARE = 0.05


def _flops_share(model, cls: str) -> float:
    total = model.flops()
    part = sum(op.flops() for b in model.blocks for op in b.ops if op.kind.value == cls)
    return part / total if total else 0.0


@dataclass
class Fit:
    names: list[str]
    values: dict[str, float]            # parameter -> fitted value (not the log)
    calibration: Calibration
    rows: int
    cost: float


def _prior() -> Calibration:
    return Calibration()


def row_parameters(r: dict) -> set[str]:
    """The parameters one row exercises (empty for a row validate cannot use)."""
    try:
        plan, model, sc, cluster = row_inputs(r)
    except Exception:   # unusable rows are reported by validate, not fitted
        return set()
    names: set[str] = set()
    fam = cluster.gpus[0].family
    names.update(f"eff/{fam}/{c}" for c in COMPUTE_CLASSES if _flops_share(model, c) >= MIN_SHARE)
    names.add("host/compiled" if sc.compiled else "host/eager")
    names.add("step/compiled" if sc.compiled else "step/eager")
    if sc.compiled:
        names.add("compiled_mem")
    if cluster.n > 1 and not plan.is_serial:
        links = {d["link"] for _, _, d in cluster.graph.edges(data=True)}
        links -= {"ethernet", "ib-hdr", "ib-ndr", "roce"} if cluster.nodes == 1 else set()
        names.update(f"link/{l}" for l in links)
        if "upi" in links and any("all_to_all" in STRATEGIES[k].collectives for p in plan.plans() for k in p.keys):
            names.add("link/upi/all_to_all")
        if any(STRATEGIES[k].overlaps_compute for p in plan.plans() for k in p.keys):
            names.add("overlap")
    return names


# A GPU family's efficiencies are fitted only on at least this many of its rows; with
# fewer (one 1-GPU row of an RTX 3090 or 2080 Ti) the fit would be one row's factor, so
# the family keeps its sourced prior.
MIN_FAMILY_ROWS = 4


def active_parameters(rows: list[dict]) -> list[str]:
    """Parameters some row exercises (see the module docstring)."""
    per_row = [row_parameters(r) for r in rows]
    names = set().union(*per_row)
    count: dict[str, int] = {}
    for ps in per_row:
        for fam in {n.split("/")[1] for n in ps if n.startswith("eff/")}:
            count[fam] = count.get(fam, 0) + 1
    return sorted(n for n in names if not n.startswith("eff/") or count[n.split("/")[1]] >= MIN_FAMILY_ROWS)


def _grouped_jacobian(fun, sparsity: np.ndarray, highs: np.ndarray, step: float):
    """Forward-difference Jacobian that perturbs at once every parameter of a group whose
    members share no residual (Curtis-Powell-Reid column grouping), with scipy's relative
    step (step x max(1, |x|)), stepping back where the upper bound is near.
    fun(x, mask) evaluates only the residuals in `mask` (the rows the group can move)."""
    groups: list[list[int]] = []
    used: list[np.ndarray] = []
    for j in range(sparsity.shape[1]):
        for g, rows in zip(groups, used):
            if not (rows & sparsity[:, j]).any():
                g.append(j)
                rows |= sparsity[:, j]
                break
        else:
            groups.append([j])
            used.append(sparsity[:, j].copy())
    memo: dict = {}

    def jac(x):
        key = x.tobytes()
        f0 = memo[key] if key in memo else fun(x)
        memo.clear()
        out = np.zeros((sparsity.shape[0], len(x)))
        for g in groups:
            h = np.zeros(len(x))
            for j in g:
                h[j] = step * max(1.0, abs(x[j]))
                if x[j] + h[j] > highs[j]:
                    h[j] = -h[j]
            rows_g = np.any(sparsity[:, g], axis=1)
            f1 = np.zeros(len(f0))
            f1[rows_g] = fun(x + h, rows_g)
            for j in g:
                rows = sparsity[:, j]
                out[rows, j] = (f1[rows] - f0[rows]) / h[j]
        return out
    jac.remember = lambda x, f: memo.__setitem__(x.tobytes(), f)
    return jac


def _sparsity(rows: list[dict], names: list[str]) -> np.ndarray:
    """Which residual (row) each parameter can move: least_squares perturbs parameters
    that share no row together, so a Jacobian costs a few evaluations, not one per
    parameter. A row's serial reference is not part of its residual, so this is exact."""
    col = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(rows), len(names)), dtype=bool)
    for i, r in enumerate(rows):
        for n in row_parameters(r):
            if n in col:
                out[i, col[n]] = True
    return out


def calibration_from(values: dict[str, float], base: Calibration | None = None) -> Calibration:
    """A Calibration with `values` (parameter -> value) applied over `base`'s priors."""
    base = base or _prior()
    factors = dict(base.eff_factor)
    coll = dict(base.coll_eff)
    kw = {}
    for name, v in values.items():
        parts = name.split("/")
        if parts[0] == "eff":
            factors[(parts[1], parts[2])] = v
        elif name == "host/eager":
            kw["launch_eager_s"] = _prior().launch_eager_s * v
        elif name == "host/compiled":
            kw["launch_compiled_s"] = _prior().launch_compiled_s * v
        elif name == "step/eager":
            kw["step_eager_s"] = _prior().step_eager_s * v
        elif name == "step/compiled":
            kw["step_compiled_s"] = _prior().step_compiled_s * v
        elif name == "compiled_mem":
            kw["compiled_mem_factor"] = v
        elif parts[0] == "link":
            coll["/".join(parts[1:])] = v
        elif name == "overlap":
            kw["overlap_eff"] = v
    return replace(base, eff_factor=tuple(sorted(factors.items())), coll_eff=tuple(sorted(coll.items())), **kw)


# What a parameter at a bound says is missing from the model (bound_hits)
AT_BOUND = {
    "eff": ("the family's kernels run faster than its sourced prior allows: a missing speed-up "
            "(fusion, a better kernel) or missing work elsewhere in its rows",
            "the family's kernels run far below its prior: missing work in its rows (host, copies)"),
    "host": ("the host's per-kernel time cannot fall further: GPU work the model charges is missing",
             "the host's per-kernel time wants more: per-step or per-module host work is missing"),
    "step": ("no per-step overhead left: the network's own time is over-predicted",
             "the per-step overhead absorbs work the model lacks (pipeline Python, syncs, the VAE)"),
    "compiled_mem": ("fusion removes all of eager's extra traffic and more: compiled runs are over-predicted",
                     "fusion removes none of eager's extra traffic: compiled runs are under-predicted"),
    "link": ("the link runs collectives far below its bandwidth: a transport term is missing",
             "collectives beat the link file's bandwidth: its bandwidth or route is wrong"),
    "overlap": ("asynchronous transfers hide nothing: their cost is over-charged elsewhere", ""),
}


def bound_hits(values: dict[str, float], margin: float = 0.02) -> list[dict]:
    """Fitted parameters within `margin` (in log) of a bound, with what that says."""
    out = []
    for name, v in sorted(values.items()):
        group = name.split("/")[0]
        if group not in BOUNDS or v <= 0:
            continue
        lo, hi = BOUNDS[group]
        x = math.log(v)
        for side, edge in (("lower", lo), ("upper", hi)):
            if abs(x - edge) < margin:
                why = AT_BOUND.get(group, ("", ""))[0 if side == "lower" else 1]
                out.append({"parameter": name, "value": round(v, 5), "bound": side, "bound_value":
                            round(math.exp(edge), 5), "means": why})
    return out


def _start(name: str) -> tuple[float, float, float]:
    """(start, lower, upper) in the fitted coordinate: log of the value."""
    group = name.split("/")[0]
    lo, hi = BOUNDS[group]
    start = {"compiled_mem": math.log(_prior().compiled_mem_factor),
             "overlap": math.log(_prior().overlap_eff)}.get(name, 0.0)
    return min(max(start, lo + 1e-6), hi - 1e-6), lo, hi


def fit(rows: list[dict], x0: dict[str, float] | None = None, max_nfev: int = 60) -> Fit:
    """Least-squares fit of the active parameters on `rows`."""
    names = active_parameters(rows)
    starts, lows, highs = zip(*(_start(n) for n in names)) if names else ((), (), ())
    x_start = np.array([math.log(x0[n]) if x0 and n in x0 else s for n, s in zip(names, starts)])
    x_start = np.clip(x_start, np.array(lows) + 1e-6, np.array(highs) - 1e-6)

    def residuals(x, mask=None):
        cal = calibration_from(dict(zip(names, np.exp(x))))
        use = rows if mask is None else [r for r, m in zip(rows, mask) if m]
        res = evaluate(use, Profile(calibration=cal, name="fit"))
        return np.array([math.log(r.predicted_s / r.measured_s) if r.predicted_s else 0.0 for r in res])

    def remembered(x):
        f = residuals(x)
        jac.remember(x, f)
        return f

    jac = _grouped_jacobian(residuals, _sparsity(rows, names), np.array(highs), step=0.05)
    sol = least_squares(remembered, x_start, jac=jac, bounds=(lows, highs), loss="soft_l1", f_scale=0.1,
                        max_nfev=max_nfev)
    values = dict(zip(names, (float(v) for v in np.exp(sol.x))))
    return Fit(names, values, calibration_from(values), len(rows), float(sol.cost))


def leave_one_source_out(rows: list[dict], full: Fit, max_nfev: int = 25) -> list[RowResult]:
    """Each source predicted by a fit on all the other sources."""
    out: list[RowResult] = []
    for source in sorted({r["source"] for r in rows}):
        train = [r for r in rows if r["source"] != source]
        held = [r for r in rows if r["source"] == source]
        f = fit(train, x0=full.values, max_nfev=max_nfev)
        out += evaluate(held, Profile(calibration=f.calibration, name=f"loso:{source}"))
    return out


def save(f: Fit, data_path: str | Path, out: Path, extra: dict | None = None) -> dict:
    data = Path(data_path).read_bytes()
    cal = replace(f.calibration, name="calibrated",
                  fitted_on=f"{Path(data_path).name} sha256:{hashlib.sha256(data).hexdigest()[:16]}")
    doc = cal.to_json() | {
        "free_parameters": len(f.names),
        "parameters": {n: round(v, 5) for n, v in f.values.items()},
        "rows": f.rows,
        "date": datetime.date.today().isoformat(),
        "method": "scipy.optimize.least_squares, soft-L1 loss on log(predicted/measured); "
                  "see planner/calibrate.py",
    } | (extra or {})
    import json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc
