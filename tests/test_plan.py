"""The plan-string grammar of ../shared/data/README.md, plus the schedule form."""
import pytest
from hypothesis import given, strategies as st

from planner.plan import DEGREE_KEYS, PlanError, factorisations, make_plan, parse_plan


@pytest.mark.parametrize("text,gpus", [
    ("serial", 1), ("cfg=2 pipefusion=4", 8), ("ulysses=2 ring=4", 8), ("distrifusion=8 warmup=4", 8),
    ("asyncdiff=3 stride=2", 4), ("hybridiff=2 k=5", 2), ("tp=8", 8), ("pipefusion=8 patches=4", 8),
    ("asyncdiff=2", 2), ("paradigms=8", 8), ("cfg=2 | 15-20: hybridiff=2 k=5", 2),
])
def test_published_examples_parse_and_round_trip(text, gpus):
    p = parse_plan(text)
    assert p.gpus == gpus
    assert str(parse_plan(str(p))) == str(p)
    assert parse_plan(str(p)) == p


def test_canonical_order_and_degree_one_dropped():
    assert str(parse_plan("pipefusion=4 cfg=2 ring=1")) == "cfg=2 pipefusion=4"


@pytest.mark.parametrize("text,needle", [
    ("cfg=2 foo=3", "unknown plan key 'foo'"),
    ("cfg", "not key=value"),
    ("cfg=two", "not an integer"),
    ("cfg=\u0662", "ASCII digits"),           # Arabic-Indic two: int() would take it
    ("cfg=2 cfg=2", "given twice"),
    ("stride=2", "needs one of asyncdiff"),
    ("ulysses=2 k=5", "needs one of hybridiff"),
    ("ulysses=0", "must be >= 1"),
    ("", "empty plan"),
    ("cfg=2 | 15: hybridiff=2", "FIRST-LAST"),
    ("cfg=2 | 5-3: hybridiff=2", "first <= last"),
    ("cfg=2 | 5-8: ulysses=4", "same GPUs"),
    ("cfg=2 | 5-8: hybridiff=2 | 7-9: hybridiff=2", "overlap"),
])
def test_bad_plans_are_one_clear_line(text, needle):
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_schedule_segments_pick_the_plan_of_each_step():
    p = parse_plan("cfg=2 | 15-20: hybridiff=2 k=5")
    assert str(p.plan_at(14)) == "cfg=2"
    assert str(p.plan_at(15)) == "hybridiff=2 k=5"
    assert str(p.plan_at(21)) == "cfg=2"
    assert str(p.base()) == "cfg=2"


@given(st.integers(1, 64), st.lists(st.sampled_from(DEGREE_KEYS[:6]), min_size=1, max_size=4, unique=True))
def test_factorisations_multiply_to_n(n, keys):
    seen = set()
    for d in factorisations(n, tuple(keys)):
        prod = 1
        for v in d.values():
            prod *= v
        assert prod == n
        key = tuple(sorted(d.items()))
        assert key not in seen
        seen.add(key)
        assert make_plan(d).gpus == n
