"""Turning timings into the curves of a profile (numpy/scipy only: no torch here).

Both parametric forms of the cost model are affine in the size s:
- compute (planner.hardware.EfficiencyCurve): t = s / (peak * e_max) + t0
- collectives (planner/cost/comm.py):         t = alpha + s / beta
so one weighted least-squares fit serves both (scipy.optimize.curve_fit, coefficients
kept non-negative). Timings span five or more decades, so residuals are relative
(sigma = t): otherwise the largest sizes alone would decide the fit and the latency
term would be noise.

The measured points are what the cost model uses; the fits summarise them (and are
what a report plots next to them, see curves_for_report).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

# Bytes that cross the busiest link per byte of the planner's nbytes, for n ranks
# (planner/cost/comm.py's algorithms): turns a fitted rate into a link bandwidth
# comparable with hw_profiles/links (nccl-tests calls it "bus bandwidth").
BUS_FACTOR = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "p2p": lambda n: 1.0,
}
# Latency steps of each algorithm (hops in sequence), to express alpha per hop.
STEPS = {
    "all_reduce": lambda n: 2 * (n - 1),
    "all_gather": lambda n: n - 1,
    "reduce_scatter": lambda n: n - 1,
    "all_to_all": lambda n: 1,
    "broadcast": lambda n: n - 1,
    "p2p": lambda n: 1,
}


def _affine(s, c0, c1):
    return c0 + c1 * s


def fit_affine(sizes, times) -> tuple[float, float, float]:
    """(c0, c1, rms relative error) of t = c0 + c1 * s, c0, c1 >= 0, relative residuals."""
    s = np.asarray(sizes, dtype=float)
    t = np.asarray(times, dtype=float)
    if len(s) != len(t) or len(s) == 0 or (s <= 0).any() or (t <= 0).any():
        raise ValueError("fit needs as many positive sizes as positive times, at least one")
    if len(s) == 1:      # one point: all of it is throughput
        c0, c1 = 0.0, float(t[0] / s[0])
    else:
        # start from the two-point line through the smallest and the largest size
        i, j = int(np.argmin(s)), int(np.argmax(s))
        slope = max((t[j] - t[i]) / (s[j] - s[i]), 1e-30) if s[j] > s[i] else float(t[j] / s[j])
        p0 = (max(t[i] - slope * s[i], 0.0), slope)
        scale = np.array([float(t.max()), float(t.max() / s.max())])   # fit in units of O(1)
        with warnings.catch_warnings():   # 2 points: no covariance, which is not used anyway
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, b), _ = curve_fit(lambda x, a, b: _affine(x, a * scale[0], b * scale[1]), s, t,
                                  p0=np.maximum(np.array(p0) / scale, 1e-12), sigma=t,
                                  bounds=(0.0, np.inf), maxfev=20000)
        c0, c1 = float(a * scale[0]), float(b * scale[1])
    pred = c0 + c1 * s
    rms = float(np.sqrt(np.mean(((pred - t) / t) ** 2)))
    return c0, c1, rms


def fit_efficiency(sizes, times, peak: float) -> dict:
    """Parametric EfficiencyCurve of timings: {"e_max", "t0_us", "fit_rms"}."""
    t0, inv, rms = fit_affine(sizes, times)
    e_max = 1.0 / (peak * inv) if inv > 0 else 1.0
    return {"e_max": e_max, "t0_us": t0 * 1e6, "fit_rms": rms}


def fit_alpha_beta(sizes, times, kind: str | None = None, nranks: int = 2) -> dict:
    """Alpha-beta model of a collective: {"latency_us", "bw_gbps" (nbytes / transfer
    time), "bus_bw_gbps" (bytes on the busiest link / time), "hop_latency_us", "fit_rms"}."""
    alpha, inv_bw, rms = fit_affine(sizes, times)
    bw = 1.0 / inv_bw if inv_bw > 0 else math.inf
    out = {"latency_us": alpha * 1e6, "bw_gbps": bw / 1e9, "fit_rms": rms}
    if kind in BUS_FACTOR:
        out["bus_bw_gbps"] = bw * BUS_FACTOR[kind](nranks) / 1e9
        out["hop_latency_us"] = alpha * 1e6 / max(STEPS[kind](nranks), 1)
    return out


def pool_points(sizes, effs, groups=None, bins_per_decade: int = 4) -> list[tuple[float, float]]:
    """(size, efficiency) points with strictly increasing sizes, for EfficiencyCurve.points.

    Several samples can stand for one point: the ops of the `mem` class (norms, gelu,
    add...) run on the same tensor shape with different efficiencies, and the cost model
    has one curve for all of them. Samples sharing a group key (the shape, for `mem`) or,
    without keys, a bin of log10(size) (bins_per_decade per decade) become one point: the
    geometric-mean size and the median efficiency. Interpolating through every op
    instead would zigzag between fast and slow ops. Points that would still not be
    strictly increasing are merged the same way.
    """
    s = np.asarray(sizes, dtype=float)
    e = np.asarray(effs, dtype=float)
    keep = (s > 0) & (e > 0) & np.isfinite(s) & np.isfinite(e)
    if groups is None:
        keys = [int(k) for k in np.floor(np.log10(np.where(keep, s, 1.0)) * bins_per_decade + 1e-9)]
    else:
        keys = list(groups)
    by_key: dict = {}
    for i in np.flatnonzero(keep):
        by_key.setdefault(keys[i], []).append(i)
    pts = sorted((float(10 ** np.mean(np.log10(s[ix]))), float(np.median(e[ix])), ix)
                 for ix in by_key.values())
    merged: list = []
    for size, eff, ix in pts:          # equal sizes from different keys: merge
        if merged and size <= merged[-1][0] * (1 + 1e-5):
            ix = merged.pop()[2] + ix
            size, eff = float(10 ** np.mean(np.log10(s[ix]))), float(np.median(e[ix]))
        merged.append((size, eff, ix))
    return [(size, eff) for size, eff, _ in merged]


def make_monotone(sizes, times, pooled: bool = False) -> list[float]:
    """Measured collective times made physically consistent, in the spirit of Alpa's
    make_monotonic (own implementation): along increasing size,
    1. bandwidth (size / time) never decreases: a running maximum of bandwidth, so a
       large message measured slow by noise is lifted to the rate a smaller one reached;
    2. time never decreases: a running minimum from the largest size down, so a small
       message is never slower than a larger one.
    Both steps only lower times (noise on a shared machine only ever slows a run), and
    step 2 keeps step 1's property. Interpolating the result linearly in log-log (as
    planner.hardware.CommCurve does) keeps both properties between the points.
    pooled: step 2 pools adjacent violators instead (isotonic regression of log time, a
    least-squares non-decreasing fit), for times whose spread is part of what was
    measured (profiler/comm.py's interleaved mode: the wait for a peer that computed a
    little longer), where the lowest of neighbouring sizes would be the luckiest draw,
    not the cost. Sizes must be strictly increasing."""
    s = np.asarray(sizes, dtype=float)
    t = np.asarray(times, dtype=float)
    if len(s) != len(t) or (np.diff(s) <= 0).any() or (t <= 0).any():
        raise ValueError("make_monotone needs strictly increasing sizes and positive times")
    if pooled:
        t = np.exp(_isotonic(np.log(t)))
    bw = np.maximum.accumulate(s / t)
    t = s / bw
    t = np.minimum.accumulate(t[::-1])[::-1]
    return [float(x) for x in t]


def _isotonic(y: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to y in least squares (pool adjacent violators,
    scipy >= 1.12)."""
    from scipy.optimize import isotonic_regression
    return np.asarray(isotonic_regression(y, increasing=True).x)


def curves_for_report(doc: dict, n: int = 60) -> dict:
    """What a report plots from a profile document: per op class the measured samples,
    the pooled points the cost model uses, and the fitted parametric curve on a grid;
    per collective the raw and monotone times and the alpha-beta fit on a grid.

    {"compute": {cls: {"unit": "FLOP"|"byte", "samples": [(size, eff, op)],
                       "points": [(size, eff)], "fit": [(size, eff)], "e_max", "t0_us"}},
     "comm": {"<kind>/<nranks>": {"sizes", "raw_times_us", "times_us",
                                  "fit": [(size, time_us)], "latency_us", "bw_gbps"}},
     "launch_us", "device", "link"}
    """
    out: dict = {"device": doc.get("device", {}), "launch_us": doc.get("compute", {}).get("launch_us"),
                 "compute": {}, "comm": {}, "link": doc.get("comm", {}).get("link")}
    dev = doc.get("device", {})
    for cls, cv in doc.get("compute", {}).get("curves", {}).items():
        peak = dev.get("memory_bw") if cls == "mem" else dev.get("peak_flops")
        pts = cv.get("points", [])
        if not pts or not peak:
            continue
        grid = np.logspace(math.log10(pts[0][0]), math.log10(pts[-1][0]), n)
        t = grid / (peak * cv["e_max"]) + cv["t0_us"] * 1e-6
        out["compute"][cls] = {
            "unit": "byte" if cls == "mem" else "FLOP",
            "samples": [(x["size"], x["eff"], x.get("op", cls)) for x in cv.get("samples", [])],
            "points": [tuple(p) for p in pts],
            "fit": list(zip(grid.tolist(), (grid / (peak * t)).tolist())),
            "e_max": cv["e_max"], "t0_us": cv["t0_us"]}
    for c in doc.get("comm", {}).get("curves", []):
        sizes = c["sizes"]
        f = c.get("fit", {})
        grid = np.logspace(math.log10(sizes[0]), math.log10(sizes[-1]), n)
        bw = f.get("bw_gbps", math.inf) * 1e9
        fit = (f.get("latency_us", 0.0) + grid / bw * 1e6) if bw > 0 else grid * 0
        out["comm"][f"{c['kind']}/{c['nranks']}"] = {
            "sizes": sizes, "raw_times_us": c.get("raw_times_us", c["times_us"]),
            "times_us": c["times_us"], "fit": list(zip(grid.tolist(), fit.tolist())),
            "latency_us": f.get("latency_us"), "bw_gbps": f.get("bw_gbps")}
    return out
