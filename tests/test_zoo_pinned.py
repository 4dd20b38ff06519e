"""Every zoo model's ModelSpec at its default size equals the pinned fingerprint
(tests/data/zoo_specs.json, written by `python -m tests.zoo_snapshot`): block names and
order exactly (the executor maps diffusers submodules to them), and every block's,
encoder's and VAE's ops, shapes and parameters."""
from __future__ import annotations

import json

import pytest

from planner import zoo
from zoo_snapshot import PINNED, fingerprint

EXPECTED = json.loads(PINNED.read_text())


def test_every_model_is_pinned():
    assert sorted(EXPECTED) == list(zoo.model_ids())


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_block_names_and_order(model):
    f = zoo.facts(model)
    got = fingerprint(zoo.build(model, f.default_height, f.default_width, f.default_frames))
    assert [n for n, _ in got["blocks"]] == [n for n, _ in EXPECTED[model]["blocks"]]


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_ops_unchanged(model):
    f = zoo.facts(model)
    got = fingerprint(zoo.build(model, f.default_height, f.default_width, f.default_frames))
    want = EXPECTED[model]
    changed = [n for (n, a), (_, b) in zip(got["blocks"], want["blocks"]) if a != b]
    assert not changed, f"{model}: blocks whose ops changed: {changed[:5]}"
    assert got["text_encoders"] == want["text_encoders"]
    assert got["vae"] == want["vae"]
    assert (got["latent_shape"], got["tokens"], got["params"]) == (want["latent_shape"], want["tokens"],
                                                                  want["params"])
    assert got["flops"] == pytest.approx(want["flops"], rel=1e-12)
