"""`cli.py plan` output cases found by trying it as a new user would (issue 16)."""
from __future__ import annotations

import json

import pytest

from clitool import run_cli


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
