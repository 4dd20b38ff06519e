"""The simulated timeline (planner/timeline.py, JSON form Timeline.to_dict) as a Gantt chart.

The chart shows, per timeline row (a rank, or a group of ranks doing the same work),
its compute lane (compute, blocking communication and host waits, each in its colour),
its communication lane (transfers that run beside it), its host lane (the CPU issuing
kernels ahead of the GPU), and the compute lane's idle
gaps: the idle time is what pipeline bubbles cost, so it is drawn, not left as white
space that a reader might take for a missing task.
"""
from __future__ import annotations

import plotly.graph_objects as go

COLOURS = {"compute": "#636efa", "comm": "#ef553b", "host": "#7f7f7f", "hidden": "#f7a8a0",
           "redundant": "#b6b9f5", "issue": "#c7c7c7", "idle": "#d5d9de"}
# legend names of the parts (planner/timeline.py): each task is coloured by its part
NAMES = {"compute": "compute", "comm": "exposed communication", "host": "waiting for the host",
         "hidden": "overlapped transfer", "redundant": "redundant work", "issue": "host issuing kernels",
         "idle": "idle"}


def idle_gaps(tasks: list[dict], row: int, end: float, lane: str = "compute") -> list[tuple[float, float]]:
    """Intervals of [0, end] where `row`'s lane runs nothing (tasks may touch or overlap)."""
    spans = sorted((t["start"], t["end"]) for t in tasks if t["row"] == row and t["lane"] == lane)
    gaps, cur = [], 0.0
    for s, e in spans:
        if s > cur + 1e-12:
            gaps.append((cur, s))
        cur = max(cur, e)
    if end > cur + 1e-12:
        gaps.append((cur, end))
    return gaps


def gantt_figure(tl: dict, title: str) -> go.Figure:
    rows = tl["rows"]
    tasks = tl["tasks"]
    end = tl.get("makespan_s") or max((t["end"] for t in tasks), default=0.0)
    unit, k = ("ms", 1e3) if end < 10 else ("s", 1.0)     # video models' steps take seconds
    # a line per lane and row (compute, communication, and the host's where it has tasks);
    # categories are unique strings
    lanes = ("compute", "comm") + (("host",) if any(t["lane"] == "host" for t in tasks) else ())
    cat = {(r, lane): f"{rows[r]} · {lane}" for r in range(len(rows)) for lane in lanes}
    order = [cat[(r, lane)] for r in range(len(rows)) for lane in lanes]
    fig = go.Figure()
    for part in NAMES:
        if part == "idle":
            items = [{"row": r, "lane": "compute", "start": s, "end": e, "label": "idle", "step": None}
                     for r in range(len(rows)) for s, e in idle_gaps(tasks, r, end)]
        else:       # documents written before tasks had parts: a task's part is its lane
            items = [t for t in tasks if t.get("part", t["lane"]) == part]
        if not items:
            continue
        fig.add_trace(go.Bar(
            name=NAMES[part], orientation="h", y=[cat[(t["row"], t["lane"])] for t in items],
            base=[t["start"] * k for t in items], x=[(t["end"] - t["start"]) * k for t in items],
            marker=dict(color=COLOURS[part], line=dict(width=0.5, color="#ffffff")),
            customdata=[[t["label"] + (f" ({t['dim']})" if t.get("dim") else ""),
                         "" if t["step"] is None else t["step"], rows[t["row"]], t["start"] * k, t["end"] * k]
                        for t in items],
            hovertemplate="<b>%{customdata[0]}</b> (%{customdata[2]})<br>step %{customdata[1]}<br>"
                          f"%{{customdata[3]:.4g}} – %{{customdata[4]:.4g}} {unit}<br>%{{x:.4g}} {unit}"
                          f"<extra>{NAMES[part]}</extra>"))
    for i, s in enumerate(tl.get("step_ends_s", [])):
        fig.add_vline(x=s * k, line=dict(color="#7f7f7f", width=1, dash="dot"),
                      annotation_text=f"step {i} ends", annotation_position="top",
                      annotation_font=dict(size=10, color="#5b6570"))
    fig.update_layout(
        title=dict(text=title), barmode="overlay", bargap=0.25,
        height=max(260, 120 + 26 * len(order)), hovermode="closest",
        xaxis=dict(title=dict(text=f"time ({unit})"), range=[0, end * k * 1.01], zeroline=False),
        yaxis=dict(categoryorder="array", categoryarray=order, autorange="reversed", automargin=True),
        legend=dict(orientation="h", y=-0.18, x=0), margin=dict(l=10, r=20, t=60, b=60))
    return fig
