"""planner/profile_io.py: the hardware profile file written by `cli.py profile`."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from planner import profile_io
from planner.cluster import build_cluster
from planner.cost.comm import collective_time
from planner.hardware import HardwareError, default_profile, load_gpu
from planner.profile_io import check_profile, load_profile, load_profile_doc, save_profile

ROOT = Path(__file__).resolve().parent.parent
CPU = load_gpu("cpu")


def make_doc() -> dict:
    """A small valid profile, shaped like profiler.run's output (numbers made up)."""
    def curve(e):
        return {"e_max": e, "t0_us": 5.0, "fit_rms": 0.1, "unit": "FLOP",
                "points": [[1e5, e / 4], [1e7, e / 2], [1e9, e]],
                "samples": [{"op": "x", "shape": [1], "size": 1e9, "time_us": 1.0, "eff": e}]}
    sizes = [1024, 65536, 4194304]
    return {
        "format": "paradiff-hw-profile", "version": 1, "name": "synthetic",
        "provenance": {"date": "2025-01-01T00:00:00+00:00", "host": "test", "command": "none"},
        "device": {"kind": "cpu", "gpu_id": "cpu", "dtype": "fp32", "threads": 1,
                   "peak_flops": CPU.peak("fp32"), "memory_bw": CPU.memory_bw},
        "compute": {"launch_us": 2.0,
                    "curves": {"gemm": curve(0.8), "conv": curve(0.6), "attn": curve(0.5), "mem": curve(0.9)}},
        "comm": {"link": "shm", "backend": "gloo", "nproc": 2, "dtype": "fp32", "unsupported": {},
                 "curves": [{"kind": k, "nranks": 2, "sizes": sizes, "times_us": [200.0, 300.0, 4000.0],
                             "raw_times_us": [250.0, 300.0, 4000.0], "fit": {"latency_us": 200.0, "bw_gbps": 1.0}}
                            for k in ("all_reduce", "all_gather", "all_to_all", "broadcast", "p2p")]},
    }


@pytest.fixture()
def written(tmp_path):
    path = tmp_path / "prof.json"
    save_profile(make_doc(), path)
    return path


def test_written_profile_round_trips(written):
    doc, prof = load_profile_doc(written)
    check_profile(doc)
    assert prof.name == "measured:synthetic"
    assert prof.measured_launch_s == pytest.approx(2e-6)
    gemm = prof.curve(CPU, "gemm")
    assert gemm.points[-1] == (1e9, pytest.approx(0.8))
    assert gemm.time(1e9, CPU.peak("fp32")) == pytest.approx(1e9 / (CPU.peak("fp32") * 0.8))
    assert prof.comm_curve("shm", "all_reduce", 2).times[0] == pytest.approx(200e-6)
    # no calibration in the file: the default one is kept
    assert prof.calibration == default_profile().calibration


def test_measured_curves_drive_the_cost_model(written):
    prof = load_profile(written)
    cluster = build_cluster("cpu", 2, intra="shm")
    # the measured all-reduce replaces the alpha-beta model of the shm link
    assert collective_time(cluster, "all_reduce", [[0, 1]], 65536, prof) == pytest.approx(300e-6)
    assert collective_time(cluster, "all_reduce", [[0, 1]], 65536, default_profile()) != pytest.approx(300e-6)


def test_plan_from_profile(written):
    zoo = pytest.importorskip("planner.zoo")
    from planner.cost.predict import predict
    from planner.plan import parse_plan
    from planner.spec import Scenario
    try:
        model = zoo.build("dit-xl-2", 256, 256)
    except ImportError as e:
        pytest.skip(f"zoo not built yet: {e}")
    cluster = build_cluster("cpu", 2, intra="shm")
    sc = Scenario(model="dit-xl-2", height=256, width=256, frames=1, steps=2, batch=1, cfg=True,
                  text_tokens=None, dtype="fp32", scope="denoise", compiled=False)
    fast = predict(parse_plan("cfg=2"), model, sc, cluster, load_profile(written))
    slow_doc = make_doc()
    for cv in slow_doc["compute"]["curves"].values():
        cv["points"] = [[s, e / 10] for s, e in cv["points"]]
    slow = predict(parse_plan("cfg=2"), model, sc, cluster, profile_io.profile_from_doc(slow_doc))
    assert 0 < fast.latency_s < slow.latency_s


def test_concurrent_slowdown_scales_multi_rank_compute_only():
    """compute.concurrency (ranks sharing a host's cores) slows every multi-rank plan's
    compute by its factor and leaves the one-rank baseline alone."""
    from planner import zoo
    from planner.cost.predict import predict
    from planner.plan import parse_plan
    from planner.spec import Scenario
    model = zoo.build("sd3-medium", 256, 256)
    sc = Scenario(model="sd3-medium", height=256, width=256, frames=1, steps=4, batch=1, cfg=True,
                  dtype="fp32", scope="denoise")
    cluster = build_cluster("cpu", 2, intra="shm")
    doc = make_doc()
    plain = profile_io.profile_from_doc(doc)
    assert plain.concurrent_slowdown == 1.0
    doc["compute"]["concurrency"] = {"nproc": 2, "alone_us": 100.0, "together_us": 150.0, "slowdown": 1.5}
    shared = profile_io.profile_from_doc(doc)
    assert shared.concurrent_slowdown == 1.5
    serial = [predict(parse_plan("serial"), model, sc, build_cluster("cpu", 1), p) for p in (plain, shared)]
    assert serial[0].latency_s == pytest.approx(serial[1].latency_s)
    cfg = [predict(parse_plan("cfg=2"), model, sc, cluster, p) for p in (plain, shared)]
    comp = [c.breakdown.compute for c in cfg]
    assert comp[1] == pytest.approx(1.5 * comp[0], rel=1e-6)
    assert cfg[1].latency_s > cfg[0].latency_s


def _mutate(path, fn):
    doc = make_doc()
    fn(doc)
    path.write_text(json.dumps(doc))
    return path


BAD = [
    ("missing device", lambda d: d.pop("device"), "lacks 'device'"),
    ("unknown gpu", lambda d: d["device"].update(gpu_id="gtx9999"), "unknown GPU 'gtx9999'"),
    ("unknown link", lambda d: d["comm"].update(link="warp"), "unknown link 'warp'"),
    ("wrong format", lambda d: d.update(format="cluster"), "'format'"),
    ("wrong version", lambda d: d.update(version=7), "'version' 7"),
    ("string e_max", lambda d: d["compute"]["curves"]["gemm"].update(e_max="high"), "e_max"),
    ("zero efficiency", lambda d: d["compute"]["curves"]["conv"]["points"].__setitem__(1, [1e7, 0.0]),
     "efficiency must be a number in (0, 1]"),
    ("negative efficiency", lambda d: d["compute"]["curves"]["attn"]["points"].__setitem__(0, [1e5, -1]),
     "efficiency must be a number in (0, 1]"),
    # issue 16.10: accepted before, with the same output as without them
    ("e_max 1e6", lambda d: d["compute"]["curves"]["gemm"].update(e_max=1e6), "e_max must be a number in (0, 1]"),
    ("memory efficiency above 1", lambda d: d["compute"]["curves"]["mem"]["points"].__setitem__(0, [1e4, 2.4]),
     "efficiency must be a number in (0, 1], got 2.4"),
    ("peak 1e300", lambda d: d["device"].update(peak_flops=1e300), "device.peak_flops"),
    ("slowdown 1e9", lambda d: d["compute"].update(concurrency={"nproc": 2, "slowdown": 1e9}), "slowdown"),
    ("negative calibrated launch", lambda d: d.update(calibration={"launch_eager_us": -5}), "launch_eager_us"),
    ("calibration e_max 1e6", lambda d: d.update(calibration={"curves": {"cpu/gemm": {"e_max": 1e6}}}), "e_max"),
    ("non-monotone sizes", lambda d: d["compute"]["curves"]["mem"]["points"].reverse(), "strictly increasing"),
    ("unknown op class", lambda d: d["compute"]["curves"].update(matmul=d["compute"]["curves"]["gemm"]),
     "unknown op class 'matmul'"),
    ("comm sizes not increasing", lambda d: d["comm"]["curves"][0].update(sizes=[1024, 1024, 4096]),
     "strictly increasing"),
    ("comm lengths differ", lambda d: d["comm"]["curves"][0].update(times_us=[1.0]), "as long as sizes"),
    ("unknown collective", lambda d: d["comm"]["curves"][0].update(kind="gossip"), "unknown collective"),
    ("one rank", lambda d: d["comm"]["curves"][0].update(nranks=1), "nranks"),
    ("points not pairs", lambda d: d["compute"]["curves"]["gemm"].update(points=[1, 2]), "pair"),
    ("curves a list", lambda d: d["compute"].update(curves=[]), "must be a JSON object"),
    ("top level a list", lambda d: d.clear(), "'format'"),
    ("bad launch", lambda d: d["compute"].update(launch_us=-3), "launch_us"),
    ("bad slowdown", lambda d: d["compute"].update(concurrency={"nproc": 2, "slowdown": 0}),
     "compute.concurrency.slowdown"),
    ("slowdown missing", lambda d: d["compute"].update(concurrency={"nproc": 2}), "slowdown"),
    ("bad calibration", lambda d: d.update(calibration={"curves": {"cpu/matmul": {}}}), "calibration"),
]


@pytest.mark.parametrize("what,fn,needle", BAD, ids=[b[0] for b in BAD])
def test_malformed_profiles_are_rejected_in_one_line(tmp_path, what, fn, needle):
    path = _mutate(tmp_path / "bad.json", fn)
    with pytest.raises(HardwareError) as ei:
        load_profile(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(path) in msg and needle in msg


@pytest.mark.parametrize("text,needle", [("{not json", "not valid JSON"), ('{"a": NaN}', "not valid JSON"),
                                         ("[]", "must be a JSON object")])
def test_unreadable_files(tmp_path, text, needle):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(HardwareError, match=needle):
        load_profile(path)
    with pytest.raises(HardwareError, match="not found"):
        load_profile(tmp_path / "missing.json")


def test_save_refuses_a_bad_document(tmp_path):
    doc = make_doc()
    doc["device"]["gpu_id"] = "nope"
    with pytest.raises(HardwareError, match="not written"):
        save_profile(doc, tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()
    doc = make_doc()
    doc["compute"]["curves"]["gemm"]["fit_rms"] = float("nan")
    with pytest.raises(HardwareError, match="not written"):
        save_profile(doc, tmp_path / "p.json")


def test_skipped_comm_and_calibration(tmp_path):
    doc = make_doc()
    doc["comm"] = {"skipped": "only one GPU here"}
    cal = copy.deepcopy(default_profile().calibration.to_json()) | {"name": "mine", "launch_eager_us": 7.0}
    doc["calibration"] = cal
    save_profile(doc, tmp_path / "p.json")
    prof = load_profile(tmp_path / "p.json")
    assert prof.measured_comm == ()
    assert prof.calibration.name == "mine" and prof.calibration.launch_eager_s == pytest.approx(7e-6)


def test_changed_datasheet_peak_keeps_measured_times(tmp_path):
    doc = make_doc()
    doc["device"]["peak_flops"] = 2 * CPU.peak("fp32")      # measured against another peak
    prof = profile_io.profile_from_doc(doc)
    t = prof.curve(CPU, "gemm").time(1e9, CPU.peak("fp32"))
    assert t == pytest.approx(1e9 / (2 * CPU.peak("fp32") * 0.8))


def test_local_profile(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_io, "LOCAL_PROFILE", tmp_path / "local.json")
    assert profile_io.local_profile() is None
    save_profile(make_doc(), tmp_path / "local.json")
    assert profile_io.local_profile().name == "measured:synthetic"


def test_profile_io_does_not_import_torch():
    code = "import sys, planner.profile_io; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_cli_plan_with_bad_profile_exits_2(tmp_path):
    bad = _mutate(tmp_path / "bad.json", lambda d: d["device"].update(gpu_id="gtx9999"))
    r = subprocess.run([sys.executable, "cli.py", "plan", "--hw-profile", str(bad), "--gpu", "cpu",
                        "--gpus", "2", "--intra", "shm", "--model", "dit-xl-2", "--height", "256",
                        "--width", "256"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and "gtx9999" in r.stderr
