"""`run --report`: what an executed plan measured against what the planner predicted.

Input: the `run --json` document (executor/cli.py), one result or a list of them (a
sweep over strategies), each

    {"plan", "nproc", "measured": {"latency_s", "speedup", "step_s"},
     "predicted": {"latency_s", "speedup"}, "error": {"latency", "speedup"},
     "fidelity": {"max_rel_err", "rel_l2", "psnr"}, "memory_peak_mb": [per rank],
     "comm_bytes": [per rank]}

executor/measure.py writes an infinite PSNR (identical output) as psnr null with
"psnr_inf": true (JSON has no infinity); measured.latencies_s, the repeats, become
error bars. Fields other than plan and measured.latency_s may be missing (a run that skipped the
fidelity check, a serial run with no communication): the matching chart is left out,
not drawn empty. step_s may be one number (mean step) or a list (every step).
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import UsageError
from .html import PALETTE, Page, check_out_path, finite, kv_table, log_axis, num, table

MEASURED, PREDICTED = "#636efa", "#ffa15a"


def _results(doc) -> list[dict]:
    items = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):   # a sweep wrapped in an object
        items = doc["results"]
    if not items:
        raise UsageError("not a `run --json` document: no results")
    for r in items:
        if not isinstance(r, dict) or "plan" not in r or not isinstance(r.get("measured"), dict) \
                or finite(r["measured"].get("latency_s")) is None:
            raise UsageError("not a `run --json` document: each result needs plan and measured.latency_s")
    return items


def _name(r: dict) -> str:
    return f"{r['plan']} ({r['nproc']} proc)" if r.get("nproc") else str(r["plan"])


def _get(r: dict, *keys):
    for k in keys:
        r = r.get(k) if isinstance(r, dict) else None
    return finite(r)


def identical(r: dict) -> bool:
    """The run's output equals one process's bit for bit (infinite PSNR)."""
    f = r.get("fidelity") or {}
    return bool(f.get("psnr_inf")) or (isinstance(f.get("psnr"), float) and f["psnr"] == float("inf"))


def signed_error(r: dict, key: str):
    """(predicted - measured) / measured: the sign says which way the model is off; the
    run JSON's error is its absolute value."""
    m, p = _get(r, "measured", key), _get(r, "predicted", key)
    if m and p is not None:
        return (p - m) / m
    return _get(r, "error", "latency" if key == "latency_s" else key)


def latency_figure(rs: list[dict]) -> go.Figure:
    names = [_name(r) for r in rs]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("latency", "speed-up over one process"))
    for col, key, unit in ((1, "latency_s", " s"), (2, "speedup", "x")):
        for side, colour in (("measured", MEASURED), ("predicted", PREDICTED)):
            ys = [_get(r, side, key) for r in rs]
            if all(y is None for y in ys):
                continue
            err = [signed_error(r, key) for r in rs]
            bars = None
            if side == "measured" and key == "latency_s":      # spread of the repeats
                reps = [[t for t in (r["measured"].get("latencies_s") or []) if finite(t) is not None] for r in rs]
                if any(reps):
                    bars = dict(type="data", symmetric=False, color="#1d232b", thickness=1.2,
                                array=[max(t) - y if t and y is not None else 0 for t, y in zip(reps, ys)],
                                arrayminus=[y - min(t) if t and y is not None else 0 for t, y in zip(reps, ys)])
            fig.add_trace(go.Bar(
                x=names, y=ys, name=side, legendgroup=side, showlegend=col == 1, marker_color=colour, error_y=bars,
                customdata=[[num(e, "{:+.1%}")] for e in err],
                hovertemplate="<b>%{x}</b><br>" + side + ": %{y:.4g}" + unit
                              + "<br>prediction error %{customdata[0]}<extra></extra>"), row=1, col=col)
    fig.update_yaxes(title_text="seconds", row=1, col=1)
    fig.update_yaxes(title_text="x", row=1, col=2)
    fig.update_layout(title=dict(text="Measured against predicted, per strategy"), barmode="group", height=460,
                      margin=dict(l=60, r=20, t=90, b=50),
                      legend=dict(orientation="h", y=-0.25, x=0))
    return fig


def step_figure(rs: list[dict]) -> go.Figure | None:
    fig = go.Figure()
    lists = [(r, r["measured"].get("step_s")) for r in rs]
    if any(isinstance(s, list) and s for _, s in lists):
        n = max(len(s) if isinstance(s, list) else (r.get("steps") or 1) for r, s in lists)
        for i, (r, steps) in enumerate(lists):
            flat = finite(steps) is not None      # a mean step among per-step lists: a flat dashed line
            if not (isinstance(steps, list) and steps) and not flat:
                continue
            ys = [steps] * n if flat else [finite(s) for s in steps]
            fig.add_trace(go.Scatter(x=list(range(1, len(ys) + 1)), y=ys, mode="lines" if flat else "lines+markers",
                                     name=_name(r) + (" (mean)" if flat else ""),
                                     line=dict(color=PALETTE[i % len(PALETTE)], dash="dash" if flat else "solid"),
                                     hovertemplate="step %{x}: %{y:.4g} s<extra>" + _name(r) + "</extra>"))
        fig.update_layout(xaxis=dict(title=dict(text="denoising step")))
    else:
        ys = [finite(s) for _, s in lists]
        if all(y is None for y in ys):
            return None
        fig.add_trace(go.Bar(x=[_name(r) for r in rs], y=ys, name="measured", marker_color=MEASURED,
                             hovertemplate="<b>%{x}</b><br>%{y:.4g} s per step<extra></extra>"))
        # the executor's step time is latency / steps: the prediction's is the same ratio
        pred = [_get(r, "predicted", "step_s") or (_get(r, "predicted", "latency_s") / r["steps"]
                if _get(r, "predicted", "latency_s") and isinstance(r.get("steps"), int) and r["steps"] > 0
                else None) for r in rs]
        if any(p is not None for p in pred):
            fig.add_trace(go.Bar(x=[_name(r) for r in rs], y=pred, name="predicted", marker_color=PREDICTED,
                                 hovertemplate="<b>%{x}</b><br>%{y:.4g} s per step<extra></extra>"))
    fig.update_layout(title=dict(text="Time per denoising step"), height=420, barmode="group",
                      yaxis=dict(title=dict(text="seconds"), rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.2, x=0))
    return fig


def fidelity_figure(rs: list[dict]) -> go.Figure | None:
    metrics = (("max_rel_err", "max relative error", "log"), ("rel_l2", "relative L2 error", "log"),
               ("psnr", "PSNR (dB)", "linear"))
    if not any(isinstance(r.get("fidelity"), dict) for r in rs):
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=[m[1] for m in metrics])
    names = [_name(r) for r in rs]
    for col, (key, title, axis) in enumerate(metrics, 1):
        ys = [_get(r, "fidelity", key) for r in rs]
        # log axes cannot show 0 (bit-identical output); PSNR is infinite there: say so in text
        raw = [(r.get("fidelity") or {}).get(key) for r in rs]
        text = ["identical" if identical(r) or (v == 0 and key != "psnr") else "" for r, v in zip(rs, raw)]
        if axis == "log":
            ys = [y if y and y > 0 else None for y in ys]
        fig.add_trace(go.Bar(x=names, y=ys, showlegend=False, marker_color=PALETTE[col + 1],
                             hovertemplate="<b>%{x}</b><br>" + title + ": %{y:.3g}<extra></extra>"), row=1, col=col)
        pos = [y for y in ys if y and y > 0]
        fig.update_yaxes(row=1, col=col, **(log_axis(min(pos), max(pos)) if axis == "log" and pos
                                            else dict(type=axis)))
        if not pos:      # nothing but identical outputs: an empty scale would only mislead
            fig.update_yaxes(row=1, col=col, showticklabels=False, showgrid=False, zeroline=False)
        # a bar cannot show "no error at all" (0 on a log axis, infinite PSNR): say it in words
        for name, t in zip(names, text):
            if t:
                fig.add_annotation(text=t, x=name, xref=f"x{col if col > 1 else ''}", y=0.03,
                                   yref=f"y{col if col > 1 else ''} domain", showarrow=False,
                                   font=dict(color="#5b6570"))
    fig.update_layout(title=dict(text="Fidelity: output against one process's"), height=420,
                      margin=dict(l=60, r=20, t=90, b=50))
    return fig


def per_rank_figure(rs: list[dict]) -> go.Figure | None:
    have_mem = any(isinstance(r.get("memory_peak_mb"), list) and r["memory_peak_mb"] for r in rs)
    have_comm = any(isinstance(r.get("comm_bytes"), list) and r["comm_bytes"] for r in rs)
    if not have_mem and not have_comm:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=("peak memory per rank (MB)", "bytes sent per rank (MB)"))
    for i, r in enumerate(rs):
        colour = PALETTE[i % len(PALETTE)]
        for col, key, scale in ((1, "memory_peak_mb", 1.0), (2, "comm_bytes", 1e-6)):
            vals = r.get(key)
            if isinstance(vals, list) and vals:
                fig.add_trace(go.Bar(x=[f"rank {k}" for k in range(len(vals))],
                                     y=[None if finite(v) is None else v * scale for v in vals],
                                     name=_name(r), legendgroup=_name(r), showlegend=col == 1 or not have_mem,
                                     marker_color=colour,
                                     hovertemplate="%{x}: %{y:.4g} MB<extra>" + _name(r) + "</extra>"),
                              row=1, col=col)
    fig.update_layout(title=dict(text="Per rank"), barmode="group", height=420, margin=dict(l=60, r=20, t=90, b=50),
                      legend=dict(orientation="h", y=-0.2, x=0))
    return fig


def write_run_report(doc, path) -> None:
    """Render one run result or a sweep (a list of results) to path."""
    rs = _results(doc)
    check_out_path(path, (".html", ".htm"), "report")
    page = Page(f"paradiff run: {_name(rs[0])}" if len(rs) == 1 else f"paradiff run: sweep of {len(rs)} plans")
    rows = [[_name(r), num(_get(r, "measured", "latency_s"), "{:.4g} s"),
             num(_get(r, "predicted", "latency_s"), "{:.4g} s"), num(signed_error(r, "latency_s"), "{:+.1%}"),
             num(_get(r, "measured", "speedup"), "{:.2f}x"), num(_get(r, "predicted", "speedup"), "{:.2f}x"),
             "∞ (identical)" if identical(r) else num(_get(r, "fidelity", "psnr"), "{:.1f} dB")]
            for r in rs]
    page.html('<div class="card">' + table(["plan", "measured", "predicted", "error", "speed-up measured",
                                           "speed-up predicted", "PSNR"], rows) + "</div>")
    about = [[k, ", ".join(sorted({str(r[k]) for r in rs if r.get(k) is not None}))]
             for k in ("model", "steps", "repeats", "backend", "profile", "memory_method")]
    about = [a for a in about if a[1]]
    if about:
        page.html('<div class="card">' + kv_table(about) + "</div>")
    page.figure("fig-latency", latency_figure(rs))
    for div_id, fig in (("fig-steps", step_figure(rs)), ("fig-fidelity", fidelity_figure(rs)),
                        ("fig-ranks", per_rank_figure(rs))):
        if fig is not None:
            page.figure(div_id, fig)
    page.write(path)
