"""The one timeline summary (planner/timeline.summarise) that every denoising loop reports."""
from __future__ import annotations

import pytest

from planner import zoo
from planner.cluster import build_cluster
from planner.cost.predict import predict
from planner.hardware import default_profile
from planner.plan import parse_plan
from planner.spec import Scenario
from planner.timeline import COMM, COMPUTE, HIDDEN, Timeline, summarise


def test_units_repeat_and_split_into_parts_on_the_critical_row():
    tl = Timeline(2)
    # unit 0 (warm-up, 3 times): 1 s compute + 0.5 s blocking comm over "ulysses"
    tl.add(0, COMPUTE, 1.0, step=0)
    tl.block(0, 0.5, step=0, dim="ulysses")
    # unit 1 (steady, 10 times): row 0 computes 2 s, sends 1 s hidden, then 0.25 s host;
    # row 1 computes 3 s (row 0 waits: 0.75 s idle is bubble when row 0 is critical)
    tl.add(0, COMPUTE, 2.0, after=1.5, step=1)
    tl.add(0, COMM, 1.0, after=3.5, step=1, part=HIDDEN)
    end = tl.add(1, COMPUTE, 3.0, after=1.5, step=1)
    tl.host(0, 0.25, after=end, step=1)
    out = summarise(tl, [(0, 3), (1, 10)], critical=0, warmup={0})
    assert out.steady_step == pytest.approx(4.75 - 1.5)
    assert out.total == pytest.approx(3 * 1.5 + 10 * 3.25)
    assert out.warmup == pytest.approx(4.5)
    assert out.compute == pytest.approx(20.0) and out.host == pytest.approx(2.5)
    assert out.comm_dims == {}                      # the warm-up's comm counts as warm-up
    assert out.bubble == pytest.approx(10 * (3.25 - 2.25))
    assert out.total == pytest.approx(out.warmup + out.compute + out.comm + out.host + out.bubble)


SCENARIOS = [
    # (model, gpu, gpus, intra, plan): one per loop, and layer-wise plans with several dimensions
    ("pixart-alpha", "l40", 8, "pcie4-2socket", "cfg=2 pipefusion=4"),
    ("pixart-alpha", "l40", 8, "pcie4-2socket", "cfg=2 ulysses=2 ring=2"),
    ("pixart-alpha", "l40", 8, "pcie4-2socket", "cfg=2 distrifusion=4"),
    ("pixart-alpha", "l40", 8, "pcie4-2socket", "cfg=2 asyncdiff=3 stride=2"),
    ("pixart-alpha", "l40", 8, "pcie4-2socket", "cfg=2 parastep=4"),
    ("pixart-alpha", "l40", 8, "pcie4-2socket", "paradigms=8"),
    ("sdxl", "rtx3090", 2, "pcie3", "hybridiff=2"),
    ("sdxl", "rtx3090", 2, "pcie3", "cfg=2 | 11-15: hybridiff=2 k=5"),
    ("flux.1-dev", "h100-sxm5-80gb", 8, "nvswitch", "pipefusion=2 ulysses=2 tp=2"),
]


@pytest.mark.parametrize("model,gpu,n,intra,plan", SCENARIOS)
def test_every_loop_reports_parts_that_sum_to_its_latency(model, gpu, n, intra, plan):
    f = zoo.facts(model)
    sc = Scenario(model=model, height=f.default_height, width=f.default_width, steps=f.default_steps,
                  cfg=f.cfg_default)
    spec = zoo.build(model, sc.height, sc.width)
    p = predict(parse_plan(plan), spec, sc, build_cluster(gpu, n, 1, intra), default_profile(), detail=True)
    b = p.breakdown
    assert b.total() == pytest.approx(p.latency_s, rel=1e-9)
    assert min(b.compute, b.comm, b.bubble, b.warmup, b.other) >= 0
    assert b.comm == pytest.approx(sum(b.comm_dims.values()), rel=1e-12, abs=1e-15)
    assert set(b.comm_dims) <= {k for q in p.plan.plans() for k in q.keys}
    assert p.timeline is not None and p.timeline.tasks
    assert p.fixed_s <= p.latency_s * (1 + 1e-9)


@pytest.mark.parametrize("model,gpu,n,intra,plan", SCENARIOS + [
    ("hunyuandit", "l40", 8, "pcie4-2socket", "pipefusion=4 patches=8"),       # stacked skips per patch
    ("flux.1-dev", "h100-sxm5-80gb", 8, "nvswitch", "pipefusion=8 patches=16")])
def test_recorded_and_unrecorded_timelines_agree(model, gpu, n, intra, plan):
    """The search runs loops without recording tasks (Timeline(record=False), and
    timeline.run_stream's one-pass patches); reports record them: the same prediction."""
    f = zoo.facts(model)
    sc = Scenario(model=model, height=f.default_height, width=f.default_width, steps=f.default_steps,
                  cfg=f.cfg_default)
    spec = zoo.build(model, sc.height, sc.width)
    args = (parse_plan(plan), spec, sc, build_cluster(gpu, n, 1, intra), default_profile())
    fast, full = predict(*args, detail=False), predict(*args, detail=True)
    assert fast.latency_s == pytest.approx(full.latency_s, rel=1e-12)
    for part in ("compute", "comm", "bubble", "warmup", "other"):
        assert getattr(fast.breakdown, part) == pytest.approx(getattr(full.breakdown, part), rel=1e-9, abs=1e-15)
    assert fast.breakdown.comm_dims.keys() == full.breakdown.comm_dims.keys()
