"""The executor's reference models against the planner's description of them, the sampler,
and the single-process pieces of the strategies (no process groups here)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from executor.context import Ctx
from executor.models import PRESETS, State, build_model, conditioning
from executor.sampler import NoiseSchedule, segments
from executor.strategies import RUNNERS, ring
from planner import zoo
from planner.plan import parse_plan
from planner.strategies import STRATEGIES

torch.set_num_threads(1)


def _spec(mid: str):
    f = zoo.facts(mid)
    return zoo.build(mid, f.default_height, f.default_width, f.default_frames)


def _inputs(mid: str, spec):
    f = zoo.facts(mid)
    c, fr, h, w = spec.latent_shape
    lat = torch.randn(1, c, fr, h, w) if f.arch.startswith("video") else torch.randn(1, c, h, w)
    text, pooled = conditioning(mid, f.text_tokens).batch(("cond",), 1)
    ctx = Ctx(h // f.patch, fr, f.arch.startswith("video"))
    return State(latent=lat, t=torch.tensor([321.0]), text=text, pooled=pooled), ctx


@pytest.mark.parametrize("mid", sorted(PRESETS))
def test_torch_model_mirrors_the_spec(mid):
    """Same blocks in the same order, the same parameters block by block, and FLOPs
    (torch's FlopCounterMode, SDPA on the math path so attention is counted) within 3%."""
    spec, model = _spec(mid), build_model(mid)
    assert model.names == [b.name for b in spec.blocks]
    assert [sum(p.numel() for p in b.parameters()) for b in model.blocks] == [b.params for b in spec.blocks]
    assert sum(p.numel() for p in model.parameters()) == spec.params
    if mid.endswith("-s"):
        return          # the s presets take seconds to run; their blocks are the tiny ones' blocks
    state, ctx = _inputs(mid, spec)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        out = model(state, ctx).x
    assert abs(fc.get_total_flops() / spec.flops() - 1) < 0.03
    assert out.shape[1:] == state.latent.shape[1:] and torch.isfinite(out).all()


def test_facts_of_the_reference_presets():
    for mid, p in PRESETS.items():
        f = zoo.facts(mid)
        assert f.family == "reference" and f.cfg_default and f.vae_spatial == 8
        assert f.flow_matching == (p.arch == "mmdit")
        assert f.factorised_attention == (p.arch == "video-dit")
        spec = _spec(mid)
        assert spec.text_encoders == () and spec.vae_decoder.ops == ()
    assert "ref-dit-tiny" not in zoo.model_ids()          # the published zoo stays as models.csv has it


def test_weights_and_conditioning_are_seeded():
    a, b = build_model("ref-dit-tiny", seed=3), build_model("ref-dit-tiny", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    c = build_model("ref-dit-tiny", seed=4)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    assert torch.equal(conditioning("ref-dit-tiny", 8, 1).cond, conditioning("ref-dit-tiny", 8, 1).cond)


def test_conv_halo_and_group_norm_match_plain_torch():
    """Serially, the ctx-mediated 3x3 convs and group norms are nn.Conv2d(padding=1) and
    F.group_norm."""
    model = build_model("ref-unet-tiny")
    res = model.blocks[1]
    x = torch.randn(2, res.conv1.in_channels, 16, 16)
    ctx = Ctx(16)
    want = F.conv2d(x, res.conv1.weight, res.conv1.bias, padding=1)
    assert torch.allclose(res.conv1(x, ctx), want, atol=1e-6)
    gn = res.norm1
    assert torch.allclose(gn(x, ctx), F.group_norm(x, gn.num_groups, gn.weight, gn.bias, gn.eps), atol=1e-6)


def test_ring_merge_is_attention_over_the_union():
    q, k1, v1, k2, v2 = torch.randn(5, 2, 3, 7, 8).unbind(0)
    o1, l1 = ring.attention_lse(q, k1, v1)
    o2, l2 = ring.attention_lse(q, k2, v2)
    o, _ = ring.merge(o1, l1, o2, l2)
    want = F.scaled_dot_product_attention(q, torch.cat([k1, k2], 2), torch.cat([v1, v2], 2))
    assert torch.allclose(o, want, atol=1e-6)


# ---------------------------------------------------------------- sampler
@pytest.mark.parametrize("flow", [False, True])
def test_schedule_reaches_clean_sample(flow):
    s = NoiseSchedule(10, flow)
    assert len(s.t) == 10 and s.t[0] > s.t[-1] >= 0
    x0, noise = torch.randn(4), torch.randn(4)
    # feed the exact prediction: the sampler must land on x0
    x = noise.clone()
    for i in range(10):
        if flow:
            eps = noise - x0                   # the velocity of the straight path
        else:
            a = s.a[i]
            eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        x = s.step(x, eps, i)
    assert torch.allclose(x, x0, atol=1e-5)


def test_segments_follow_plan_at():
    plan = parse_plan("cfg=2 | 3-5: hybridiff=2 k=2")
    segs = segments(plan, 8)
    assert [(str(p), a, b) for p, a, b in segs] == [("cfg=2", 1, 2), ("hybridiff=2 k=2", 3, 5), ("cfg=2", 6, 8)]
    assert all(plan.plan_at(s) == p for p, a, b in segs for s in range(a, b + 1))


def test_one_module_and_runner_per_planner_strategy():
    import importlib
    assert set(RUNNERS) == set(STRATEGIES)
    for key in STRATEGIES:
        mod = importlib.import_module(f"executor.strategies.{key}")
        assert mod.__doc__ and mod.__doc__.lstrip().startswith(f"{key}:"), key
        assert (RUNNERS[key].loop is not None) == (STRATEGIES[key].owns_loop or key == "serial"), key
