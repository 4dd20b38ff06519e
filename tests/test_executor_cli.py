"""`python cli.py run` as a user meets it: the report, bad options, a failing rank, Ctrl-C,
and torchrun. Each test starts real processes; leftovers are looked for in /proc by an
environment marker that every process of the run inherits."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--model", "sd3-medium", "--scale", "tiny", "--repeats", "1", "--warmup-runs", "0"]


def _env(**extra) -> tuple[dict, str]:
    """The environment of a run: this one's, plus `extra` and a fresh marker."""
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != "PARADIFF_KEEP_LOGS"}
    return env | {"PARADIFF_TEST_MARKER": marker} | extra, marker


def _marked(marker: str) -> list[int]:
    """Live processes carrying the marker (zombies have no environment and do not count)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if f"PARADIFF_TEST_MARKER={marker}".encode() in (d / "environ").read_bytes():
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def _run(args, env, timeout=120):
    return subprocess.run([sys.executable, "cli.py", "run", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_json_report_of_the_recommended_plan():
    env, marker = _env()
    r = _run(TINY + ["--json"], env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["recommended"] and out["nproc"] == 2 and out["plan"]
    for path in ("measured.latency_s", "measured.speedup", "predicted.latency_s", "predicted.speedup",
                 "error.latency", "error.speedup", "fidelity.max_rel_err", "fidelity.psnr"):
        group, key = path.split(".")
        assert key in out[group], path
    assert out["measured"]["latency_s"] > 0 and out["predicted"]["speedup"] > 0
    assert len(out["memory_peak_mb"]) == 2 and len(out["comm_bytes"]) == 2
    # the classes that ran and where their weights came from, and the stages outside the loop
    assert out["model_info"]["denoiser"] == "SD3Transformer2DModel" and out["model_info"]["weights"] == "random (seed 0)"
    assert out["components"]["text_encoders_s"] > 0
    assert not _marked(marker)


def test_run_writes_its_html_report(tmp_path):
    """`run --report`: the measured-against-predicted report of this run, next to the table."""
    env, _ = _env()
    out = tmp_path / "run.html"
    r = _run(TINY + ["--plan", "cfg=2", "--report", str(out)], env)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "cfg=2" in page and "Plotly.newPlot" in page and f"report: {out}" in r.stdout


@pytest.mark.parametrize("args, says", [
    (["--nproc", "3", "--plan", "cfg=2"], "uses 2 GPUs"),
    (["--plan", "cfg=2 foo=2"], "unknown plan key 'foo'"),
    (["--backend", "nccl", "--plan", "cfg=2"], "nccl needs CUDA"),
    (["--plan", "ulysses=3", "--height", "192", "--width", "192"], "splits every attention's heads 3 ways"),
    (["--plan", "ulysses=3"], "do not divide into 3 slices"),
    (["--plan", "tp=2", "--model", "sdxl", "--height", "20"], "multiple of 8"),
    (["--plan", "ulysses=2", "--model", "sdxl", "--height", "16"], "through 4x downsampling"),
    (["--plan", "cfg=2", "--model", "opensora-1.2"], "is plan-only"),
    (["--plan", "hybridiff=2 k=9"], "smaller than the 8 steps"),
    (["--plan", "ulysses=2", "--model", "wan2.1-t2v-1.3b", "--frames", "3"], "whole latent frames"),
    (["--repeats", "0"], "--repeats 0"),
    (["--plan", "cfg=2", "--report", "run.txt"], "give a file name ending in .html"),
    (["--plan", "cfg=2", "--report", "/nonexistent-dir/run.html"], "does not exist"),
])
def test_bad_options_get_one_line_and_exit_code_2(args, says):
    env, _ = _env()
    r = _run(TINY + args, env, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert r.stdout == ""


def test_a_failing_rank_ends_the_run_cleanly():
    env, marker = _env()
    r = subprocess.run([sys.executable, "tests/fault_run.py", '{"rank": 1, "step": 3, "kind": "raise"}', "run",
                        *TINY, "--plan", "ulysses=2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rank 1: RuntimeError: injected fault at step 3"), r.stderr
    assert not _marked(marker)


def test_bad_layout_order_is_refused():
    r = _run(TINY + ["--plan", "cfg=2", "--order", "cfg,ring"], os.environ.copy(), timeout=60)
    assert r.returncode == 2 and "--order cfg,ring" in r.stderr and "accepted: cfg" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_first_error_ignores_a_half_written_error_file(tmp_path):
    """A rank killed while it writes its error (another rank failed first) must not turn
    the one-line report into a traceback of the launcher."""
    from executor.procs import Exit, diagnose, read_errors
    (tmp_path / "rank0.err").write_text("")
    (tmp_path / "rank1.err").write_text("12.5 rank 1: RuntimeError: injected fault\ntrace")
    (tmp_path / "rank2.err").write_text("13.0 rank 2: DistBackendError: peer closed\ntrace")
    errors = read_errors(str(tmp_path))
    assert set(errors) == {1, 2}
    exits = [Exit(1, 1, 12.6), Exit(2, 1, 13.1), Exit(0, -15, 14.0)]
    assert diagnose(errors, exits, [], stopping_at=13.5).startswith("rank 1: RuntimeError: injected fault")


def test_runs_unchanged_under_torchrun():
    env, marker = _env()
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "cli.py", "run", *TINY, "--plan", "cfg=2", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["torchrun"] and out["plan"] == "cfg=2" and out["nproc"] == 2
    assert out["fidelity"]["max_rel_err"] < 1e-5
    assert not _marked(marker)
