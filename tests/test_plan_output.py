"""Output cases of `cli.py plan` (and run's prediction, profile's outputs) found by trying
them as a new user would (issue 16)."""
from __future__ import annotations

import json
import os

import pytest

from clitool import run_cli
from planner.plan import parse_plan


@pytest.mark.parametrize("args, says", [
    (["--model", "sd3.5-large", "--gpu", "t4", "--gpus", "8"], "no exact plan fits in memory"),
    (["--gpus", "3", "--approx-steps", "20"], "no exact plan is possible on this GPU count"),
    (["--gpus", "7", "--approx-steps", "20"], "no exact plan is possible on this GPU count")])
def test_an_inexact_recommendation_without_an_exact_plan_that_fits(args, says):
    """Issue 16.1: `why` crashed (UnboundLocalError) when the recommendation is not exact
    and no exact plan fits."""
    r = run_cli("plan", *args)
    assert r.code == 0 and "Traceback" not in r.err, r.err
    assert "recommended:" in r.out and says in r.out


def test_one_gpu_lists_serial_once():
    """Issue 16.11: `plan --gpus 1` listed serial twice, both starred."""
    r = run_cli("plan", "--gpus", "1", "--json")
    plans = [p["plan"] for p in json.loads(r.out)["plans"]]
    assert plans == ["serial"]


@pytest.mark.parametrize("gpus", ["7", "3", "5"])
def test_the_binding_limit_is_named(gpus):
    """Issue 16.4: plans fit in memory but the quality budget rules them out: say so, not
    'no plan fits in memory'."""
    r = run_cli("plan", "--gpus", gpus)
    assert r.code == 0
    assert "no plan fits in memory" not in r.out
    assert "no plan within the quality budget" in r.out and "--approx-steps 5" in r.out
    r = run_cli("plan", "--model", "sd3.5-large", "--gpu", "t4", "--gpus", "3")
    assert "no plan fits in memory on these GPUs: the smallest" in r.out


def _doc(*args) -> str:
    r = run_cli("plan", "--json", *args)
    assert r.code == 0, r.err
    return r.out


def test_passing_a_documented_default_changes_nothing():
    """Issue 16.5: `--gpu l40` planned 1 GPU and `--gpus 8` one PCIe socket."""
    plain = _doc()
    assert json.loads(plain)["cluster"]["n"] == 8 and "two CPU sockets" in json.loads(plain)["cluster"]["describe"]
    for args in (["--gpus", "8"], ["--gpu", "l40"], ["--intra", "pcie4-2socket"], ["--nodes", "1"],
                 ["--model", "pixart-alpha", "--batch", "1", "--scope", "pipeline", "--approx-steps", "5"]):
        assert _doc(*args) == plain, args
    other = json.loads(_doc("--gpu", "h100-sxm5-80gb"))["cluster"]
    assert other["n"] == 8 and other["intra"] == "nvswitch"      # another GPU: its usual link


def test_run_help_shows_runs_own_defaults(monkeypatch):
    """Issue 16.5: `run --help` showed plan's defaults and pointed at `cli.py models`."""
    monkeypatch.setenv("COLUMNS", "1000")         # argparse wraps at hyphens otherwise
    text = " ".join(run_cli("run", "--help").out.split())
    assert "default pixart-alpha" not in text and " l40" not in text and "default 8" not in text
    assert "default sd3-medium" in text and "sdxl" in text and "wan2.1-t2v-1.3b" in text and "ref-" not in text


def test_plan_json_is_the_same_bytes_for_the_same_input():
    """Issue 16.12: wall-clock fields made `plan --json` differ between runs."""
    assert _doc() == _doc()
    assert '"seconds"' not in _doc()
    assert "seconds" in json.loads(_doc("--timings"))


def test_default_dtype_follows_the_gpus():
    """Volta and Turing have no bf16: fp16 by default there, and --dtype bf16 is refused."""
    assert json.loads(_doc("--gpu", "t4"))["scenario"]["dtype"] == "fp16"
    assert json.loads(_doc("--gpu", "rtx2080ti", "--gpus", "2"))["scenario"]["dtype"] == "fp16"
    assert json.loads(_doc())["scenario"]["dtype"] == "bf16"


@pytest.mark.parametrize("cluster", ["3090+4090", "a100x4+l40x4"])
def test_a_mixed_clusters_speedup_is_over_its_fastest_gpu(cluster):
    """Issue 16.11: over rank 0's RTX 3090, cfg=2 pipefusion=2 on 2x3090 + 2x4090 was 4.63x."""
    doc = json.loads(_doc("--cluster", cluster))
    assert all(p["speedup"] <= doc["cluster"]["n"] for p in doc["plans"])
    assert "one GPU (the fastest here, " in run_cli("plan", "--cluster", cluster, "--top", "1").out
    from planner.cluster import build_cluster, load_cluster_file
    from planner.cost.predict import serial_latency
    from planner.hardware import default_profile
    from planner.inputs import scenario
    model, sc = scenario("pixart-alpha")
    c, prof = load_cluster_file(cluster), default_profile()
    alone = [serial_latency(model, sc, build_cluster(g.id, 1), prof) for g in c.gpus]
    assert serial_latency(model, sc, c, prof) == min(alone) < max(alone)


def test_ranks_beyond_the_cores_slow_the_prediction(monkeypatch):
    """Issue 16.3: `run --nproc 16` on 2 cores predicted 1.94x (measured 0.09x): ranks that
    time-share cores compute at most cores/nproc as fast, and a warning says so."""
    from executor import cli as run_cli_mod
    from executor.experiment import local_cluster
    from planner.cost.predict import predict
    from planner.hardware import default_profile
    monkeypatch.setattr("planner.limits.cores", lambda: 2)
    prof = default_profile()
    same, none = run_cli_mod._shared_cores(prof, 2, "gloo")
    assert same is prof and none is None
    shared, warning = run_cli_mod._shared_cores(prof, 16, "gloo")
    assert shared.concurrent_slowdown == pytest.approx(8 * prof.concurrent_slowdown)
    assert "16 ranks on 2 cores" in warning
    from planner.inputs import scenario
    model, sc = scenario("sd3-medium", height=256, width=256, dtype="fp32", scope="denoise")
    plan = parse_plan("cfg=2 pipefusion=8")
    alone, timeshared = (predict(plan, model, sc, local_cluster(16), p).speedup for p in (prof, shared))
    assert timeshared < alone / 4
    assert run_cli_mod._shared_cores(prof, 16, "nccl") == (prof, None)    # GPUs own their device


def test_profile_keeps_its_measurements_when_the_write_fails(monkeypatch, tmp_path):
    """Issue 16.7: a write that fails after minutes of measuring lost them in a traceback."""
    import profiler.run
    from planner.errors import UsageError as Usage
    from test_profile_io import make_doc
    monkeypatch.setattr(profiler.run, "profile_machine", lambda opts: make_doc() | {"provenance": {}})

    def fail(doc, path):
        raise Usage(f"{path}: cannot write (No space left on device)")
    monkeypatch.setattr("planner.profile_io.save_profile", fail)
    r = run_cli("profile", "--out", str(tmp_path / "p.json"), "--no-progress")
    assert r.code == 2 and len(r.lines) == 1 and "No space left" in r.err, r.err
    kept = r.err.rsplit("kept in ", 1)[1].strip()
    with open(kept) as fh:
        assert json.load(fh)["format"] == "paradiff-hw-profile"
    os.unlink(kept)
