"""The real diffusers classes as the executor runs them (executor/diffusers at --scale
tiny) against the planner's description of the same configs, seeding, the hooks, the
sampler, and the single-process pieces of the strategies (no process groups here)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from executor.blocks import State
from executor.context import Ctx
from executor.sampler import NoiseSchedule, segments
from executor.strategies import RUNNERS, ring
from planner.plan import parse_plan
from planner.strategies import STRATEGIES

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

torch.set_num_threads(1)

# one zoo model per denoiser class with an adapter
ONE_PER_CLASS = ("sdxl", "sd3-medium", "flux.1-dev", "pixart-alpha", "wan2.1-t2v-1.3b", "cogvideox-2b", "latte-1")


def _tiny(model: str, seed: int = 0):
    """(ModelSpec, Scenario, Pipeline, adapted denoiser) of `model` at --scale tiny."""
    from executor.diffusers.families import adapt
    from executor.diffusers.legality import latent_frames
    from executor.diffusers.pipeline import Pipeline
    from executor.experiment import scaled_run
    spec, sc, _ = scaled_run(model, "tiny")
    p = Pipeline(model, "tiny", seed=seed, frames=latent_frames(model, sc.frames), text_tokens=sc.text_tokens)
    return spec, sc, p, adapt(p.denoiser(), p.family, (sc.height, sc.width))


@pytest.mark.parametrize("model", ONE_PER_CLASS)
def test_the_real_class_mirrors_the_spec(model):
    """The class at tiny size has the blocks of the ModelSpec the zoo's builders make of
    the same configs (names, order), its parameters, and its FLOPs (torch's
    FlopCounterMode over one conditional forward, SDPA on the math path so attention is
    counted): what the planner predicts a run with is the network that runs."""
    spec, sc, p, den = _tiny(model)
    assert den.names == [b.name for b in spec.blocks]
    assert sum(x.numel() for x in den.parameters()) == spec.params
    c, fr, h, w = spec.latent_shape
    video = spec.facts.arch.startswith("video")
    lat = torch.randn(1, c, fr, h, w) if video else torch.randn(1, c, h, w)
    text, pooled = p.encode("a red cube").batch(("cond",), 1)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        out = den(State(latent=lat, t=torch.tensor([321.0]), text=text, pooled=pooled), Ctx(h // p.patch, fr, video)).x
    assert abs(fc.get_total_flops() / spec.flops() - 1) < 1e-6, (fc.get_total_flops(), spec.flops())
    assert out.shape == lat.shape and torch.isfinite(out).all()


def test_weights_and_conditioning_are_seeded():
    """The same seed gives the same random weights on every rank and in the serial
    baseline (whatever a plan does to them afterwards), and the same text embeddings."""
    from executor.diffusers.pipeline import Pipeline
    a, b, c = (Pipeline("pixart-alpha", "tiny", seed=s, text_tokens=16) for s in (3, 3, 4))
    wa, wb, wc = (p.denoiser().state_dict() for p in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert torch.equal(a.encode("a red cube").cond, b.encode("a red cube").cond)


def test_conv_halo_and_group_norm_hooks_are_plain_torch_serially():
    """Serially (a whole-image ctx), the hooked 3x3 convs and GroupNorms of the real U-Net
    compute nn.Conv2d(padding=1) and F.group_norm; without a ctx they run unhooked."""
    _, _, _, den = _tiny("sdxl")
    res = den.net.down_blocks[0].resnets[0]
    conv, gn = res.conv1, res.norm1
    x = torch.randn(2, conv.in_channels, 16, 16)
    want_conv = F.conv2d(x, conv.weight, conv.bias, padding=1)
    want_gn = F.group_norm(x, gn.num_groups, gn.weight, gn.bias, gn.eps)
    with torch.no_grad():
        with den.binding.use(Ctx(16)):
            assert torch.allclose(conv(x), want_conv, atol=1e-6)
            assert torch.allclose(gn(x), want_gn, atol=1e-6)
        assert torch.allclose(conv(x), want_conv, atol=1e-6) and torch.allclose(gn(x), want_gn, atol=1e-6)


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
