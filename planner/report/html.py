"""The page around the figures, and writing it safely.

One page holds several figures; plotly.js (about 4.8 MB) is inlined once in <head>
rather than once per figure (include_plotlyjs=True on every figure would repeat it),
and never loaded from a CDN: reports must open on machines without a network.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

from ..errors import UsageError
from ..outfiles import check_out_path, write_atomic   # noqa: F401  (the reports' import point)

# Qualitative colours shared by every report, so "compute" or "exact" look the same
# in each of them (Plotly's default sequence, then more for many groups).
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
           "#ff97ff", "#fecb52", "#1f77b4", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#393b79")

_CONFIG = {"displaylogo": False, "responsive": True,
           # the camera button saves what the reader sees, at twice the resolution
           "toImageButtonOptions": {"format": "png", "scale": 2}}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       background: #f6f7f9; color: #1d232b; }
main { max-width: 1500px; margin: 0 auto; padding: 18px 24px 40px; }
h1 { font-size: 1.45em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.1em; margin: 1.4em 0 0.4em; }
p.lead { margin: 0.2em 0; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 8px 12px;
        margin: 10px 0; }
/* two fixed columns, not auto-fit: plotly sizes a figure when its script runs, before the
   next card exists, and an auto-fit grid would then still be one column wide */
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px; }
@media (max-width: 1100px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.grid > .card { margin: 0; min-width: 0; }
.note { color: #5b6570; font-size: 0.9em; margin: 4px 0; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
th { color: #5b6570; font-weight: 600; }
code { background: #eef0f3; padding: 0 3px; border-radius: 3px; }
"""


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def num(x, fmt: str = "{:.3g}", missing: str = "n/a") -> str:
    """A number for text, or `missing` for None/NaN/inf (JSON has no NaN)."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return missing
    return fmt.format(x)


def finite(x):
    """x if it is a finite number, else None: plotly.js draws None as a gap, while
    Infinity or NaN in the figure JSON would be dropped or break the axis range."""
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def fmt_s(s) -> str:
    if not isinstance(s, (int, float)) or not math.isfinite(s):
        return "n/a"
    return f"{s:.3g} s" if s >= 1 else f"{s * 1e3:.3g} ms"


def log_axis(lo: float, hi: float) -> dict:
    """Tick settings of a log axis over [lo, hi] (lo > 0). Plotly labels the 2s and 5s
    of every decade, which crowds an axis spanning several decades: there, decades
    only; on a shorter axis, 1-2-5 values written plainly."""
    if not (lo > 0 and hi >= lo):
        return dict(type="log")
    if hi / lo >= 1000:
        return dict(type="log", dtick=1)
    ticks = []
    for d in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        ticks += [m * 10.0 ** d for m in (1, 2, 5) if lo / 1.5 <= m * 10.0 ** d <= hi * 1.5]
    return dict(type="log", tickvals=ticks, ticktext=[f"{t:,g}" for t in ticks])


def table(head: list[str], rows: list[list]) -> str:
    """An HTML table; cells are escaped here, so callers pass plain values."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def kv_table(rows: list[list]) -> str:
    """A two-column table of (name, value) rows, names as row headers."""
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


class Page:
    """Sections of a report, in reading order: headings, HTML text and figures."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.figure_ids: list[str] = []
        self._grid: list[str] | None = None

    def heading(self, text: str) -> None:
        self._flush()
        self.parts.append(f"<h2>{esc(text)}</h2>")

    def html(self, fragment: str) -> None:
        """Raw HTML (already escaped by the caller)."""
        self._flush()
        self.parts.append(fragment)

    def note(self, text: str) -> None:
        self.html(f'<p class="note">{esc(text)}</p>')

    def figure(self, div_id: str, fig, note: str = "", side_by_side: bool = False) -> None:
        """Add a figure. side_by_side: share a row with the next side_by_side figure
        when the window is wide enough (CSS grid), else stack."""
        if div_id in self.figure_ids:
            raise ValueError(f"figure id {div_id} used twice")
        self.figure_ids.append(div_id)
        fig.update_layout(template="plotly_white", autosize=True)
        if not fig.layout.margin.to_plotly_json():      # figures that need room set their own
            fig.update_layout(margin=dict(l=60, r=20, t=50, b=50))
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG,
                          default_height=f"{fig.layout.height or 450}px")
        card = f'<div class="card">{div}' + (f'<p class="note">{esc(note)}</p>' if note else "") + "</div>"
        if side_by_side:
            if self._grid is None:
                self._grid = []
            self._grid.append(card)
        else:
            self._flush()
            self.parts.append(card)

    def _flush(self) -> None:
        if self._grid:
            self.parts.append('<div class="grid">' + "".join(self._grid) + "</div>")
        self._grid = None

    def render(self) -> str:
        from plotly.offline import get_plotlyjs
        self._flush()
        # "</script" inside the inlined library would end the script element early
        js = get_plotlyjs().replace("</script", "<\\/script")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(self.title)}</title><style>{_CSS}</style>"
                f"<script type=\"text/javascript\">{js}</script></head>\n<body><main>"
                f"<h1>{esc(self.title)}</h1>\n" + "\n".join(self.parts) + "\n</main></body></html>\n")

    def write(self, path) -> Path:
        return write_atomic(path, self.render())


def write_json_atomic(path, doc) -> Path:
    return write_atomic(path, json.dumps(doc, allow_nan=False) + "\n")
