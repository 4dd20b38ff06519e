"""The benchmark scenarios' rankings and predictions are what tests/data/golden_ranking.json
pins (tests/golden.py): a refactor leaves them alone; an intended cost-model change
regenerates the file in the same commit."""
from __future__ import annotations

import json

import pytest

from tests.golden import GOLDEN, ranking, scenarios


@pytest.mark.parametrize("index", range(len(scenarios())))
def test_ranking_and_predictions_are_pinned(index):
    want = json.loads(GOLDEN.read_text())[index]
    got = ranking(index)
    assert got["label"] == want["label"]
    assert got["recommended"] == want["recommended"]
    assert [r[0] for r in got["ranked"]] == [r[0] for r in want["ranked"]]
    for g, w in zip(got["ranked"], want["ranked"]):
        assert g[1] == pytest.approx(w[1], rel=1e-9), g[0]          # latency
        assert g[2] == pytest.approx(w[2], rel=1e-9), g[0]          # memory
        assert g[3:] == w[3:], g[0]                                  # fits, approximate steps
