"""Fuzzing the file loaders with hypothesis (issue 16): cluster files, hardware profiles and
calibration-schema CSVs. Whatever the document, a loader either returns a valid object or
raises its one-line user error (HardwareError / UsageError); never another exception. What
a loader accepts must also be usable: a loaded cluster or profile gives finite, positive
predictions, and an accepted CSV evaluates every row or says why not.

Documents are drawn near the valid ones (a valid document with one value replaced by an
arbitrary JSON value, a list shortened or a key dropped), where bugs hide, and as arbitrary
JSON. Derandomized, so CI runs the same examples every time."""
from __future__ import annotations

import copy
import csv
import io
import json
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from planner.cluster import Cluster, cluster_from_dict, load_cluster_file
from planner.cost.predict import predict
from planner.errors import UsageError
from planner.hardware import HardwareError, Profile, default_profile, gpu_ids, link_ids
from planner.inputs import scenario
from planner.plan import parse_plan
from planner.profile_io import profile_from_doc
from test_profile_io import make_doc

FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 200)), deadline=None,
                derandomize=not __import__("os").environ.get("FUZZ_EXAMPLES"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# arbitrary JSON values, with the numbers that break code: NaN is not JSON (read_json refuses
# it), but a dict built in code can hold it, so the loaders see it too
NUMBERS = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -1, 1, 2, 1e300, -1e-300, 0.5, 10**9, 2**63]))
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "l40", "cpu", "shm", "pcie4", "nvswitch", "١٢",
                                                        "fp32", "gemm", "all_reduce", "../links/shm"]))
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)


def _paths(doc, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw, base):
    """`base` with one change: a value replaced, a key dropped, or a list cut."""
    doc = copy.deepcopy(base)
    paths = [p for p, _ in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    how = draw(st.sampled_from(["replace", "replace", "drop", "cut"]))
    if how == "drop":
        del parent[path[-1]]
    elif how == "cut" and isinstance(parent[path[-1]], list):
        parent[path[-1]] = parent[path[-1]][:draw(st.integers(0, 1))]
    else:
        parent[path[-1]] = draw(JSON)
    return doc


def _one_line(e: Exception) -> None:
    assert str(e) and "\n" not in str(e), repr(e)
    event("refused")


# ---------------------------------------------------------------- cluster files
CLUSTER = {"name": "fuzz", "inter": "ib-hdr",
           "links": {"pcie4": {"bw_gbps": 12.0, "latency_us": 5.0}},
           "nodes": [{"gpus": {"a100-sxm4-80gb": 2}, "intra": "nvswitch"},
                     {"gpus": ["l40", "l40"], "intra": "pcie4-2socket", "sockets": [1, 1]}]}
VALID_GPU = st.sampled_from([g for g in gpu_ids() if g != "cpu"])
NODE = st.fixed_dictionaries(
    {"gpus": st.one_of(st.lists(VALID_GPU, min_size=1, max_size=4), st.dictionaries(VALID_GPU, st.integers(1, 4),
                                                                                   min_size=1, max_size=2),
                       st.lists(VALID_GPU | TEXT, max_size=5), st.dictionaries(TEXT, st.integers(-2, 2**40), max_size=2))},
    optional={"intra": st.sampled_from(["nvswitch", "pcie3", "pcie4", "pcie4-2socket", "nvlink-bridge", "shm"]) | TEXT,
              "sockets": st.lists(st.integers(-1, 5), max_size=3) | JSON})
STRUCTURED = st.fixed_dictionaries(
    {"nodes": st.lists(NODE, min_size=1, max_size=3)},
    optional={"inter": st.sampled_from(["none", "ethernet", "roce", "ib-ndr"]) | TEXT,
              "links": st.dictionaries(st.sampled_from(link_ids()) | TEXT,
                                       st.fixed_dictionaries({}, optional={"bw_gbps": NUMBERS, "latency_us": NUMBERS}),
                                       max_size=2)})
CLUSTER_DOCS = st.one_of(mutated(CLUSTER), JSON, STRUCTURED, STRUCTURED)


def _usable_cluster(c: Cluster) -> None:
    assert 1 <= c.n <= 1024
    model, sc = scenario("pixart-alpha", steps=2)
    p = predict(parse_plan("serial"), model, sc, c, default_profile())
    assert math.isfinite(p.latency_s) and p.latency_s > 0
    if c.n >= 2 and c.n % 2 == 0:
        assert math.isfinite(predict(parse_plan(f"pipefusion={c.n}"), model, sc, c, default_profile()).latency_s)


@FUZZ
@given(CLUSTER_DOCS)
def test_cluster_documents(doc):
    try:
        c = cluster_from_dict(doc, source="fuzz")
    except HardwareError as e:
        _one_line(e)
        return
    event("accepted")
    _usable_cluster(c)


@FUZZ
@given(st.one_of(st.binary(max_size=200), CLUSTER_DOCS.map(lambda d: json.dumps(d).encode())))
def test_cluster_files(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("c") / "cluster.json"
    path.write_bytes(raw)
    try:
        c = load_cluster_file(path)
    except HardwareError as e:
        _one_line(e)
        assert str(path) in str(e)
        return
    _usable_cluster(c)


# ---------------------------------------------------------------- hardware profiles
PROFILE = make_doc() | {"calibration": default_profile().calibration.to_json()}


@FUZZ
@given(st.one_of(mutated(PROFILE), mutated(PROFILE).flatmap(mutated), JSON))
def test_hardware_profiles(doc):
    try:
        prof = profile_from_doc(doc, "fuzz")
    except HardwareError as e:
        _one_line(e)
        return
    assert isinstance(prof, Profile)
    event("accepted")
    from planner.cluster import build_cluster
    model, sc = scenario("dit-xl-2", height=256, width=256, steps=2, dtype=doc["device"]["dtype"], scope="denoise")
    for plan in ("serial", "cfg=2", "pipefusion=2"):
        p = predict(parse_plan(plan), model, sc, build_cluster(doc["device"]["gpu_id"], 2, intra="shm")
                    if doc["device"]["gpu_id"] == "cpu" else build_cluster(doc["device"]["gpu_id"], 2), prof)
        assert math.isfinite(p.latency_s) and p.latency_s > 0, plan


def _with_blocks() -> dict:
    """PROFILE with a block table (`profile --model`) of the fuzz scenario's model, so that
    accepted documents go through planner/cost/measured.py."""
    from planner.cost import compute, measured
    model, _ = scenario("dit-xl-2", height=256, width=256, steps=2, dtype="fp32", scope="denoise")
    sigs = measured.signatures(model)
    blocks = [{"name": model.blocks[i].name, "signature": sigs[i], "count": 1,
               "points": [{"seq_div": 2, "tokens": model.tokens / 2, "batch": 2, "time_us": 100.0},
                          {"seq_div": 1, "tokens": model.tokens, "batch": 2, "time_us": 300.0}]}
              for i in sorted(set(compute.block_classes(model)))]
    table = {"model": "dit-xl-2", "scale": "full", "config_hash": "sha256:0", "gpu_id": "cpu", "dtype": "fp32",
             "shape": {"tokens": model.tokens}, "blocks": blocks,
             "components": [{"name": "vae", "signature": measured.component_signature(model.vae_decoder),
                             "batch": 1, "time_us": 5000.0}]}
    return PROFILE | {"blocks": {"tables": [table]}}


@FUZZ
@given(st.one_of(mutated(_with_blocks()), mutated(_with_blocks()).flatmap(mutated)))
def test_hardware_profiles_with_block_tables(doc):
    try:
        prof = profile_from_doc(doc, "fuzz")
    except HardwareError as e:
        _one_line(e)
        return
    event("accepted")
    model, sc = scenario("dit-xl-2", height=256, width=256, steps=2, dtype="fp32", scope="pipeline")
    from planner.cluster import build_cluster
    for plan in ("serial", "cfg=2", "ulysses=2", "pipefusion=2"):
        p = predict(parse_plan(plan), model, sc, build_cluster("cpu", 2, intra="shm"), prof)
        assert math.isfinite(p.latency_s) and p.latency_s > 0, plan
    event("measured" if "measured" in p.block_times else "roofline")


# ---------------------------------------------------------------- calibration CSVs
HEADER = ("id", "source", "model", "gpu", "gpus", "nodes", "intra", "inter", "height", "width", "frames",
          "steps", "cfg", "plan", "compile", "scope", "latency_s")
GOOD = {"id": "r1", "source": "fuzz", "model": "pixart-alpha", "gpu": "l40", "gpus": "2", "nodes": "1",
        "intra": "pcie4", "inter": "", "height": "1024", "width": "1024", "frames": "1", "steps": "20",
        "cfg": "1", "plan": "cfg=2", "compile": "", "scope": "", "latency_s": "1.5"}
FIELD = {
    "model": st.sampled_from(["pixart-alpha", "sdxl", "sd3-medium", "flux.1-dev"]) | TEXT,
    "gpu": st.sampled_from(["l40", "a100-sxm4-80gb", "t4", "cpu"]) | TEXT,
    "plan": st.sampled_from(["serial", "cfg=2", "pipefusion=2", "ulysses=2", "cfg=2 | 3-5: hybridiff=2 k=2"]) | TEXT,
}
CELL = st.one_of(TEXT, NUMBERS.map(str), st.sampled_from(["nan", "inf", "-1", "0", "1e3", "1.5", "OOM", "2 ", "1_0"]))


@st.composite
def csv_text(draw) -> str:
    rows = []
    for i in range(draw(st.integers(0, 3))):
        row = dict(GOOD, id=f"r{i}")
        for k in draw(st.lists(st.sampled_from(HEADER), max_size=3, unique=True)):
            row[k] = draw(FIELD.get(k, CELL))
        rows.append(row)
    buf = io.StringIO()
    header = list(HEADER)
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        header.remove(draw(st.sampled_from(HEADER)))
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        cells = [r.get(k, "") for k in header]
        cut = draw(st.integers(0, 12))
        w.writerow(cells[:len(cells) - cut] if cut < 3 else cells)     # now and then a short row
    return buf.getvalue()


@FUZZ
@given(st.one_of(csv_text(), st.text(max_size=300)))
def test_calibration_csvs(tmp_path_factory, text):
    from planner.validate import evaluate, metrics, read_rows
    path = tmp_path_factory.mktemp("v") / "runs.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        rows = read_rows(path)
    except UsageError as e:
        _one_line(e)
        return
    results = evaluate(rows, default_profile())
    event(f"accepted, {sum(r.predicted_s is not None for r in results)} of {len(results)} rows evaluated")
    for r in results:
        assert (r.predicted_s is not None) != (r.reason is not None), r
        if r.predicted_s is not None:
            assert math.isfinite(r.predicted_s) and r.predicted_s > 0
        else:
            _one_line(Exception(r.reason))
    m = metrics(results)
    for key in ("mape", "max_ape", "speedup_mape"):
        assert m[key] is None or math.isfinite(m[key]), (key, m[key])


def test_the_base_documents_are_valid():
    """The fuzzers start from valid documents (else they would only test rejection)."""
    assert cluster_from_dict(CLUSTER).n == 4
    assert isinstance(profile_from_doc(PROFILE), Profile)
    buf = io.StringIO()
    w = csv.DictWriter(buf, HEADER)
    w.writeheader()
    w.writerow(GOOD)
    from planner.validate import evaluate
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "r.csv").write_text(buf.getvalue())
        from planner.validate import read_rows
        assert evaluate(read_rows(Path(d) / "r.csv"), default_profile())[0].predicted_s > 0


pytestmark = pytest.mark.filterwarnings("ignore")
