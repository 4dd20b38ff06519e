"""The plan report's engine figure: the best plan each inference engine can run, side by side.

Drawn from the plan document's "engines" (planner/engines/output.engines_doc): one bar per
engine, the latency of the fastest plan it can run on this model and cluster, labelled
with the plan; an engine that can run none gets an empty row that says why.
"""
from __future__ import annotations

import plotly.graph_objects as go

from .html import esc


def engines_figure(best: list[dict], rec: str | None, unit: tuple[str, float]) -> go.Figure:
    name, k = unit
    names = [r["title"] for r in best]
    xs = [r["latency_s"] * k if r.get("plan") else 0.0 for r in best]
    runs_rec = ["#1f77b4" if r.get("plan") and r["plan"] == rec else "#9aa4ae" for r in best]
    text = [esc(r["plan"]) + ("" if r.get("placed", True) else " ~") if r.get("plan") else
            f"none: {esc(r.get('why', ''))}" for r in best]
    fig = go.Figure(go.Bar(
        orientation="h", y=names, x=xs, text=text, textposition="outside", cliponaxis=False,
        marker=dict(color=runs_rec),
        customdata=[[r.get("plan") or "none", r.get("speedup") or 0] for r in best],
        hovertemplate="<b>%{y}</b>: %{customdata[0]}<br>%{x:.4g} " + name + ", %{customdata[1]:.2f}x<extra></extra>"))
    worst = max(xs, default=0.0) or 1.0
    fig.update_layout(title=dict(text="Best plan per inference engine (blue: runs the recommendation)"),
                      height=120 + 40 * len(best), showlegend=False,
                      xaxis=dict(title=dict(text=f"latency ({name})"), range=[0, worst * 1.9]),
                      yaxis=dict(autorange="reversed", automargin=True), margin=dict(l=10, r=20, t=50, b=50))
    return fig
