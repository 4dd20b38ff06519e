"""HTML reports (planner/report): what goes into them, bad input, and each kind opened in
headless Chromium (Debian's /usr/bin/chromium driven by Playwright; skipped with the
reason when either is missing here, installed by .ci/run in CI)."""
import contextlib
import io
import json
import math
import re
from pathlib import Path

import pytest

import cli
from planner.errors import UsageError
from planner.report import browser
from planner.report.gantt import idle_gaps
from planner.report.html import write_atomic
from planner.report.plan import pareto_front
from planner.report.run import write_run_report
from planner.report.validate import strategy, write_validate_report
from planner.validate import RowResult, metrics

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "tests" / "data" / "cpu-profile.json"   # a real `cli.py profile --quick` output
PLAN_KEYS = {"scenario", "cluster", "profile", "recommended", "plans"}   # before reports ("seconds" only with --timings)


def main(argv) -> tuple[int, str, str]:
    """cli.main with its output captured (module-scoped fixtures cannot use capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as e:      # argparse errors exit from inside parse_args
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def run_result(plan, nproc, measured, predicted, psnr=40.0, steps=None):
    """A result shaped like executor/measure.py's to_json (psnr None + psnr_inf when identical)."""
    same = psnr is None or psnr == math.inf
    return {"plan": plan, "nproc": nproc, "model": "pixart-alpha", "steps": 20, "repeats": 3, "backend": "gloo",
            "measured": {"latency_s": measured, "speedup": 2.0 / measured, "step_s": steps or measured / 20,
                         "latencies_s": [measured * 0.98, measured, measured * 1.05]},
            "predicted": {"latency_s": predicted, "speedup": 2.0 / predicted},
            "error": {"latency": abs(predicted / measured - 1), "speedup": abs(measured / predicted - 1)},
            "fidelity": {"max_rel_err": 0.0 if same else 1e-3, "rel_l2": 0.0 if same else 1e-4,
                         "psnr": None if same else psnr, "psnr_inf": same},
            "memory_peak_mb": [900.0 + 5 * r for r in range(nproc)], "comm_bytes": [4e6 * r for r in range(nproc)]}


def row_results() -> list[RowResult]:
    """Published-run rows in the calibration schema, with predictions filled in."""
    out = []
    for i, (src, gpu, plan, measured, predicted) in enumerate([
            ("Paper A, Table 1", "l40", "serial", 2.8, 3.0), ("Paper A, Table 1", "l40", "cfg=2", 1.5, 1.55),
            ("Paper A, Table 1", "l40", "cfg=2 pipefusion=4", 0.6, 0.45),
            ("Paper B, Fig. 2", "a100-sxm4-80gb", "serial", 5.0, 5.2),
            ("Paper B, Fig. 2", "a100-sxm4-80gb", "ulysses=4 patches=8", 1.4, 1.8),
            ("Paper B, Fig. 2", "a100-sxm4-80gb", "distrifusion=2 warmup=4", 3.3, 3.1)]):
        row = {"id": f"row-{i}", "source": src, "model": "pixart-alpha", "gpu": gpu, "gpus": "4", "nodes": "1",
               "intra": "", "inter": "", "height": "1024", "width": "1024", "frames": "1", "steps": "20",
               "cfg": "1", "plan": plan, "compile": "", "scope": "", "latency_s": str(measured)}
        out.append(RowResult(row, predicted_s=predicted, fits=True, memory_gb=10.0))
    out.append(RowResult(dict(out[0].row, id="row-bad", plan="tp=8"), reason="constraint: tp=8 ..."))
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    """One report of each kind (and the plan's JSON and trace), built once."""
    d = tmp_path_factory.mktemp("reports")
    rc, out, err = main(["plan", "--report", str(d / "plan.html"), "--trace", str(d / "trace.json")])
    assert rc == 0, err
    rc, out, err = main(["plan", "--json"])
    assert rc == 0, err
    (d / "plan.json").write_text(out)
    assert main(["report", "plan", str(d / "plan.json"), "--out", str(d / "plan-json.html")])[0] == 0
    (d / "run.json").write_text(json.dumps(run_result("cfg=2", 2, 1.1, 1.0)))
    sweep = [run_result("serial", 1, 2.0, 1.9, psnr=None, steps=[0.1] * 20),
             run_result("cfg=2", 2, 1.1, 1.0, psnr=math.inf, steps=[0.06] + [0.055] * 19),
             run_result("pipefusion=2", 2, 1.3, 1.2, psnr=38.5, steps=[0.07] + [0.065] * 19)]
    write_run_report(sweep, d / "run-sweep.html")
    assert main(["report", "run", str(d / "run.json"), "--out", str(d / "run.html")])[0] == 0
    results = row_results()
    m = metrics(results) | {"profile": "datasheet"}
    write_validate_report(m, results, d / "validate.html")
    (d / "validate.json").write_text(json.dumps(m))
    assert main(["report", "validate", str(d / "validate.json"), "--out", str(d / "validate-json.html")])[0] == 0
    assert main(["report", "profile", str(PROFILE), "--out", str(d / "profile.html")])[0] == 0
    files = {p.stem: p for p in d.glob("*.html")}
    return files | {"plan.json": d / "plan.json", "trace": d / "trace.json", "dir": d}


def figure_ids(html: str) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', html)


# ---------------------------------------------------------------- content, no browser
def test_reports_are_self_contained(reports):
    for name in ("plan", "plan-json", "run", "run-sweep", "validate", "validate-json", "profile"):
        html = reports[name].read_text()
        assert html.count("<script src=") == 0, name          # plotly.js inlined, no CDN
        assert html.count("Plotly.newPlot") == len(figure_ids(html)) > 0, name
    assert figure_ids(reports["plan"].read_text()) == ["fig-breakdown", "fig-pareto", "fig-engines", "fig-timeline",
                                                      "fig-cluster"]
    assert figure_ids(reports["run-sweep"].read_text()) == ["fig-latency", "fig-steps", "fig-fidelity", "fig-ranks"]
    assert figure_ids(reports["validate"].read_text()) == ["fig-scatter", "fig-by-source", "fig-by-gpu",
                                                          "fig-by-strategy"]
    # validate --json rows carry no source or GPU: by-source comes from per_source, no GPU chart
    assert figure_ids(reports["validate-json"].read_text()) == ["fig-scatter", "fig-by-source", "fig-by-strategy"]
    assert figure_ids(reports["profile"].read_text()) == ["fig-efficiency", "fig-comm-time", "fig-comm-bandwidth"]
    # no temporary files left beside the reports
    assert not [p.name for p in reports["dir"].iterdir() if p.name.startswith(".")]


def test_plan_json_is_extended_additively_and_rebuilds_the_same_report(reports):
    doc = json.loads(reports["plan.json"].read_text())
    assert PLAN_KEYS <= set(doc) and {"timeline", "layout", "cluster_graph"} <= set(doc)
    tl = doc["timeline"]
    assert tl["plan"] == doc["recommended"]["plan"] and tl["recommended"] is True
    assert tl["tasks"] and all(t["end"] >= t["start"] >= 0 for t in tl["tasks"])
    gpus = [n for n in doc["cluster_graph"]["nodes"] if n["kind"] == "gpu"]
    assert len(gpus) == doc["cluster"]["n"] == 8
    for dim, groups in doc["layout"]["groups"].items():      # each dimension's groups cover the ranks once
        assert sorted(r for g in groups for r in g) == list(range(doc["layout"]["ranks"])), dim
    # the figures of `plan --report` and of `report plan saved.json` are the same
    plots = [re.findall(r"Plotly\.newPlot\((.*?)\)\s*};", reports[k].read_text(), re.S) for k in ("plan", "plan-json")]
    assert len(plots[0]) == 5 and plots[0] == plots[1]


def test_plan_trace_is_chrome_trace_format(reports):
    doc = json.loads(reports["trace"].read_text())
    events = doc["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    # threads: the compute, communication and host lanes (planner/timeline.py)
    assert spans and all(e["dur"] >= 0 and e["ts"] >= 0 and e["tid"] in (0, 1, 2) for e in spans)
    assert any(e["tid"] == 2 and e["cat"] == "host" for e in spans)
    assert names == set(json.loads(reports["plan.json"].read_text())["timeline"]["rows"])


def test_plan_text_output_names_the_files(tmp_path):
    rc, out, err = main(["plan", "--plan", "cfg=2 ulysses=4", "--report", str(tmp_path / "p.html"),
                         "--trace", str(tmp_path / "t.json")])
    assert rc == 0 and err == ""
    assert f"report: {tmp_path / 'p.html'}" in out and f"trace: {tmp_path / 't.json'}" in out
    assert figure_ids((tmp_path / "p.html").read_text())[-1] == "fig-cluster"


def test_helpers():
    assert pareto_front([(3, 10), (1, 30), (2, 20), (2.5, 25), (4, 12)]) == [(1, 30), (2, 20), (3, 10)]
    tasks = [{"row": 0, "lane": "compute", "start": 1.0, "end": 2.0},
             {"row": 0, "lane": "compute", "start": 1.5, "end": 3.0},
             {"row": 0, "lane": "comm", "start": 3.0, "end": 4.0}]
    assert idle_gaps(tasks, 0, 5.0) == [(0.0, 1.0), (3.0, 5.0)]
    assert strategy("cfg=2 pipefusion=4 patches=8") == "cfg+pipefusion"
    assert strategy("serial") == "serial"


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "r.html"
    target.write_text("old report")
    with pytest.raises(UnicodeEncodeError):      # fails midway through writing
        write_atomic(target, "<html>" + "\ud800")
    assert target.read_text() == "old report" and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    with pytest.raises(UsageError, match="does not exist"):
        write_run_report(run_result("cfg=2", 2, 1.0, 1.0), tmp_path / "missing" / "r.html")


def _bad_inputs(tmp_path):
    (tmp_path / "broken.json").write_text('{"plans": [')
    (tmp_path / "run.json").write_text(json.dumps(run_result("cfg=2", 2, 1.0, 1.0)))
    (tmp_path / "adir.html").mkdir()
    out = str(tmp_path / "out.html")
    return [
        (["report", "chart", str(tmp_path / "run.json"), "--out", out], "report kind chart"),
        (["report", "run", str(tmp_path / "nothing.json"), "--out", out], "not found"),
        (["report", "run", str(tmp_path / "broken.json"), "--out", out], "not valid JSON"),
        (["report", "plan", str(tmp_path / "run.json"), "--out", out], "not a `plan --json` document"),
        (["report", "profile", str(tmp_path / "run.json"), "--out", out], "not a hardware profile"),
        (["report", "validate", str(PROFILE), "--out", out], "not a `validate --json` document"),
        (["report", "run", str(tmp_path / "run.json"), "--out", str(tmp_path / "no" / "r.html")], "does not exist"),
        (["report", "run", str(tmp_path / "run.json"), "--out", str(tmp_path / "adir.html")], "is a directory"),
        (["report", "run", str(tmp_path / "run.json"), "--out", str(tmp_path / "r.png")], "ending in .html"),
        (["plan", "--report", str(tmp_path / "no" / "p.html")], "does not exist"),
        (["plan", "--trace", str(tmp_path / "t.html")], "ending in .json"),
        (["profile", "--quick", "--no-progress", "--out", str(tmp_path / "p.json"),
          "--report", str(tmp_path / "no" / "p.html")], "does not exist"),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    for argv, needle in _bad_inputs(tmp_path):
        before = sorted(p.name for p in tmp_path.iterdir())
        rc, out, err = main(argv)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and needle in err, (argv, err)
        assert out == "" and sorted(p.name for p in tmp_path.iterdir()) == before, argv


# ---------------------------------------------------------------- in a real browser
# Switch the cluster graph's dimension menu to its second entry; the visible GPU trace
# (one per parallel dimension) before and after.
DROPDOWN_JS = """() => { const d = document.getElementById('fig-cluster');
    const vis = () => d._fullData.filter(t => t.visible === true && t.name.startsWith('GPUs')).map(t => t.name);
    const before = vis();
    return Plotly.restyle(d, d.layout.updatemenus[0].buttons[1].args[0]).then(() => [before, vis()]); }"""


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module (Playwright allows one sync session at a time)."""
    why = browser.unavailable()
    if why:
        pytest.skip(f"browser tests need Chromium and Playwright: {why}")
    with browser.Browser() as b:
        yield b


@pytest.fixture(scope="module")
def rendered(reports, chromium, tmp_path_factory):
    """Each report opened once, with a screenshot, memoised: loading a 5 MB page takes
    seconds on a 2-core machine."""
    shots = tmp_path_factory.mktemp("screenshots")
    done = {}

    def get(name):
        if name not in done:
            done[name] = (chromium.check(reports[name], screenshot=shots / f"{name}.png",
                                         script=DROPDOWN_JS if name == "plan" else None), shots / f"{name}.png")
        return done[name]
    return get


@pytest.mark.parametrize("name", ["plan", "run", "run-sweep", "validate", "profile"])
def test_report_renders_in_chromium(name, reports, rendered):
    res, shot = rendered(name)
    assert res.problems() == [], res.problems()      # console errors, offline loads, undrawn figures
    assert [f["id"] for f in res.figures] == figure_ids(reports[name].read_text())
    for f in res.figures:        # data in every figure, drawn (svg with a size), traces in the DOM
        assert f["traces"] >= 1 and f["traces_with_points"] >= 1 and f["drawn"] and f["trace_groups"] >= 1, f
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_cluster_dropdown_recolours_the_gpus(rendered):
    """The dimension menu of the cluster graph switches which GPU trace is visible."""
    before, after = rendered("plan")[0].script_result
    assert len(before) == len(after) == 1 and before != after


def test_the_checker_catches_a_broken_page(chromium, tmp_path):
    """The browser check itself: a console error, a request off the machine (aborted
    before it leaves) and a page without figures are all reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://127.0.0.1:9/x.png">'
                   '<script>console.error("boom")</script></body></html>')
    res = chromium.check(bad, timeout_s=2)
    text = "\n".join(res.problems())
    assert "boom" in text and "127.0.0.1:9" in text and "no .plotly-graph-div" in text
