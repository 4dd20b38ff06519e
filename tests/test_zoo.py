"""Tests of the model zoo: every id builds, matches models.csv, scales, rejects bad input."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from planner import zoo
from planner.spec import COMPUTE_KINDS, ModelSpec, OpKind

CSV = Path("/work/shared/data/models.csv")

# A copy of the models.csv numbers, so the accuracy tests run without shared/:
# id: (denoiser params B, denoiser TFLOPs per forward at batch 1, VAE decode TFLOPs,
#      VAE decoder params M). Open-Sora 2.0 at its first ("768px") default.
EXPECTED = {
    "sd1.5": (0.86, 0.8, 2.51, 49.5),
    "sd2.1": (0.866, 2.15, 5.75, 49.5),
    "sdxl": (2.567, 6.76, 10.47, 49.5),
    "sd3-medium": (2.028, 8.9, 10.47, 49.5),
    "sd3.5-large": (8.057, 31.12, 10.47, 49.5),
    "flux.1-dev": (11.901, 74.38, 10.47, 49.5),
    "flux.1-schnell": (11.891, 69.47, 10.47, 49.5),
    "pixart-alpha": (0.611, 6.51, 10.47, 49.5),
    "pixart-sigma": (0.611, 6.63, 10.47, 49.5),
    "dit-xl-2": (0.75, 0.24, 0.62, 49.5),
    "hunyuandit": (1.5, 14.37, 10.47, 49.5),
    "cogvideox-2b": (1.694, 120.0, 315.0, 123.4),
    "cogvideox-5b": (5.57, 332.2, 315.0, 123.4),
    "hunyuanvideo": (12.821, 12068.6, 3000.0, 146.1),
    "wan2.1-t2v-1.3b": (1.419, 283.0, 275.4, 73.3),
    "wan2.1-t2v-14b": (14.288, 1678.4, 275.4, 73.3),
    "mochi-1": (10.028, 95.9, 154.4, 362.5),
    "latte-1": (1.057, 34.4, 40.2, 49.5),
    "opensora-2.0": (11.891, 5092.0, 1894.6, 146.1),
    "svd": (1.525, 79.95, 173.6, 63.6),
    "animatediff": (1.313, 17.75, 40.2, 49.5),
}

# Text/conditioning encoder sizes in millions, in pipeline order (csv text_encoders column;
# HunyuanVideo's LLaMA is the 7.50B LlamaModel diffusers loads, no LM head).
ENCODERS = {
    "sd1.5": [123], "animatediff": [123], "sd2.1": [340], "sdxl": [123, 695],
    "sd3-medium": [123, 695, 4762], "sd3.5-large": [123, 695, 4762],
    "flux.1-dev": [123, 4762], "flux.1-schnell": [123, 4762], "opensora-2.0": [4762, 123],
    "pixart-alpha": [4762], "pixart-sigma": [4762], "latte-1": [4762], "opensora-1.2": [4762],
    "cogvideox-2b": [4762], "cogvideox-5b": [4762], "mochi-1": [4762], "dit-xl-2": [],
    "wan2.1-t2v-1.3b": [5680], "wan2.1-t2v-14b": [5680], "hunyuandit": [352, 1670],
    "hunyuanvideo": [7505, 123], "svd": [632],
}


def _num(text: str) -> float | None:
    """Leading number of a csv cell ('11.891 (Flux...)' -> 11.891, '' -> None)."""
    m = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", text or "")
    return float(m.group(1)) if m else None


def _csv_rows() -> dict[str, dict]:
    if not CSV.exists():
        pytest.skip(f"{CSV} not present (shared data not mounted); the hard-coded copy still runs")
    with CSV.open() as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def _default(model: str, **over) -> ModelSpec:
    f = zoo.facts(model)
    args = dict(height=f.default_height, width=f.default_width, frames=f.default_frames) | over
    return zoo.build(model, args["height"], args["width"], args["frames"], args.get("text_tokens"))


def _close(got: float, want: float, tol: float) -> bool:
    return abs(got / want - 1) <= tol


# ---------------------------------------------------------------- API
def test_ids_sorted_and_complete():
    ids = zoo.model_ids()
    assert list(ids) == sorted(ids)
    assert set(ids) == set(EXPECTED) | {"opensora-1.2"}


def test_ids_match_csv():
    assert set(zoo.model_ids()) == set(_csv_rows())


@pytest.mark.parametrize("model", zoo.model_ids())
def test_builds_at_default(model):
    f = zoo.facts(model)
    m = _default(model)
    assert m.facts is f and m.id == model and f.source
    assert m.blocks[0].kind == "embed" and m.blocks[-1].kind == "head"
    assert m.latent_shape[0] == f.latent_channels and m.tokens > 0
    assert m.blocks[-1].skip_elems == 0
    assert [round(s.params / 1e6) for s in m.text_encoders] == pytest.approx(ENCODERS[model], rel=0.01)


@pytest.mark.parametrize("model", zoo.model_ids())
def test_ops_are_well_formed(model):
    m = _default(model)
    for b in m.blocks:
        assert b.tokens > 0 and b.hidden > 0 and b.skip_elems >= 0
        assert len({o.name for o in b.ops}) == len(b.ops), f"duplicate op names in {b.name}"
        for o in b.ops:
            assert o.tp_role in ("col", "row", "rep"), o.name
            assert o.tokens > 0, o.name
            if o.kind is OpKind.GEMM:   # weights (+ bias), or a shared-weight text copy
                assert o.params in (0, o.in_features * o.out_features,
                                    o.in_features * o.out_features + o.out_features), o.name
            if o.kind is OpKind.CONV:
                assert o.in_tokens > 0 and o.taps >= 1 and o.params >= o.taps * o.in_features * o.out_features
            if o.kind is OpKind.ATTN:
                assert o.heads > 0 and o.head_dim > 0 and o.kv_tokens + o.ctx_tokens > 0
            if o.kind in (OpKind.NORM, OpKind.ELEMWISE):
                assert o.width > 0 and o.tp_role == "rep"
        # the FLOPs convention: memory-bound ops are present but not counted
        assert b.flops() == sum(o.flops() for o in b.ops if o.kind in COMPUTE_KINDS)
    assert any(o.kind is OpKind.NORM for b in m.blocks for o in b.ops)


def test_roles_and_text_flags():
    flux = _default("flux.1-dev")
    double = next(b for b in flux.blocks if b.name == "double0")
    roles = {o.name: o.tp_role for o in double.ops}
    assert roles["attn.to_q"] == "col" and roles["attn.to_out"] == "row"
    assert roles["ff.up"] == "col" and roles["ff.down"] == "row" and roles["norm1.linear"] == "rep"
    assert all(o.text for o in double.ops if o.name.startswith(("attn.add", "ff_context")))
    (sdpa,) = double.self_attn_ops()
    assert (sdpa.tokens, sdpa.kv_tokens, sdpa.q_ctx, sdpa.ctx_tokens) == (4096, 4096, 512, 512)
    res = next(b for b in _default("sd1.5").blocks if b.name == "down0.res0")
    assert {o.name: o.tp_role for o in res.ops}["conv1"] == "col"
    assert {o.name: o.tp_role for o in res.ops}["conv2"] == "row"
    cog = next(b for b in _default("cogvideox-2b").blocks if b.name == "block0")
    assert any(o.text and o.name == "ff.up.txt" and o.tokens == 226 for o in cog.ops)


def test_unet_skips_are_carried():
    m = _default("sd1.5")
    skips = [b.skip_elems for b in m.blocks]
    assert max(skips) > 0 and skips[-1] == 0
    mid = next(b for b in m.blocks if b.name == "mid.res0")
    # 12 skips alive: conv_in, two ResNet(+attention) outputs per level, 3 downsamplers
    # (which keep the width of the level above)
    level = [(4096, 320), (1024, 640), (256, 1280), (64, 1280)]
    expect = 4096 * 320 + sum(2 * n * c for n, c in level) + sum(
        level[i + 1][0] * level[i][1] for i in range(3))
    assert mid.skip_elems == expect
    hy = _default("hunyuandit")
    assert [b.skip_elems // (4096 * 1408) for b in hy.blocks[1:-1]][18:23] == [19, 19, 19, 18, 17]


def test_factorised_attention_groups():
    m = _default("latte-1")
    spatial, temporal = m.blocks[1].self_attn_ops()[0], m.blocks[2].self_attn_ops()[0]
    assert (spatial.tokens, spatial.groups) == (1024, 16)
    assert (temporal.tokens, temporal.groups) == (16, 1024)
    assert m.tokens == 1024


# ---------------------------------------------------------------- accuracy vs models.csv
@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_matches_expected_numbers(model):
    params_b, tflops, vae_tflops, vae_m = EXPECTED[model]
    m = _default(model)
    assert _close(m.params, params_b * 1e9, 0.03), m.params / 1e9
    assert _close(m.flops(), tflops * 1e12, 0.03), m.flops() / 1e12
    assert _close(m.vae_decoder.flops(), vae_tflops * 1e12, 0.15), m.vae_decoder.flops() / 1e12
    assert _close(m.vae_decoder.params, vae_m * 1e6, 0.03), m.vae_decoder.params / 1e6


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_matches_models_csv(model):
    row = _csv_rows()[model]
    m = _default(model)
    assert _close(m.params, _num(row["denoiser_params_B_computed"]) * 1e9, 0.03)
    assert _close(m.flops(), _num(row["denoiser_tflops_per_forward_b1"]) * 1e12, 0.03)
    assert _close(m.vae_decoder.flops(), _num(row["vae_decode_tflops_at_default"]) * 1e12, 0.15)
    assert _close(m.vae_decoder.params, _num(row["vae_decoder_params_M"]) * 1e6, 0.03)
    tokens = int(_num(row["latent_tokens_at_default"]))
    # the csv lists the whole stream for Latte, the longest sequence for everything else
    assert tokens in (m.tokens, m.tokens * m.latent_shape[1])
    f = zoo.facts(model)
    assert f.cfg_default == (row["cfg_two_passes_by_default"] == "yes")
    assert f.default_steps == int(_num(row["default_steps"]))
    n_enc = 0 if row["text_encoders"] == "none" else len(row["text_encoders"].split(" + "))
    assert len(m.text_encoders) == n_enc


def test_facts_flags():
    flow = {"sd3-medium", "sd3.5-large", "flux.1-dev", "flux.1-schnell", "wan2.1-t2v-1.3b",
            "wan2.1-t2v-14b", "hunyuanvideo", "mochi-1", "opensora-2.0", "opensora-1.2"}
    assert {i for i in zoo.model_ids() if zoo.facts(i).flow_matching} == flow
    assert {i for i in zoo.model_ids() if zoo.facts(i).factorised_attention} == {
        "latte-1", "opensora-1.2", "animatediff", "svd"}
    assert {i for i in zoo.model_ids() if zoo.facts(i).long_skips} == {
        "sd1.5", "sd2.1", "sdxl", "svd", "animatediff", "hunyuandit"}


# ---------------------------------------------------------------- scaling
def _attn_image_flops(m: ModelSpec) -> dict[tuple[str, str], float]:
    """Image-image part of every self-attention op, keyed by (block, op)."""
    return {(b.name, o.name): 4.0 * o.groups * o.heads * o.head_dim * o.tokens * o.kv_tokens
            for b in m.blocks for o in b.self_attn_ops() if not o.text}


def _gemm_flops(m: ModelSpec) -> float:
    return sum(o.flops() for b in m.blocks for o in b.ops
               if o.kind in (OpKind.GEMM, OpKind.CONV) and not o.text)


@pytest.mark.parametrize("model", zoo.model_ids())
def test_doubling_height_and_width(model):
    f = zoo.facts(model)
    small = _default(model)
    big = _default(model, height=2 * f.default_height, width=2 * f.default_width)
    a, b = _attn_image_flops(small), _attn_image_flops(big)
    assert a.keys() == b.keys() and a
    ops = {(blk.name, o.name): o for blk in small.blocks for o in blk.ops}
    ops2 = {(blk.name, o.name): o for blk in big.blocks for o in blk.ops}
    for key in a:
        grow = (ops2[key].tokens / ops[key].tokens, ops2[key].groups / ops[key].groups)
        # full / spatial sequences grow 4x (-> 16x FLOPs); temporal ones (factorised
        # models) keep their length and gain 4x more groups (-> 4x)
        assert grow == (4, 1) or (f.factorised_attention and grow == (1, 4)), key
        assert b[key] / a[key] == pytest.approx(grow[0] ** 2 * grow[1]), key
    if not f.factorised_attention:
        assert sum(b.values()) / sum(a.values()) == pytest.approx(16.0)
    assert _gemm_flops(big) / _gemm_flops(small) == pytest.approx(4.0, rel=0.01)
    assert 3.9 < big.vae_decoder.flops() / small.vae_decoder.flops() < 5.0
    assert big.params == small.params


@pytest.mark.parametrize("model", [i for i in zoo.model_ids() if zoo.facts(i).arch.startswith("video")])
def test_frames_scale_video_tokens(model):
    f = zoo.facts(model)
    small = _default(model)
    frames = 2 * f.default_frames if f.vae_temporal == 1 else (f.default_frames - 1) * 2 + 1
    big = _default(model, frames=frames)
    lf0, lf1 = small.latent_shape[1], big.latent_shape[1]
    assert lf1 > lf0
    ratio = lf1 / lf0
    assert _gemm_flops(big) / _gemm_flops(small) == pytest.approx(ratio, rel=0.02)
    a, b = _attn_image_flops(small), _attn_image_flops(big)
    if not f.factorised_attention:   # one sequence over all frames: quadratic
        assert big.tokens == small.tokens * lf1 // lf0
        assert sum(b.values()) / sum(a.values()) == pytest.approx(ratio ** 2, rel=0.01)
    else:   # spatial attention gains groups (linear), temporal attention length (quadratic)
        ops = {(blk.name, o.name): o for blk in small.blocks for o in blk.ops}
        ops2 = {(blk.name, o.name): o for blk in big.blocks for o in blk.ops}
        for key in a:
            grow = (ops2[key].tokens / ops[key].tokens, ops2[key].groups / ops[key].groups)
            assert grow in ((1, ratio), (ratio, 1)), key
            assert b[key] / a[key] == pytest.approx(grow[0] ** 2 * grow[1]), key
    assert big.vae_decoder.flops() > 1.5 * small.vae_decoder.flops()


def test_text_tokens_scale_text_ops():
    a, b = zoo.build("pixart-alpha", 1024, 1024, 1, 120), zoo.build("pixart-alpha", 1024, 1024, 1, 240)
    ta = sum(o.flops() for x in a.blocks for o in x.ops if o.text)
    tb = sum(o.flops() for x in b.blocks for o in x.ops if o.text)
    assert tb / ta == pytest.approx(2.0)
    assert b.text_encoders[0].flops() > 2 * a.text_encoders[0].flops() * 0.99


def test_latent_frames():
    assert _default("cogvideox-2b").latent_shape == (16, 13, 60, 90)
    assert _default("hunyuanvideo").tokens == 118800
    assert _default("mochi-1", frames=163).tokens == 44520
    assert _default("opensora-2.0").tokens == 76032
    assert _default("opensora-1.2").latent_shape == (4, 15, 30, 54)


# ---------------------------------------------------------------- bad input, caching
def test_unknown_model():
    with pytest.raises(zoo.ZooError) as e:
        zoo.build("sd9", 512, 512)
    assert "sd9" in str(e.value) and "flux.1-dev" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(zoo.ZooError, match="nope"):
        zoo.facts("nope")


@pytest.mark.parametrize("model, args, bad", [
    ("sd1.5", (500, 512), "500"),
    ("flux.1-dev", (1024, 1000), "1000"),          # multiple of 8 but not of 8 x patch 2
    ("sdxl", (0, 1024), "0"),
    ("sdxl", (1024.0, 1024), "1024.0"),
    ("cogvideox-2b", (480, 720, 0), "frames=0"),
    ("sd1.5", (512, 512, 16), "frames=16"),        # image model
    ("pixart-alpha", (1024, 1024, 1, -3), "-3"),
    ("dit-xl-2", (256, 256, 1, 77), "77"),         # class-conditional
    ("sd3-medium", (1024, 1024, 1, 50), "50"),     # fewer than the 77 CLIP tokens
    ("svd", (576, 1024, 25, 77), "77"),
])
def test_bad_sizes(model, args, bad):
    with pytest.raises(ValueError) as e:
        zoo.build(model, *args)
    assert bad in str(e.value) and model in str(e.value)
    assert not isinstance(e.value, zoo.ZooError)


def test_build_is_cached():
    a = zoo.build("sdxl", 1024, 768)
    assert zoo.build("sdxl", 1024, 768) is a
    with pytest.raises(ValueError, match="1024.0"):     # the cache does not skip the checks
        zoo.build("sdxl", 1024.0, 768)
