"""`plan --report` and `plan --trace`: the ranked plans, their Pareto front of latency
against memory, the recommended plan's timeline and the cluster it runs on.

The report is rendered from the plan command's JSON document alone (the `--json`
output with "timeline", "layout" and "cluster_graph": planner/plan_cli.py document), so
`cli.py report plan saved.json` rebuilds exactly the page `plan --report` writes.
"""
from __future__ import annotations

import plotly.graph_objects as go

from ..errors import UsageError
from .gantt import COLOURS as LANE_COLOURS
from .gantt import gantt_figure
from .graph import cluster_figure
from .html import Page, check_out_path, esc, fmt_s, kv_table, log_axis, num

# Breakdown keys (planner/spec.py Breakdown) in stacking order, with their legend names.
PARTS = (("compute", "compute"), ("comm", "exposed communication"), ("warmup", "warm-up steps"),
         ("bubble", "pipeline bubbles"), ("text_encoders", "text encoders"), ("vae", "VAE decode"),
         ("other", "overheads"))
PART_COLOURS = {"compute": LANE_COLOURS["compute"], "comm": LANE_COLOURS["comm"], "warmup": "#fecb52",
                "bubble": "#ffa15a", "text_encoders": "#00cc96", "vae": "#ab63fa", "other": "#7f7f7f"}
# Fidelity classes of planner/textout.py: marker symbol and colour in the Pareto chart.
FIDELITY = {"exact": ("circle", "#1f77b4"), "near": ("diamond", "#ff7f0e"),
            "approximate": ("triangle-up", "#9467bd")}
MAX_BARS = 40      # beyond this many plans a bar chart is unreadable; the scatter shows all


def fidelity(p: dict) -> str:
    if p.get("exact"):
        return "exact"
    return "approximate" if p.get("approx_steps") else "near"


# ---------------------------------------------------------------- figures
def time_unit(plans: list[dict]) -> tuple[str, float]:
    """Milliseconds for image-sized latencies, seconds once a plan takes 10 s or more
    (video models: millions of ms are hard to read)."""
    worst = max((p["latency_s"] for p in plans), default=0.0)
    return ("ms", 1e3) if worst < 10 else ("s", 1.0)


def _label(i: int, p: dict, rec: str | None) -> str:
    mark = " ★" if p["plan"] == rec else ""
    return f"{i}. {p['plan']}{mark}" + ("" if p.get("fits", True) else " (OOM)")


def breakdown_figure(plans: list[dict], rec: str | None) -> go.Figure:
    shown = plans[:MAX_BARS]
    labels = [_label(i, p, rec) for i, p in enumerate(shown, 1)]
    unit, k = time_unit(plans)
    fig = go.Figure()
    for key, name in PARTS:
        xs = [p["breakdown"].get(key, 0.0) * k for p in shown]
        if not any(xs):
            continue
        fig.add_trace(go.Bar(
            name=name, orientation="h", y=labels, x=xs,
            marker=dict(color=PART_COLOURS[key],
                        # out-of-memory plans are hatched: ranked, but not runnable here
                        pattern=dict(shape=["" if p.get("fits", True) else "/" for p in shown])),
            customdata=[[p["latency_s"] * k, p["speedup"], p["memory_gb_per_gpu"], fidelity(p),
                         100 * p["breakdown"].get(key, 0.0) / p["latency_s"] if p["latency_s"] else 0]
                        for p in shown],
            hovertemplate="<b>%{y}</b><br>" + name + f": %{{x:.4g}} {unit} (%{{customdata[4]:.0f}}%)<br>"
                          f"latency %{{customdata[0]:.4g}} {unit}, %{{customdata[1]:.2f}}x<br>"
                          "%{customdata[2]:.1f} GB per GPU, %{customdata[3]}<extra></extra>"))
    more = f" (fastest {MAX_BARS} of {len(plans)})" if len(plans) > MAX_BARS else ""
    # the legend goes under the axis title, a fixed number of pixels below the plot: long
    # plan names leave the legend little width, and it may wrap to one entry per line
    height, top, bottom = max(360, 250 + 22 * len(shown)), 50, 190
    fig.update_layout(
        title=dict(text=f"Ranked plans: where the latency goes{more}"), barmode="stack", height=height,
        xaxis=dict(title=dict(text=f"latency ({unit})")),
        yaxis=dict(categoryorder="array", categoryarray=labels, autorange="reversed", automargin=True),
        legend=dict(orientation="h", yanchor="top", y=-55 / (height - top - bottom), x=0, traceorder="normal"),
        margin=dict(l=10, r=20, t=top, b=bottom))
    return fig


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (memory, latency) points no other point beats on both, by increasing memory."""
    front, best = [], float("inf")
    for m, t in sorted(points):
        if t < best:
            front.append((m, t))
            best = t
    return front


def pareto_figure(plans: list[dict], rec: str | None, capacity_gb: float | None, gpu: str) -> go.Figure:
    unit, k = time_unit(plans)
    fig = go.Figure()
    fitting = [(p["memory_gb_per_gpu"], p["latency_s"] * k) for p in plans if p.get("fits", True)]
    front = pareto_front(fitting)
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=[m for m, _ in front], y=[t for _, t in front], mode="lines",
                                 line=dict(shape="hv", color="#9aa4ae", dash="dash"), name="Pareto front",
                                 hoverinfo="skip"))
    groups = [(f"{f} plans", [p for p in plans if p.get("fits", True) and fidelity(p) == f], *FIDELITY[f])
              for f in FIDELITY]
    groups.append(("out of memory", [p for p in plans if not p.get("fits", True)], "x", "#d62728"))
    for name, ps, symbol, colour in groups:
        if not ps:
            continue
        fig.add_trace(go.Scatter(
            x=[p["memory_gb_per_gpu"] for p in ps], y=[p["latency_s"] * k for p in ps], mode="markers",
            name=name, marker=dict(symbol=symbol, color=colour, size=10, line=dict(width=1, color="#ffffff")),
            customdata=[[p["plan"], p["speedup"], fidelity(p), p.get("approx_steps", 0)] for p in ps],
            hovertemplate="<b>%{customdata[0]}</b><br>%{y:.4g} " + unit + ", %{customdata[1]:.2f}x<br>"
                          "%{x:.2f} GB per GPU<br>%{customdata[2]} (%{customdata[3]} approximate steps)"
                          "<extra></extra>"))
    r = next((p for p in plans if p["plan"] == rec), None)
    if r is not None:
        fig.add_trace(go.Scatter(x=[r["memory_gb_per_gpu"]], y=[r["latency_s"] * k], mode="markers",
                                 name="recommended", marker=dict(symbol="star", size=20, color="#ffd400",
                                                                 line=dict(width=1.5, color="#1d232b")),
                                 hovertemplate=f"<b>recommended: {esc(rec)}</b><br>%{{y:.4g}} {unit}<br>"
                                               "%{x:.2f} GB per GPU<extra></extra>"))
    if capacity_gb:
        fig.add_vline(x=capacity_gb, line=dict(color="#d62728", width=2, dash="dot"),
                      annotation_text=f"{gpu} memory {capacity_gb:.0f} GB", annotation_position="top left",
                      annotation_font=dict(color="#d62728"))
    lat = [p["latency_s"] * k for p in plans if p["latency_s"] > 0]
    log = bool(lat) and max(lat) / min(lat) > 8      # a few baselines can be 10-100x slower
    yaxis = dict(title=dict(text=f"latency ({unit})"))
    yaxis |= log_axis(min(lat), max(lat)) if log else dict(type="linear")
    fig.update_layout(title=dict(text="Latency against memory per GPU"), height=520, hovermode="closest",
                      xaxis=dict(title=dict(text="peak memory per GPU (GB)"), rangemode="tozero"), yaxis=yaxis,
                      legend=dict(orientation="h", y=-0.18, x=0))
    return fig


# ---------------------------------------------------------------- the page
def _check(doc) -> None:
    if not isinstance(doc, dict) or not all(k in doc for k in ("scenario", "cluster", "plans")):
        raise UsageError("not a `plan --json` document (needs keys scenario, cluster and plans)")
    if not isinstance(doc["plans"], list):
        raise UsageError(f"not a `plan --json` document: 'plans' must be a list, got {type(doc['plans']).__name__}")
    for p in doc["plans"]:
        if not isinstance(p, dict) or not all(k in p for k in ("plan", "latency_s", "breakdown",
                                                               "memory_gb_per_gpu")):
            raise UsageError("not a `plan --json` document: a plan lacks plan/latency_s/breakdown/memory")


def _scenario_html(doc: dict) -> str:
    sc, cl = doc["scenario"], doc["cluster"]
    size = f"{sc.get('height')}x{sc.get('width')}" + (f", {sc['frames']} frames" if sc.get("frames", 1) > 1 else "")
    rows = [["model", f"{sc.get('model_name', sc.get('model'))} ({sc.get('model')})"],
            ["output", f"{size}, {sc.get('steps')} steps, batch {sc.get('batch', 1)}, "
                       f"{'CFG (2 branches)' if sc.get('cfg') else 'no CFG'}, {sc.get('dtype')}"
                       + (", compiled" if sc.get("compiled") else "")],
            ["latency counts", "text encoders + denoising + VAE" if sc.get("scope") == "pipeline"
             else "the denoising loop only"],
            ["cluster", cl.get("describe", "")], ["hardware profile", doc.get("profile", "")]]
    rec = doc.get("recommended")
    if rec:
        rows.append(["recommended", f"{rec['plan']}: {fmt_s(rec['latency_s'])}, {num(rec['speedup'], '{:.2f}')}x "
                                    f"over one GPU, {num(rec['memory_gb_per_gpu'], '{:.1f}')} GB per GPU, "
                                    f"{fidelity(rec)}"])
    else:
        rows.append(["recommended", "none: no plan fits in memory"])
    if doc.get("xdit"):
        rows.append(["xDiT flags", " ".join(doc["xdit"].get("flags", []))])
    if (doc.get("engine") or {}).get("launch"):
        rows.append([f"{doc['engine']['title']} launch", doc["engine"]["launch"]])
    if "seconds" in doc:
        rows.append(["search", f"{len(doc['plans'])} plans in {doc['seconds']} s"])
    return '<div class="card">' + kv_table(rows) + "</div>"


def write_plan_report(doc: dict, path) -> None:
    """Render a plan document (cmd_plan's `out`, or a saved `plan --json`) to path."""
    _check(doc)
    check_out_path(path, (".html", ".htm"), "report")
    plans = doc["plans"]
    rec = (doc.get("recommended") or {}).get("plan")
    gpu_ids = doc["cluster"].get("gpus") or ["GPU"]
    caps = [p["capacity_gb"] for p in plans if p.get("capacity_gb")]
    page = Page(f"paradiff plan: {doc['scenario'].get('model_name', doc['scenario'].get('model'))} "
                f"on {doc['cluster'].get('n', '?')} GPUs")
    page.html(_scenario_html(doc))
    if plans:
        page.figure("fig-breakdown", breakdown_figure(plans, rec), side_by_side=True,
                    note="Bars stack the predicted latency; hatched bars do not fit in GPU memory; ★ recommended.")
        page.figure("fig-pareto", pareto_figure(plans, rec, min(caps) if caps else None, gpu_ids[0]),
                    side_by_side=True,
                    note="Exact plans give one GPU's output; near plans reuse slightly stale activations; "
                         "approximate plans reuse earlier predictions for some steps.")
    else:
        page.note("No plan was evaluated.")
    if (doc.get("engines") or {}).get("best"):
        from .engines import engines_figure
        page.figure("fig-engines", engines_figure(doc["engines"]["best"], rec, time_unit(plans)),
                    note="Each engine's fastest plan among the ranked ones that it can run (planner/engines); "
                         "~: predicted in xDiT's rank order (plan --engine NAME also places it).")
    tl = doc.get("timeline")
    if tl and tl.get("tasks"):
        why = "recommended plan" if tl.get("recommended") else "fastest plan (none fits in memory)"
        page.figure("fig-timeline", gantt_figure(tl, f"Timeline of the {why} {tl.get('plan', '')}: first "
                                                     f"{len(tl.get('step_ends_s', []))} steps per rank"),
                    note="Simulated by the cost model. A row stands for every rank doing the same work; "
                         "grey is compute idle time (bubbles, waiting for communication).")
    if doc.get("cluster_graph"):
        lay = doc.get("layout")
        page.figure("fig-cluster", cluster_figure(doc["cluster_graph"], lay,
                                                  f"Cluster and the groups of {lay['plan'] if lay else 'the plan'}"),
                    note="Choose a parallel dimension in the menu: GPUs of one colour communicate in one group.")
    page.write(path)
