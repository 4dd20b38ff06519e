"""`validate --report`: the planner's predictions against published latencies.

A log-log scatter of predicted against measured (latencies span three decades), with
the y = x line and a ±10% band, one colour per source; then the mean absolute
percentage error (MAPE) by source, by GPU and by strategy, to show where the model is
weak. write_validate_report(metrics, results, path) is what the validate command calls;
report_from_json rebuilds the page from `validate --json`, whose rows_detail may lack
source and GPU (then those charts come from per_source or are left out).
"""
from __future__ import annotations

import math
import re

import plotly.graph_objects as go

from ..errors import UsageError
from .html import PALETTE, Page, check_out_path, finite, kv_table, log_axis, num, table

BAND = 0.10


def strategy(plan: str) -> str:
    """The strategies of a plan string ('cfg=2 pipefusion=4 patches=8' -> 'cfg+pipefusion');
    modifiers (patches, warmup, stride...) are not strategies."""
    from ..strategies import STRATEGIES
    keys = []
    for k in re.findall(r"([a-z_]+)\s*=", plan or ""):
        if k in STRATEGIES and k not in keys:
            keys.append(k)
    return "+".join(keys) if keys else (plan or "?").strip() or "?"


def rows_from_results(results) -> list[dict]:
    out = []
    for r in results:
        if r.predicted_s is None or r.measured_s is None:
            continue
        row = r.row
        out.append({"id": row.get("id", "?"), "source": row.get("source") or "?", "gpu": row.get("gpu") or "?",
                    "model": row.get("model", ""), "gpus": row.get("gpus", ""), "plan": row.get("plan", ""),
                    "predicted_s": r.predicted_s, "measured_s": r.measured_s, "ape": r.ape})
    return out


def rows_from_json(doc: dict) -> list[dict]:
    out = []
    for d in doc.get("rows_detail", []):
        if not isinstance(d, dict) or finite(d.get("predicted_s")) is None or finite(d.get("measured_s")) is None:
            continue
        ape = d.get("ape")
        if finite(ape) is None:
            ape = abs(d["predicted_s"] - d["measured_s"]) / d["measured_s"]
        out.append({"id": d.get("id", "?"), "source": d.get("source") or "?", "gpu": d.get("gpu") or "?",
                    "model": d.get("model", ""), "gpus": d.get("gpus", ""), "plan": d.get("plan", ""),
                    "predicted_s": d["predicted_s"], "measured_s": d["measured_s"], "ape": ape})
    return out


def scatter_figure(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    vals = [v for r in rows for v in (r["predicted_s"], r["measured_s"]) if v > 0]
    lo, hi = min(vals) / 1.5, max(vals) * 1.5
    xs = [lo * (hi / lo) ** (i / 40) for i in range(41)]
    # the band first, so that the points are drawn over it
    fig.add_trace(go.Scatter(x=xs, y=[x * (1 - BAND) for x in xs], mode="lines", line=dict(width=0),
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=[x * (1 + BAND) for x in xs], mode="lines", line=dict(width=0),
                             fill="tonexty", fillcolor="rgba(0,204,150,0.15)", name=f"±{BAND:.0%}", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=xs, mode="lines", line=dict(color="#5b6570", dash="dash"), name="y = x",
                             hoverinfo="skip"))
    for i, src in enumerate(sorted({r["source"] for r in rows})):
        rs = [r for r in rows if r["source"] == src]
        fig.add_trace(go.Scatter(
            x=[r["measured_s"] for r in rs], y=[r["predicted_s"] for r in rs], mode="markers",
            name=src if len(src) <= 40 else src[:38] + "…",
            marker=dict(size=9, color=PALETTE[i % len(PALETTE)], line=dict(width=0.5, color="#ffffff")),
            customdata=[[r["id"], r["source"], r["plan"], r["gpu"], f"{r['gpus']}", r["model"],
                         (r["predicted_s"] - r["measured_s"]) / r["measured_s"] * 100] for r in rs],
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>plan: %{customdata[2]}<br>"
                          "%{customdata[5]} on %{customdata[4]}x %{customdata[3]}<br>measured %{x:.4g} s, "
                          "predicted %{y:.4g} s (%{customdata[6]:+.1f}%)<extra></extra>"))
    fig.update_layout(title=dict(text="Predicted against measured latency"), height=600, hovermode="closest",
                      xaxis=dict(title=dict(text="measured (s)"), range=[math.log10(lo), math.log10(hi)])
                      | log_axis(lo, hi),
                      yaxis=dict(title=dict(text="predicted (s)"), range=[math.log10(lo), math.log10(hi)])
                      | log_axis(lo, hi),
                      legend=dict(font=dict(size=10)))
    return fig


def mape_figure(groups: list[tuple[str, list[float]]], title: str) -> go.Figure:
    """Horizontal bars of MAPE per group (names can be long source titles)."""
    groups = sorted(groups, key=lambda g: -sum(g[1]) / len(g[1]))
    names = [g for g, _ in groups]
    mape = [100 * sum(v) / len(v) for _, v in groups]
    fig = go.Figure(go.Bar(
        orientation="h", y=names, x=mape, marker_color=["#d62728" if m > 100 * BAND else "#00cc96" for m in mape],
        customdata=[[len(v), 100 * max(v)] for _, v in groups],
        hovertemplate="<b>%{y}</b><br>MAPE %{x:.1f}%<br>%{customdata[0]} rows, max %{customdata[1]:.1f}%"
                      "<extra></extra>"))
    fig.add_vline(x=100 * BAND, line=dict(color="#5b6570", dash="dot"))
    fig.update_layout(title=dict(text=title), height=max(260, 110 + 26 * len(groups)),
                      xaxis=dict(title=dict(text="MAPE (%)"), rangemode="tozero"),
                      yaxis=dict(autorange="reversed", automargin=True), margin=dict(l=10, r=20, t=50, b=50))
    return fig


def _by(rows: list[dict], key) -> list[tuple[str, list[float]]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r["ape"])
    return list(out.items())


def _summary(m: dict) -> str:
    pct = lambda x: num(x, "{:.1%}")
    rows = [["rows", f"{m.get('rows', '?')} ({m.get('evaluated', '?')} evaluated, "
                     f"{len(m.get('skipped', []))} skipped)"],
            ["MAPE", f"{pct(m.get('mape'))} (max {pct(m.get('max_ape'))})"],
            ["speed-up MAPE", f"{pct(m.get('speedup_mape'))} over {m.get('speedup_rows', 0)} rows"],
            ["best plan predicted best", f"{num(m.get('top1'), '{:.2f}')} of {m.get('top1_groups', 0)} groups"],
            ["rank correlation",
             f"Spearman {num(m.get('spearman'), '{:.3f}')} over {m.get('spearman_groups', 0)} groups"]]
    if "rows" not in m:      # validate --oom alone: no latencies were compared
        rows = []
    if m.get("profile"):
        rows.insert(0, ["hardware profile", m["profile"]])
    if m.get("predicted_oom"):
        rows.append(["published runs predicted OOM", ", ".join(map(str, m["predicted_oom"]))])
    html = '<div class="card">' + kv_table(rows) + "</div>" if rows else '<p class="note">Nothing was evaluated.</p>'
    if m.get("skipped"):
        html += '<div class="card"><p class="note">Rows that could not be evaluated</p>' + table(
            ["id", "reason"], [[s.get("id"), s.get("reason")] for s in m["skipped"]]) + "</div>"
    return html


def oom_figure(oom: dict) -> go.Figure | None:
    rows = [d for d in oom.get("rows_detail", []) if finite(d.get("memory_gb")) is not None]
    if not rows:
        return None
    fig = go.Figure(go.Bar(
        orientation="h", y=[f"{d['id']}: {d['plan']}" for d in rows], x=[d["memory_gb"] for d in rows],
        marker_color=["#00cc96" if not d.get("fits") else "#d62728" for d in rows],
        hovertemplate="<b>%{y}</b><br>%{x:.1f} GB per GPU predicted<extra></extra>"))
    fig.update_layout(title=dict(text=f"Published out-of-memory runs: {oom.get('predicted_oom', 0)} of "
                                      f"{oom.get('evaluated', len(rows))} predicted not to fit (green)"),
                      height=max(260, 110 + 24 * len(rows)), xaxis=dict(title=dict(text="predicted GB per GPU")),
                      yaxis=dict(autorange="reversed", automargin=True), margin=dict(l=10, r=20, t=50, b=50))
    return fig


def _render(metrics: dict, rows: list[dict], path) -> None:
    check_out_path(path, (".html", ".htm"), "report")
    page = Page("paradiff validate: predictions against published runs")
    page.html(_summary(metrics))
    if rows:
        page.figure("fig-scatter", scatter_figure(rows),
                    note=f"Each point is a published run; inside the band the prediction is within {BAND:.0%}.")
        if any(r["source"] != "?" for r in rows):
            by_source = _by(rows, lambda r: r["source"])
        else:      # validate --json rows carry no source: its per_source summary has the numbers
            by_source = [(s["source"], [s["mape"]] * s["rows"]) for s in metrics.get("per_source", [])
                         if finite(s.get("mape")) is not None and s.get("rows")]
        if by_source:
            page.figure("fig-by-source", mape_figure(by_source, "Error by source"))
        if any(r["gpu"] != "?" for r in rows):
            page.figure("fig-by-gpu", mape_figure(_by(rows, lambda r: r["gpu"]), "Error by GPU"), side_by_side=True)
        page.figure("fig-by-strategy", mape_figure(_by(rows, lambda r: strategy(r["plan"])), "Error by strategy"),
                    side_by_side=True)
    elif "rows" in metrics:
        page.note("No row with a measured latency was evaluated.")
    if isinstance(metrics.get("oom"), dict):
        fig = oom_figure(metrics["oom"])
        if fig is not None:
            page.figure("fig-oom", fig)
    page.write(path)


def write_validate_report(metrics: dict, results, path) -> None:
    """metrics: planner.validate.metrics(results) (plus "profile", "oom" if any);
    results: the list of planner.validate.RowResult it was computed from."""
    if not isinstance(metrics, dict):
        raise UsageError("validate report: metrics must be the dict of planner.validate.metrics")
    _render(metrics, rows_from_results(results or []), path)


def report_from_json(doc, path) -> None:
    """The page from a saved `validate --json` document."""
    if not isinstance(doc, dict) or not ("rows_detail" in doc or "oom" in doc):
        raise UsageError("not a `validate --json` document (needs rows_detail or oom)")
    _render(doc, rows_from_json(doc), path)
