"""Open a report in headless Chromium and check what a reader would see.

Used by tests/test_reports.py, and to take the README's screenshot:

    python cli.py plan --report /tmp/plan.html
    python -m planner.report.browser /tmp/plan.html --screenshot docs/img/plan-report.png

Chromium is Debian's (/usr/bin/chromium, `apt-get install chromium`), driven through
Playwright for Python with executable_path: Playwright's own browser download
(`playwright install`) is never used, so the only browser is the distribution's.
The page may load nothing but itself: every other request is aborted and recorded,
which proves the report opens offline.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")

# Per figure div: traces with data, whether plotly drew it (an <svg class="main-svg">
# with a size, or a WebGL canvas), and how many trace groups/points ended up in the DOM.
_INSPECT = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => {
  const svg = d.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : null;
  const n = t => ['x', 'y', 'values', 'z'].map(k => (t[k] && t[k].length) || 0).reduce((a, b) => a + b, 0);
  return {id: d.id,
          traces: (d.data || []).length,
          traces_with_points: (d._fullData || []).filter(t => t.visible === true && n(t) > 0).length,
          drawn: !!(box && box.width > 50 && box.height > 50) || !!d.querySelector('canvas'),
          trace_groups: d.querySelectorAll('g.trace').length,
          title: (d.layout && d.layout.title && d.layout.title.text) || ''};
})"""
_READY = """() => { const ds = Array.from(document.querySelectorAll('.plotly-graph-div'));
  return ds.length > 0 && ds.every(d => d._fullLayout && d._fullData && d.querySelector('svg.main-svg')); }"""


@dataclass
class PageCheck:
    url: str
    title: str = ""
    figures: list[dict] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    ready: bool = False
    script_result: object = None       # what check(script=...) returned

    def problems(self) -> list[str]:
        """Everything wrong with the page, one line each (empty: the page is good)."""
        out = [f"console error: {e}" for e in self.console_errors]
        out += [f"page error: {e}" for e in self.page_errors]
        out += [f"tried to load {u} (a report must open offline)" for u in self.external_requests]
        if not self.ready:
            out.append("the figures did not finish rendering")
        if not self.figures:
            out.append("no .plotly-graph-div on the page")
        for f in self.figures:
            if f["traces_with_points"] < 1 or not f["drawn"] or f["trace_groups"] < 1:
                out.append(f"figure {f['id']} is not drawn with data: {f}")
        return out


def chromium_path() -> str | None:
    """Debian's chromium, or one named by PARADIFF_CHROMIUM (another distribution's)."""
    for p in (os.environ.get("PARADIFF_CHROMIUM"), DEBIAN_CHROMIUM, shutil.which("chromium")):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def unavailable() -> str | None:
    """Why a browser check cannot run here, or None if it can."""
    if chromium_path() is None:
        return f"{DEBIAN_CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing (pip install -e '.[test]')"
    return None


class Browser:
    """One headless Chromium for several pages (starting it costs about a second)."""

    def __init__(self, width: int = 1400, height: int = 900):
        self.size = {"width": width, "height": height}
        self._pw = self._ctx = None
        self._profile: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> "Browser":
        from playwright.sync_api import sync_playwright
        exe = chromium_path()
        if exe is None:
            raise RuntimeError(unavailable())
        self._profile = tempfile.TemporaryDirectory(prefix="paradiff-chromium-")
        self._pw = sync_playwright().start()
        try:
            # a persistent context is Playwright's way to pass --user-data-dir (it refuses
            # the flag in args): a fresh profile per run, deleted afterwards
            self._ctx = self._pw.chromium.launch_persistent_context(
                self._profile.name, executable_path=exe, headless=True, args=list(FLAGS),
                viewport=self.size, device_scale_factor=1)
        except BaseException:
            self._pw.stop()
            self._profile.cleanup()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._ctx.close()
        finally:
            self._pw.stop()
            self._profile.cleanup()

    def check(self, html_path, screenshot=None, script: str | None = None, timeout_s: float = 60.0) -> PageCheck:
        """Load a report, wait for its figures, inspect them; optionally take a full-page
        screenshot and evaluate `script` (a JS function, awaited) in the rendered page
        (loading a 5 MB page takes seconds on a small machine: one load serves all)."""
        url = Path(html_path).resolve().as_uri()
        res = PageCheck(url)
        page = self._ctx.new_page()
        page.on("console", lambda m: res.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: res.page_errors.append(str(e)))

        def route(r):
            u = r.request.url
            if u.startswith(("file:", "data:", "blob:", "about:")):
                r.continue_()
            else:
                res.external_requests.append(u)
                r.abort()
        page.route("**/*", route)
        try:
            page.goto(url, wait_until="load", timeout=timeout_s * 1e3)
            try:
                page.wait_for_function(_READY, timeout=timeout_s * 1e3)
                res.ready = True
            except Exception as e:          # playwright's TimeoutError: reported, not raised
                res.page_errors.append(f"waiting for the figures: {type(e).__name__}")
            res.title = page.title()
            res.figures = page.evaluate(_INSPECT)
            if script:
                res.script_result = page.evaluate(script)
            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            page.close()
        return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m planner.report.browser", description=__doc__.split("\n")[0])
    ap.add_argument("html", nargs="+", help="report(s) to open")
    ap.add_argument("--screenshot", help="PNG of the (first) page, full length")
    ap.add_argument("--width", type=int, default=1400, help="window width in pixels (default 1400)")
    args = ap.parse_args(argv)
    why = unavailable()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    bad = 0
    with Browser(width=args.width) as b:
        for i, h in enumerate(args.html):
            r = b.check(h, screenshot=args.screenshot if i == 0 else None)
            probs = r.problems()
            bad += bool(probs)
            print(f"{h}: {len(r.figures)} figures, " + ("ok" if not probs else "; ".join(probs)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
