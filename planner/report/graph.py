"""The cluster graph (planner/cluster.py) with a plan's rank groups coloured on it.

GPU vertices take the colour of their group along one parallel dimension at a time;
a dropdown switches the dimension (one GPU trace per dimension, only one visible), so
a reader can see, e.g., that the Ulysses groups stay inside a socket while the CFG
groups cross the UPI link. Edges are drawn per link id (legend entries) with width
growing with bandwidth; hovering an edge's midpoint gives its bandwidth and latency.
"""
from __future__ import annotations

import math

import networkx as nx
import plotly.graph_objects as go

from .html import PALETTE

_KIND_SYMBOL = {"socket": "square", "switch": "diamond", "nic": "triangle-up", "fabric": "hexagon"}
_KIND_COLOUR = {"socket": "#5b6570", "switch": "#2a3f5f", "nic": "#8c564b", "fabric": "#393b79"}


def positions(graph: dict) -> dict[str, tuple[float, float]]:
    """Vertex positions: networkx's spring layout, seeded so that a report rebuilt from
    JSON looks the same, with edges weighted by latency so that a fast link (NVLink)
    pulls its GPUs closer than a slow one (PCIe through a socket)."""
    g = nx.Graph()
    g.add_nodes_from(n["id"] for n in graph["nodes"])
    for e in graph["edges"]:
        g.add_edge(e["u"], e["v"], weight=1.0 / math.log10(10 + e["latency_us"]))
    if g.number_of_nodes() == 0:
        return {}
    pos = nx.spring_layout(g, seed=7, weight="weight", iterations=200)
    return {k: (float(x), float(y)) for k, (x, y) in pos.items()}


def _edge_traces(graph: dict, pos: dict) -> list[go.Scatter]:
    by_link: dict[str, list[dict]] = {}
    for e in graph["edges"]:
        by_link.setdefault(e["link"], []).append(e)
    bws = [e["bw_gbps"] for e in graph["edges"] if e["bw_gbps"] > 0]
    lo, hi = (min(bws), max(bws)) if bws else (1.0, 1.0)
    traces = []
    for i, (link, es) in enumerate(sorted(by_link.items())):
        colour = PALETTE[(i + 6) % len(PALETTE)]
        bw = max(e["bw_gbps"] for e in es)
        width = 1.5 + 4.5 * (math.log(bw / lo) / math.log(hi / lo) if hi > lo and bw > 0 else 0.5)
        xs, ys = [], []
        for e in es:
            (x0, y0), (x1, y1) = pos[e["u"]], pos[e["v"]]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=f"link {link}", legendgroup=link,
                                 line=dict(color=colour, width=width), hoverinfo="skip"))
        # lines cannot carry hover text between their ends: invisible midpoints do
        traces.append(go.Scatter(
            x=[(pos[e["u"]][0] + pos[e["v"]][0]) / 2 for e in es],
            y=[(pos[e["u"]][1] + pos[e["v"]][1]) / 2 for e in es], mode="markers", legendgroup=link,
            showlegend=False, marker=dict(size=9, color=colour, opacity=0.25),
            customdata=[[e["u"], e["v"], e["bw_gbps"], e["latency_us"]] for e in es],
            hovertemplate="%{customdata[0]} – %{customdata[1]}<br>" + f"link {link}"
                          + "<br>%{customdata[2]:.1f} GB/s per direction<br>%{customdata[3]:.2f} us"
                          "<extra></extra>"))
    return traces


def _gpu_trace(gpus: list[dict], pos: dict, dim: str | None, groups: list[list[int]], used: int,
               visible: bool) -> go.Scatter:
    group_of = {r: i for i, g in enumerate(groups) for r in g}
    colours, texts = [], []
    for n in gpus:
        r = n.get("rank", -1)
        gi = group_of.get(r)
        if r >= used or gi is None:
            colours.append("#c8cdd3")
            texts.append(f"{n['id']} ({n.get('gpu', '?')})<br>rank {r}: not used by the plan")
            continue
        colours.append(PALETTE[gi % len(PALETTE)])
        members = ", ".join(str(x) for x in groups[gi])
        texts.append(f"{n['id']} ({n.get('gpu', '?')}), node {n.get('node', 0)}<br>rank {r}"
                     + (f"<br>{dim} group {gi}: ranks {members}" if dim else ""))
    few = len(gpus) <= 16       # beyond that, names overlap: hovering tells which GPU it is
    return go.Scatter(
        x=[pos[n["id"]][0] for n in gpus], y=[pos[n["id"]][1] for n in gpus], mode="markers+text" if few else "markers",
        name=f"GPUs by {dim} group" if dim else "GPUs", visible=visible, text=[f"gpu{n.get('rank', '')}" for n in gpus],
        textposition="top center", textfont=dict(size=10),
        marker=dict(size=20 if few else 12, color=colours, line=dict(width=1.5 if few else 0.8, color="#1d232b"),
                    symbol="circle"),
        hovertext=texts, hovertemplate="%{hovertext}<extra></extra>")


def cluster_figure(graph: dict, layout: dict | None, title: str) -> go.Figure:
    pos = positions(graph)
    fig = go.Figure()
    for t in _edge_traces(graph, pos):
        fig.add_trace(t)
    others = [n for n in graph["nodes"] if n.get("kind") != "gpu"]
    for kind in sorted({n.get("kind", "?") for n in others}):
        ns = [n for n in others if n.get("kind", "?") == kind]
        fig.add_trace(go.Scatter(
            x=[pos[n["id"]][0] for n in ns], y=[pos[n["id"]][1] for n in ns],
            mode="markers+text" if len(graph["nodes"]) <= 24 else "markers",
            name=kind, text=[n["id"] for n in ns], textposition="bottom center", textfont=dict(size=10),
            marker=dict(size=15, symbol=_KIND_SYMBOL.get(kind, "circle"), color=_KIND_COLOUR.get(kind, "#7f7f7f")),
            hovertemplate="%{text}<extra>" + kind + "</extra>"))
    gpus = sorted((n for n in graph["nodes"] if n.get("kind") == "gpu"), key=lambda n: n.get("rank", 0))
    fixed = len(fig.data)
    dims = list((layout or {}).get("groups", {}).items())
    used = (layout or {}).get("ranks", len(gpus))
    if not dims:      # a serial plan: nothing to colour by, one group per rank
        dims = [(None, [[r] for r in range(used)])]
    for i, (dim, groups) in enumerate(dims):
        fig.add_trace(_gpu_trace(gpus, pos, dim, groups, used, visible=i == 0))
    if len(dims) > 1:
        buttons = []
        for i, (dim, groups) in enumerate(dims):
            vis = [True] * fixed + [j == i for j in range(len(dims))]
            buttons.append(dict(label=f"{dim}: {len(groups)} group{'s' if len(groups) != 1 else ''} "
                                      f"of {len(groups[0])}", method="restyle", args=[{"visible": vis}]))
        fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=0.0, xanchor="left",
                                            y=1.12, yanchor="top", showactive=True)])
    fig.update_layout(title=dict(text=title, x=0.5 if len(dims) > 1 else 0.02),
                      height=max(420, min(900, 260 + 14 * len(graph["nodes"]))),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      legend=dict(orientation="v", x=1.0, xanchor="left"),
                      hovermode="closest", margin=dict(l=10, r=10, t=90, b=10))
    return fig
