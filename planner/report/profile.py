"""`profile --report`: a hardware profile's measurements against the curves fitted to them.

From profiler.fit.curves_for_report(doc): per op class, the measured efficiency samples,
the pooled points the cost model interpolates and the parametric fit; per collective,
the raw and monotone times and the alpha-beta fit, shown both as time (log-log, where
the latency floor shows) and as bandwidth (where the plateau shows).
"""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import UsageError
from .html import PALETTE, Page, check_out_path, esc, kv_table, log_axis, num


def _check(doc) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("compute"), dict) or "device" not in doc:
        raise UsageError("not a hardware profile (written by `cli.py profile`): needs device and compute")
    if doc.get("format", "paradiff-hw-profile") != "paradiff-hw-profile":
        raise UsageError(f"not a hardware profile: format is {doc.get('format')!r}")


def efficiency_figure(compute: dict) -> go.Figure | None:
    classes = list(compute)
    if not classes:
        return None
    cols = 2 if len(classes) > 1 else 1
    nrows = math.ceil(len(classes) / cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=classes, vertical_spacing=0.12 if nrows > 1 else 0.1)
    for i, cls in enumerate(classes):
        c = compute[cls]
        row, col = i // cols + 1, i % cols + 1
        first = i == 0      # one legend entry per kind of trace, shared by all classes
        unit = c["unit"]
        s = c["samples"]
        fig.add_trace(go.Scatter(
            x=[x[0] for x in s], y=[x[1] for x in s], mode="markers", name="measured samples",
            legendgroup="samples", showlegend=first, marker=dict(color=PALETTE[0], size=6, opacity=0.6),
            text=[str(x[2]) for x in s],
            hovertemplate="%{text}<br>%{x:.3g} " + unit + "<br>efficiency %{y:.3f}<extra>" + cls + "</extra>"),
            row=row, col=col)
        fig.add_trace(go.Scatter(
            x=[p[0] for p in c["points"]], y=[p[1] for p in c["points"]], mode="lines+markers",
            name="points the cost model uses", legendgroup="points", showlegend=first,
            line=dict(color=PALETTE[1]), marker=dict(size=7),
            hovertemplate="%{x:.3g} " + unit + "<br>efficiency %{y:.3f}<extra>" + cls + " points</extra>"),
            row=row, col=col)
        fig.add_trace(go.Scatter(
            x=[p[0] for p in c["fit"]], y=[p[1] for p in c["fit"]], mode="lines",
            name="fit: size / (peak · e_max) + t0", legendgroup="fit", showlegend=first,
            line=dict(color="#1d232b", dash="dash"),
            hovertemplate=f"e_max {c['e_max']:.3f}, t0 {c['t0_us']:.1f} us<br>" + "%{x:.3g} " + unit
                          + "<br>efficiency %{y:.3f}<extra>" + cls + " fit</extra>"),
            row=row, col=col)
        xs = [x[0] for x in s] + [p[0] for p in c["points"]]
        fig.update_xaxes(title_text=f"{'bytes' if unit == 'byte' else 'FLOP'} per op", row=row, col=col,
                         **log_axis(min(xs), max(xs)))
        fig.update_yaxes(title_text="efficiency", rangemode="tozero", row=row, col=col)
    fig.update_layout(title=dict(text="Compute efficiency against op size"), height=150 + 300 * nrows,
                      margin=dict(l=60, r=20, t=90, b=50),
                      legend=dict(orientation="h", y=-0.08 if nrows > 1 else -0.2, x=0))
    return fig


def comm_figure(comm: dict, bandwidth: bool) -> go.Figure | None:
    if not comm:
        return None
    fig = go.Figure()
    for i, (name, c) in enumerate(comm.items()):
        colour = PALETTE[i % len(PALETTE)]
        sizes = c["sizes"]
        if bandwidth:   # nbytes / time: GB/s
            conv = lambda s, t_us: s / (t_us * 1e-6) / 1e9 if t_us and t_us > 0 else None
            unit, fmt = "GB/s", "%{y:.3g} GB/s"
        else:
            conv = lambda s, t_us: t_us
            unit, fmt = "us", "%{y:.4g} us"
        fig.add_trace(go.Scatter(x=sizes, y=[conv(s, t) for s, t in zip(sizes, c["raw_times_us"])], mode="markers",
                                 name=f"{name} measured", legendgroup=name, showlegend=False,
                                 marker=dict(color=colour, size=7, opacity=0.55),
                                 hovertemplate="%{x:.3g} bytes<br>" + fmt + "<extra>" + name + " raw</extra>"))
        fig.add_trace(go.Scatter(x=sizes, y=[conv(s, t) for s, t in zip(sizes, c["times_us"])], mode="lines",
                                 name=name, legendgroup=name, line=dict(color=colour),
                                 hovertemplate="%{x:.3g} bytes<br>" + fmt + "<extra>" + name + " monotone</extra>"))
        fig.add_trace(go.Scatter(
            x=[p[0] for p in c["fit"]], y=[conv(p[0], p[1]) for p in c["fit"]], mode="lines",
            name=f"{name} fit", legendgroup=name, showlegend=False, line=dict(color=colour, dash="dash"),
            hovertemplate=f"alpha {num(c.get('latency_us'), '{:.1f}')} us, beta {num(c.get('bw_gbps'), '{:.3g}')} "
                          "GB/s<br>%{x:.3g} bytes<br>" + fmt + "<extra>" + name + " fit</extra>"))
    what = "Collective bandwidth (bytes / time)" if bandwidth else "Collective time"
    sizes = [s for c in comm.values() for s in c["sizes"]]
    times = [t for c in comm.values() for t in c["raw_times_us"] + c["times_us"] if t and t > 0]
    fig.update_layout(title=dict(text=f"{what}: measured, made monotone, and the alpha-beta fit"), height=480,
                      xaxis=dict(title=dict(text="message size (bytes)")) | log_axis(min(sizes), max(sizes)),
                      yaxis=dict(title=dict(text=unit), rangemode="tozero") if bandwidth
                      else dict(title=dict(text=unit)) | log_axis(min(times), max(times)),
                      legend=dict(font=dict(size=10)), hovermode="closest")
    return fig


def write_profile_report(doc: dict, path) -> None:
    """Render a profile document (as `cli.py profile` writes it) to path."""
    from profiler.fit import curves_for_report
    _check(doc)
    check_out_path(path, (".html", ".htm"), "report")
    try:
        curves = curves_for_report(doc)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        raise UsageError(f"hardware profile is malformed ({type(e).__name__}: {e})") from None
    dev, prov = doc.get("device", {}), doc.get("provenance", {})
    page = Page(f"paradiff profile: {doc.get('name', prov.get('device_name', 'hardware'))}")
    rows = [["device", f"{prov.get('device_name', '?')} as GPU id '{dev.get('gpu_id', '?')}' ({dev.get('kind', '?')}), "
                       f"{dev.get('dtype', '?')}" + (f", {dev['threads']} threads" if dev.get("threads") else "")],
            ["peak used for efficiency", f"{num(dev.get('peak_flops'), '{:.3g}')} FLOP/s, "
                                         f"{num(dev.get('memory_bw'), '{:.3g}')} B/s"],
            ["launch overhead", f"{num(curves.get('launch_us'), '{:.2f}')} us"],
            ["collectives", f"{curves.get('link') or 'not measured'}"
                            + (f" ({doc['comm']['skipped']})" if doc.get("comm", {}).get("skipped") else "")],
            ["measured", f"{prov.get('date', '?')} on {prov.get('host', '?')}, torch {prov.get('torch', '?')}, "
                         f"{prov.get('backend', '?')}, preset {prov.get('preset', '?')} "
                         f"({prov.get('seconds', '?')} s)"]]
    page.html('<div class="card">' + kv_table(rows) + "</div>")
    figs = [("fig-efficiency", efficiency_figure(curves["compute"])),
            ("fig-comm-time", comm_figure(curves["comm"], bandwidth=False)),
            ("fig-comm-bandwidth", comm_figure(curves["comm"], bandwidth=True))]
    if all(f is None for _, f in figs):
        page.note("The profile has no curves to plot.")
    for div_id, fig in figs:
        if fig is not None:
            page.figure(div_id, fig, note="Dots: measured; line: made monotone (what the cost model "
                                          "uses); dashed: the fit." if div_id != "fig-efficiency" else "")
    if not curves["comm"]:
        page.html(f'<p class="note">{esc("No collective was measured.")}</p>')
    page.write(path)
