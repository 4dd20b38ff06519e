"""The command line: the default scenario, --json/--plan/--xdit, listings, and bad input
(one line on stderr, exit code 2, no traceback, no output files)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_default_plan_recommends_something():
    r = cli("plan")
    assert r.returncode == 0, r.stderr
    assert "recommended:" in r.stdout
    assert "8x L40" in r.stdout


def test_no_command_means_plan():
    r = cli("--top", "3")
    assert r.returncode == 0, r.stderr
    assert "recommended:" in r.stdout


def test_json_has_the_documented_keys():
    r = cli("plan", "--json", "--model", "sd3-medium", "--gpu", "h100-sxm5-80gb", "--gpus", "4")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"scenario", "recommended", "plans"} <= out.keys()
    for p in [out["recommended"]] + out["plans"]:
        assert {"plan", "latency_s", "speedup", "memory_gb_per_gpu", "fits", "exact", "breakdown"} <= p.keys()
        assert {"compute", "comm", "bubble", "text_encoders", "vae"} <= p["breakdown"].keys()
    assert out["scenario"]["model"] == "sd3-medium"


def test_plan_string_is_evaluated_not_searched():
    r = cli("plan", "--json", "--plan", "cfg=2 pipefusion=4")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [p["plan"] for p in out["plans"]] == ["cfg=2 pipefusion=4"]


def test_xdit_flags():
    r = cli("plan", "--plan", "cfg=2 pipefusion=2 ulysses=2", "--xdit")
    assert r.returncode == 0, r.stderr
    assert "--use_cfg_parallel" in r.stdout and "--pipefusion_parallel_degree 2" in r.stdout
    assert "--ulysses_degree 2" in r.stdout
    r = cli("plan", "--plan", "distrifusion=8", "--xdit")
    assert "xDiT cannot run this plan" in r.stdout


@pytest.mark.parametrize("text, order", [
    ("ulysses=2 ring=2 tp=4", ("ulysses", "tp", "ring")), ("cfg=2 pipefusion=4", ("cfg", "pipefusion")),
    ("cfg=2 ulysses=2 ring=2", ("ring", "cfg", "ulysses")), ("dp=2 tp=2 ring=2", ("dp", "ring", "tp"))])
def test_xdit_device_order_reproduces_the_placed_groups(text, order):
    """With the GPU order device_order gives, xDiT's fixed-order groups (over its global
    ranks) are exactly the placed layout's groups (over physical GPUs)."""
    from planner.layout import XDIT_ORDER, layout_for
    from planner.plan import parse_plan
    from planner.engines.devices import device_order
    plan = parse_plan(text)
    n = plan.gpus
    lists, why = device_order(plan, order, (0,) * n)
    assert why == "" and len(lists) == 1
    gpu_of = [int(v) for v in lists[0].split(",")]          # xDiT rank -> physical GPU
    assert sorted(gpu_of) == list(range(n))
    xd, placed = layout_for(plan, XDIT_ORDER), layout_for(plan, order)
    for dim in placed.order:
        moved = {tuple(sorted(gpu_of[r] for r in g)) for g in xd.groups(dim)}
        assert moved == {tuple(sorted(g)) for g in placed.groups(dim)}, dim


def test_xdit_device_order_says_when_ranks_must_change_nodes():
    from planner.plan import parse_plan
    from planner.engines.devices import device_order
    lists, why = device_order(parse_plan("cfg=2 pipefusion=8"), ("cfg", "pipefusion"), (0,) * 8 + (1,) * 8)
    assert lists is None and "node 1" in why


def test_xdit_flags_name_the_gpu_order_of_a_placed_plan():
    r = cli("plan", "--json", "--xdit", "--model", "flux.1-dev", "--gpus", "16", "--nodes", "2",
            "--intra", "pcie4-2socket", "--inter", "ethernet", "--exact-only")
    out = json.loads(r.stdout)
    x, placed = out["xdit"], out["ilp"]["placement"]
    assert x["placed_order"] == placed["order"] != placed["xdit_order"]
    assert len(x["cuda_visible_devices"]) == 2 and x["why_not"] is None
    assert "placed_order" not in json.loads(cli("plan", "--json", "--xdit").stdout)["xdit"]


@pytest.mark.parametrize("command", ["models", "gpus"])
def test_listings(command):
    r = cli(command)
    assert r.returncode == 0, r.stderr
    assert ("sdxl" if command == "models" else "h100-sxm5-80gb") in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["plan", "--model", "sdxxl"], "unknown model id 'sdxxl'"),
    (["plan", "--gpu", "h1000"], "unknown GPU"),
    (["plan", "--gpus", "0"], "gpus"),
    (["plan", "--gpus", "4", "--plan", "cfg=2 pipefusion=4"], "uses 8 GPUs but the cluster has 4"),
    (["plan", "--gpus", "32", "--plan", "ulysses=32"], "must divide the attention head counts"),
    (["plan", "--steps", "0"], "--steps 0"),
    (["plan", "--steps", "-3"], "--steps -3"),
    (["plan", "--plan", "cfg=2 foo=4"], "unknown plan key 'foo'"),
    (["plan", "--intra", "pcie9"], "pcie9"),
    (["plan", "--height", "1000"], "height=1000"),
    (["plan", "--steps", "many"], "--steps many: must be an integer from 1 to 1000"),
    (["plan", "--dtype", "int4"], "--dtype int4"),
    (["validate", "--data", "/nonexistent.csv"], "cannot read"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_malformed_cluster_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = cli("plan", "--cluster", str(bad))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "bad.json" in r.stderr


def test_malformed_calibration_csv(tmp_path):
    bad = tmp_path / "runs.csv"
    bad.write_text("id,model\nx,sdxl\n")
    r = cli("validate", "--data", str(bad))
    assert r.returncode == 2 and "missing column" in r.stderr
