"""profiler/: fits on synthetic timings, monotone curves, and a tiny real profiling run."""
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cli
from planner.errors import UsageError
from planner.hardware import CommCurve, HardwareError, load_gpu
from profiler import fit
from profiler.device import gpu_id_for_name

SIZES = np.logspace(4, 11, 15)


@pytest.mark.parametrize("e_max,t0", [(0.7, 20e-6), (0.05, 1e-3), (0.9, 0.0)])
def test_fit_efficiency_recovers_e_max_and_t0(e_max, t0):
    peak = 1e11
    rng = np.random.default_rng(0)
    times = (SIZES / (peak * e_max) + t0) * rng.uniform(0.98, 1.02, len(SIZES))
    f = fit.fit_efficiency(SIZES, times, peak)
    assert f["e_max"] == pytest.approx(e_max, rel=0.03)
    assert f["t0_us"] == pytest.approx(t0 * 1e6, rel=0.05, abs=0.5)
    assert f["fit_rms"] < 0.03


def test_fit_alpha_beta_recovers_latency_and_bandwidth():
    alpha, bw = 150e-6, 2.5e9
    sizes = [1024 * 4 ** k for k in range(9)]
    times = [alpha + s / bw for s in sizes]
    f = fit.fit_alpha_beta(sizes, times, "all_reduce", 4)
    assert f["latency_us"] == pytest.approx(150, rel=1e-3)
    assert f["bw_gbps"] == pytest.approx(2.5, rel=1e-3)
    assert f["bus_bw_gbps"] == pytest.approx(2.5 * 2 * 3 / 4, rel=1e-3)     # ring: 2(n-1)/n
    assert f["hop_latency_us"] == pytest.approx(150 / 6, rel=1e-3)


def test_fit_single_point_and_bad_input():
    c0, c1, rms = fit.fit_affine([100.0], [1.0])
    assert (c0, c1, rms) == (0.0, 0.01, 0.0)
    with pytest.raises(ValueError):
        fit.fit_affine([1.0, 2.0], [1.0, -1.0])


sizes_times = st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12).map(
    lambda ts: ([1024.0 * 2 ** (2 * i) for i in range(len(ts))], ts))


@settings(max_examples=200, deadline=None)
@given(sizes_times)
def test_make_monotone_properties(st_):
    sizes, times = st_
    mono = fit.make_monotone(sizes, times)
    assert all(m <= t * (1 + 1e-12) for m, t in zip(mono, times))          # only lowers
    assert all(b >= a * (1 - 1e-12) for a, b in zip(mono, mono[1:]))        # time non-decreasing
    bw = [s / t for s, t in zip(sizes, mono)]
    assert all(b >= a * (1 - 1e-9) for a, b in zip(bw, bw[1:]))             # bandwidth non-decreasing
    # and CommCurve's log-log interpolation keeps both between the points
    c = CommCurve("all_reduce", 2, tuple(sizes), tuple(mono))
    grid = np.logspace(math.log10(sizes[0]), math.log10(sizes[-1]) + 1, 50)
    t = np.array([c.time(x) for x in grid])
    assert (np.diff(t) >= -1e-15).all()
    assert (np.diff(grid / t) >= -1e-6 * (grid / t)[1:]).all()


def test_make_monotone_keeps_a_monotone_curve_and_fixes_noise():
    sizes = [1e3, 1e4, 1e5, 1e6]
    good = [1e-4, 1.2e-4, 3e-4, 2e-3]
    assert fit.make_monotone(sizes, good) == pytest.approx(good)
    noisy = [5e-4, 1.2e-4, 3e-4, 9e-3]       # slow small message, slow large message
    assert fit.make_monotone(sizes, noisy) == pytest.approx([1.2e-4, 1.2e-4, 3e-4, 3e-3])


@settings(max_examples=200, deadline=None)
@given(sizes_times)
def test_make_monotone_pooled_properties(st_):
    """Pooled (interleaved timings): monotone in time and bandwidth as the plain form, and
    the isotonic step neither lowers every time to the luckiest point nor leaves the range."""
    sizes, times = st_
    mono = fit.make_monotone(sizes, times, pooled=True)
    assert all(b >= a * (1 - 1e-9) for a, b in zip(mono, mono[1:]))
    bw = [s / t for s, t in zip(sizes, mono)]
    assert all(b >= a * (1 - 1e-9) for a, b in zip(bw, bw[1:]))
    assert min(times) * (1 - 1e-9) <= min(mono) and max(mono) <= max(times) * (1 + 1e-9)


def test_isotonic_pools_adjacent_violators():
    y = np.log([4.0, 1.0, 1.0, 2.0, 8.0])
    got = np.exp(fit._isotonic(y))
    assert got == pytest.approx([4 ** (1 / 3)] * 3 + [2.0, 8.0])     # the geometric mean of 4, 1, 1
    assert fit._isotonic(np.array([1.0, 2.0, 3.0])).tolist() == [1.0, 2.0, 3.0]
    # a noisy flat latency: pooled keeps the level, the plain form falls to the minimum
    sizes, noisy = [1e3, 4e3, 16e3, 64e3], [9e-4, 1.1e-3, 1.0e-3, 4e-4]
    assert fit.make_monotone(sizes, noisy) == pytest.approx([4e-4] * 4)
    assert min(fit.make_monotone(sizes, noisy, pooled=True)) > 6e-4


def test_pool_points_merges_ops_of_one_shape_and_sorts():
    sizes = [300.0, 200.0, 3000.0, 2000.0, 2000.0]
    effs = [1.0, 3.0, 0.5, 0.7, 0.9]
    pts = fit.pool_points(sizes, effs, groups=["a", "a", "b", "b", "b"])
    assert len(pts) == 2 and pts[0][0] < pts[1][0]
    assert pts[0] == (pytest.approx(math.sqrt(300 * 200)), 2.0)
    assert pts[1][1] == 0.7
    # without groups: bins of log size; strictly increasing whatever the input order
    pts = fit.pool_points([1e6, 1e3, 1.01e3, 1e9], [0.5, 0.1, 0.2, 0.9])
    assert [round(p[1], 3) for p in pts] == [0.15, 0.5, 0.9]


def test_gpu_name_lookup():
    assert gpu_id_for_name("NVIDIA H100 80GB HBM3", 79.1) == "h100-sxm5-80gb"
    assert gpu_id_for_name("NVIDIA H100 PCIe", 79.6) == "h100-pcie-80gb"
    assert gpu_id_for_name("NVIDIA A100-SXM4-40GB", 39.4) == "a100-sxm4-40gb"
    assert gpu_id_for_name("NVIDIA A100-SXM4-80GB", 79.2) == "a100-sxm4-80gb"
    assert gpu_id_for_name("NVIDIA L40S", 44.4) == "l40s"
    assert gpu_id_for_name("NVIDIA L4", 22.0) == "l4"
    assert gpu_id_for_name("NVIDIA GeForce RTX 4090", 23.6) == "rtx4090"
    with pytest.raises(UsageError, match="--gpu-id"):
        gpu_id_for_name("Voodoo 5 6000")


@pytest.mark.parametrize("argv,needle", [
    (["--nproc", "0"], "--nproc 0"), (["--dtype", "fp8"], "--dtype fp8"), (["--link", "warp"], "--link warp"),
    (["--threads", "0"], "--threads 0"), (["--out", "x.txt"], ".json"), (["--device", "tpu"], "--device tpu"),
    (["--nproc", "two"], "--nproc two: must be an integer"),
])
def test_bad_options_are_one_line_exit_2(argv, needle, capsys):
    try:
        rc = cli.main(["profile", "--no-progress", "--out", "/nonexistent/p.json"] + argv)
    except SystemExit as e:       # argparse errors exit from inside parse_args
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and needle in err


@pytest.fixture(scope="module")
def tiny_doc():
    from profiler.run import ProfileOptions, profile_machine
    t0 = time.perf_counter()
    doc = profile_machine(ProfileOptions(device="cpu", preset="tiny", nproc=2, progress=False, name="tiny"))
    doc["provenance"]["seconds"] = time.perf_counter() - t0
    return doc


def test_tiny_real_run(tiny_doc, tmp_path):
    from planner.profile_io import load_profile, save_profile
    doc = tiny_doc
    assert doc["provenance"]["seconds"] < 30
    assert doc["device"]["gpu_id"] == "cpu" and doc["device"]["dtype"] == "fp32"
    assert set(doc["compute"]["curves"]) == {"gemm", "conv", "attn", "mem"}
    for cv in doc["compute"]["curves"].values():
        assert cv["points"] and all(e > 0 for _, e in cv["points"])
    assert 0 < doc["compute"]["launch_us"] < 1000
    comm = doc["comm"]
    assert comm["link"] == "shm" and comm["backend"] == "gloo" and "skipped" not in comm
    kinds = {c["kind"] for c in comm["curves"]} | set(comm["unsupported"])
    assert kinds == {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "p2p"}
    for c in comm["curves"]:
        assert c["nranks"] == 2 and c["sizes"] == sorted(c["sizes"]) and min(c["times_us"]) > 0
    # CPU ranks: collectives timed between compute, as the executor's ranks issue them
    assert comm["timing"]["mode"] == "interleaved" and comm["timing"]["between_us"] > 0
    conc = doc["compute"]["concurrency"]      # the host's ranks computing at once
    assert conc["nproc"] == 2 and conc["slowdown"] >= 1 and conc["alone_us"] > 0
    path = save_profile(doc, tmp_path / "tiny.json")
    prof = load_profile(path)
    cpu = load_gpu("cpu")
    # the cost model reproduces a measured GEMM time from the curve
    s = doc["compute"]["curves"]["gemm"]["samples"][-1]
    t = prof.curve(cpu, "gemm").time(s["size"], cpu.peak("fp32"))
    assert t == pytest.approx(s["time_us"] * 1e-6, rel=0.5)
    report = fit.curves_for_report(doc)
    assert set(report["compute"]) == {"gemm", "conv", "attn", "mem"} and report["comm"]


def test_nproc_1_skips_comm():
    from profiler import run
    assert run.comm_skip_reason("cpu", 1).startswith("--nproc 1")
    assert run.comm_skip_reason("cpu", 2) is None


def test_tiny_plan_from_measured_profile(tiny_doc):
    zoo = pytest.importorskip("planner.zoo")
    from planner.cluster import build_cluster
    from planner.cost.predict import predict
    from planner.plan import parse_plan
    from planner.profile_io import profile_from_doc
    from planner.spec import Scenario
    try:
        model = zoo.build("dit-xl-2", 256, 256)
    except ImportError as e:
        pytest.skip(f"zoo not built yet: {e}")
    sc = Scenario(model="dit-xl-2", height=256, width=256, frames=1, steps=2, batch=1, cfg=True,
                  text_tokens=None, dtype="fp32", scope="denoise", compiled=False)
    pred = predict(parse_plan("ulysses=2"), model, sc, build_cluster("cpu", 2, intra="shm"),
                   profile_from_doc(tiny_doc))
    assert pred.latency_s > 0 and math.isfinite(pred.latency_s)


def test_unknown_gpu_id_override_is_a_usage_error():
    from profiler.device import device_gpu_id
    assert device_gpu_id("cpu") == "cpu"
    assert device_gpu_id("cpu", "l40") == "l40"
    with pytest.raises(UsageError):
        device_gpu_id("cpu", "gtx9999")
    with pytest.raises(HardwareError):
        load_gpu("gtx9999")


def test_interleaved_timing_runs_the_burst_before_every_timed_call():
    """profiler/comm.py _time: back-to-back times the loop; interleaved computes a burst
    before each call, times the calls alone and averages them over calls and members."""
    from profiler.comm import _time
    log = []
    cfg = {"warmup": 1, "repeats": 3, "target_s": 1e-9, "max_inner": 50, "min_inner": 4, "between_s": 1e-3}
    mean = _time(lambda: log.append("call"), cfg, lambda: None, lambda: None, lambda v: v,
                 burst=lambda: log.append("burst"), agree_mean=lambda v: [v[0] * 0 + 0.5])
    assert mean == 0.5                                   # what the members agreed on
    timed = log[2 + 1:]                                  # after the warm-up (burst, call) and the warm call
    assert timed == ["burst", "call"] * (3 * 4)          # repeats x min_inner, each call after a burst
    log.clear()
    _time(lambda: log.append("call"), cfg | {"between_s": 0.0}, lambda: None, lambda: None, lambda v: v)
    assert "burst" not in log and log.count("call") == 1 + 1 + 3   # warm-up, warm call, repeats x 1
