"""Fit the cost model's few free parameters to published runs (scipy least squares).

Parameters, each shared by every row it applies to (never one per row or per source):
- eff/<family>/<class>: peak efficiency (e_max) of GEMM, convolution and attention
  kernels per GPU family (ampere-dc, ampere-ws, ada, turing, ...), as a factor on the
  prior curve of hw_profiles/gpus;
- launch/eager, launch/compiled: the per-kernel launch floor, eager and with
  torch.compile / CUDA graphs; step/eager, step/compiled: the fixed cost of a denoising
  step outside the network (pipeline loop, scheduler); compiled_mem: the share of
  memory-bound time left after kernel fusion;
- link/<id>: the fraction of a link's bandwidth that collectives reach, per link type,
  and link/<id>/all_to_all for all-to-all where the data has it;
- overlap: how well asynchronous communication hides under compute.
A parameter is free only where the training rows exercise it (a family with no conv
model keeps its prior conv curve); the others keep their priors.

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

from .hardware import Calibration, EfficiencyCurve, Profile, load_gpu
from .strategies import STRATEGIES
from .validate import RowResult, evaluate, row_inputs

COMPUTE_CLASSES = ("gemm", "conv", "attn")
# (lower, upper) bounds of log(parameter / prior)
# The launch floor is bounded at 30 us per modelled op: eager PyTorch dispatch costs
# 5-20 us per kernel on a modern host. Unbounded, the fit lifts it to ~65 us to absorb
# the Python overhead of the old diffusers U-Nets in the AsyncDiff rows, and that makes
# every fast GPU launch-bound (Flux on H100 would barely scale); per-step overhead is
# its own parameter (step/*).
BOUNDS = {"eff": (math.log(0.15), math.log(2.0)), "launch": (math.log(0.1), math.log(3.0)),
          "step": (math.log(0.1), math.log(300.0)),
          "compiled_mem": (math.log(0.3), 0.0), "link": (math.log(0.05), math.log(3.0)),
          "overlap": (math.log(0.3), 0.0)}


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
    names.add("launch/compiled" if sc.compiled else "launch/eager")
    names.add("step/compiled" if sc.compiled else "step/eager")
    if sc.compiled:
        names.add("compiled_mem")
    if cluster.n > 1 and not plan.is_serial:
        links = {d["link"] for _, _, d in cluster.graph.edges(data=True)}
        links -= {"ethernet", "ib-hdr", "ib-ndr", "roce"} if cluster.nodes == 1 else set()
        names.update(f"link/{l}" for l in links)
        if any("all_to_all" in STRATEGIES[k].collectives for p in plan.plans() for k in p.keys):
            names.update(f"link/{l}/all_to_all" for l in links)
        if any(STRATEGIES[k].overlaps_compute for p in plan.plans() for k in p.keys):
            names.add("overlap")
    return names


def active_parameters(rows: list[dict]) -> list[str]:
    """Parameters some row exercises (see the module docstring)."""
    return sorted(set().union(*(row_parameters(r) for r in rows)))


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
    curves = dict(base.curves)
    coll = dict(base.coll_eff)
    kw = {}
    for name, v in values.items():
        parts = name.split("/")
        if parts[0] == "eff":
            fam, cls = parts[1], parts[2]
            prior = _family_prior(fam, cls)
            curves[(fam, cls)] = EfficiencyCurve(e_max=prior.e_max * v, t0_s=prior.t0_s)
        elif name == "launch/eager":
            kw["launch_eager_s"] = _prior().launch_eager_s * v
        elif name == "launch/compiled":
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
    return replace(base, curves=tuple(sorted(curves.items())), coll_eff=tuple(sorted(coll.items())), **kw)


def _family_prior(family: str, cls: str) -> EfficiencyCurve:
    from .hardware import gpu_ids
    for g in gpu_ids():
        spec = load_gpu(g)
        if spec.family == family:
            return spec.prior_curve(cls)
    raise KeyError(family)


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
