"""`profile --model` (profiler/model.py) and measured block times in the cost model
(planner/cost/measured.py): tiny scale, CPU, one thread."""
from __future__ import annotations

import copy
import json
import math
from types import SimpleNamespace

import pytest

from clitool import run_cli
from planner.cluster import build_cluster
from planner.cost import compute, measured
from planner.cost.predict import predict
from planner.hardware import HardwareError, load_gpu
from planner.plan import parse_plan
from planner.profile_io import load_profile_doc, profile_from_doc, save_profile
from planner.spec import Scenario
from test_profile_io import make_doc

pytest.importorskip("diffusers")

MODEL, SCALE = "sd3-medium", "tiny"
CPU = load_gpu("cpu")


@pytest.fixture(scope="module")
def job():
    from profiler.model import ModelRequest, check_model
    return check_model(ModelRequest(MODEL, SCALE), "fp32")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """A profile of this CPU (synthetic op curves, fp32, one thread) to which `profile
    --model` adds the tiny SD3's table: only the model is measured."""
    path = tmp_path_factory.mktemp("profile-model") / "p.json"
    save_profile(make_doc(), path)
    r = run_cli("profile", "--model", MODEL, "--scale", SCALE, "--quick", "--no-progress", "--out", str(path))
    assert r.code == 0, r.err
    doc, _ = load_profile_doc(path)
    return SimpleNamespace(path=path, doc=doc, out=r.out)


def _scenario(job, **kw) -> Scenario:
    return Scenario(job.model, job.height, job.width, job.frames, 4, job.batch, job.cfg, job.text_tokens, "fp32",
                    **kw)


def _predict(plan: str, job, doc: dict, sc: Scenario | None = None, model=None):
    cluster = build_cluster("cpu", parse_plan(plan).gpus, intra="shm")
    return predict(parse_plan(plan), model or job.spec, sc or _scenario(job), cluster, profile_from_doc(doc))


def _without_blocks(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "blocks"}


def test_writes_the_table_with_provenance(profiled, job):
    doc = profiled.doc
    assert doc["compute"] == make_doc()["compute"]          # the op curves are kept, not re-measured
    [table] = doc["blocks"]["tables"]
    assert (table["model"], table["scale"], table["gpu_id"], table["dtype"]) == (MODEL, SCALE, "cpu", "fp32")
    assert table["config_hash"].startswith("sha256:") and len(table["config_hash"]) == 71
    prov = table["provenance"]
    assert {"date", "device_name", "torch", "diffusers", "transformers", "command", "configs", "weights"} <= set(prov)
    assert "--model sd3-medium" in prov["command"] and "shrunk to --scale tiny" in prov["configs"]
    assert table["shape"] | {} == {"height": 128, "width": 128, "frames": 1, "batch": 1, "branches": 2,
                                  "text_tokens": job.text_tokens, "tokens": job.spec.tokens}
    # one entry per distinct block class, named as the planner names the blocks; counts cover the model
    classes = compute.block_classes(job.spec)
    assert [b["name"] for b in table["blocks"]] == [job.spec.blocks[c].name for c in sorted(set(classes))]
    assert sum(b["count"] for b in table["blocks"]) == len(job.spec.blocks)
    for b in table["blocks"]:
        assert [p["seq_div"] for p in b["points"]] == [8, 4, 2, 1]
        assert [p["tokens"] for p in b["points"]] == [job.spec.tokens / n for n in (8, 4, 2, 1)]
        assert all(p["batch"] == 2 and p["time_us"] > 0 for p in b["points"])
    assert b["modules"] == ["AdaLayerNormContinuous", "Linear"]          # final: what it runs
    assert [c["name"] for c in table["components"]] == ["text_encoder", "text_encoder_2", "text_encoder_3", "vae"]
    assert "denoiser pass" in profiled.out and "block0" in profiled.out


def test_the_run_prediction_uses_the_measured_blocks(profiled, job):
    """At the measured shape the serial prediction's compute is the measured blocks' sum."""
    pred = _predict("serial", job, profiled.doc)
    assert "measured (profile synthetic, sd3-medium --scale tiny) for 5 of 5 blocks" in pred.block_times
    assert "text encoders and VAE: 4 of 4 measured" in pred.block_times
    assert pred.to_dict()["block_times"] == pred.block_times
    [table] = profiled.doc["blocks"]["tables"]
    step = sum(b["count"] * b["points"][-1]["time_us"] for b in table["blocks"]) * 1e-6
    assert pred.breakdown.compute == pytest.approx(4 * step, rel=1e-9)
    # the executor's prediction (run --model sd3-medium --scale tiny) is the same cost model
    from executor.experiment import prepare
    prep = prepare(job.spec, _scenario(job, scope="denoise"), "cfg=2", build_cluster("cpu", 2, intra="shm"),
                   profile_from_doc(profiled.doc), diffusers={"scale": SCALE})
    assert "for 5 of 5 blocks" in prep.prediction.block_times


@pytest.mark.parametrize("plan", ["serial", "cfg=2", "ulysses=2", "ring=2", "pipefusion=2", "cfg=2 ulysses=2"])
def test_doubling_the_measured_times_doubles_the_compute(profiled, job, plan):
    doubled = copy.deepcopy(profiled.doc)
    for t in doubled["blocks"]["tables"]:
        for entry in t["blocks"] + t["components"]:
            for p in entry.get("points", [entry]):
                p["time_us"] *= 2
    a, b = _predict(plan, job, profiled.doc), _predict(plan, job, doubled)
    assert b.breakdown.compute == pytest.approx(2 * a.breakdown.compute, rel=1e-9)
    assert b.breakdown.text_encoders == pytest.approx(2 * a.breakdown.text_encoders, rel=1e-9)
    assert b.breakdown.vae == pytest.approx(2 * a.breakdown.vae, rel=1e-9)
    plain = _predict(plan, job, _without_blocks(profiled.doc))
    assert plain.block_times == "" and a.breakdown.compute != plain.breakdown.compute


def test_another_model_scale_or_mode_keeps_the_roofline(profiled, job):
    plain = _predict("cfg=2", job, _without_blocks(profiled.doc))
    other = copy.deepcopy(profiled.doc)
    other["blocks"]["tables"][0]["model"] = "sdxl"
    for doc in (other,):
        p = _predict("cfg=2", job, doc)
        assert (p.latency_s, p.block_times) == (plain.latency_s, "")
    # the full-size SD3 (another scale: other widths) with the tiny table: roofline, and it says why
    from planner import inputs
    full, sc = inputs.scenario(MODEL, height=128, width=128, dtype="fp32", steps=4)
    a = _predict("cfg=2", job, profiled.doc, sc, full)
    b = _predict("cfg=2", job, _without_blocks(profiled.doc), sc, full)
    assert a.latency_s == b.latency_s and "roofline" in a.block_times and "widths" in a.block_times
    # compiled: the profiler times eager PyTorch
    sc = _scenario(job, compiled=True)
    a, b = _predict("cfg=2", job, profiled.doc, sc), _predict("cfg=2", job, _without_blocks(profiled.doc), sc)
    assert a.latency_s == b.latency_s and "compiled" in a.block_times


def test_shards_interpolate_the_ratio_in_log_rows(profiled, job):
    """Points at k x roofline: a shard between two points gets the ratio interpolated in
    log(rows); beyond the points the nearest point's ratio."""
    doc = copy.deepcopy(profiled.doc)
    table = doc["blocks"]["tables"][0]
    base = profile_from_doc(_without_blocks(doc))
    ks = {8: 1.0, 4: 2.0, 2: 3.0, 1: 5.0}
    for b in table["blocks"]:
        i = next(k for k, blk in enumerate(job.spec.blocks) if blk.name == b["name"])
        for p in b["points"]:
            roof = measured.roofline_at(job.spec, p["tokens"], p["batch"], 4, "fp32", CPU, base)[i]
            p["time_us"] = ks[p["seq_div"]] * roof * 1e6
    prof = profile_from_doc(doc)
    sc = _scenario(job)
    m = measured.match(job.spec, prof, CPU, sc)
    assert m.measured == len(job.spec.blocks)
    S = job.spec.tokens

    def ratio(seq, batch):
        from planner.strategies.base import Shard
        return measured.block_ratios(job.spec, m, Shard(seq=seq), batch, 4, "fp32", CPU, prof)
    assert ratio(1, 2) == pytest.approx([5.0] * len(job.spec.blocks))            # a measured point
    assert ratio(4, 2) == pytest.approx([2.0] * len(job.spec.blocks))
    assert ratio(math.sqrt(2), 2) == pytest.approx([4.0] * len(job.spec.blocks))  # halfway in log rows
    assert ratio(1, 1) == pytest.approx([3.0] * len(job.spec.blocks))            # rows S: the 1/2 point's
    assert ratio(0.25, 2) == pytest.approx([5.0] * len(job.spec.blocks))         # 4x the tokens: nearest
    assert ratio(64, 2) == pytest.approx([1.0] * len(job.spec.blocks))           # below the smallest shard
    assert S > 0


BAD_TABLES = [
    (lambda t: t.pop("model"), "lacks 'model'"),
    (lambda t: t.update(scale="huge"), "scale 'huge'"),
    (lambda t: t.update(dtype="bf16"), "dtype 'bf16'"),
    (lambda t: t.update(gpu_id="l40"), "gpu_id 'l40'"),
    (lambda t: t["shape"].update(tokens=0), "shape.tokens"),
    (lambda t: t["blocks"][0].update(points=[]), "non-empty list"),
    (lambda t: t["blocks"][0]["points"][0].update(time_us=float("nan")), "time_us"),
    (lambda t: t["blocks"][0]["points"][0].update(time_us=-1.0), "time_us"),
    (lambda t: t["blocks"][0]["points"][0].update(batch=1.5), "batch"),
    (lambda t: t["blocks"][0]["points"].reverse(), "increasing rows"),
    (lambda t: t["blocks"][1].update(signature=t["blocks"][0]["signature"]), "twice"),
    (lambda t: t["blocks"][0].update(signature=""), "signature"),
    (lambda t: t.update(blocks={}), "list of measured blocks"),
    (lambda t: t["components"][0].update(time_us="1"), "time_us"),
]


@pytest.mark.parametrize("mutate, needle", BAD_TABLES)
def test_profile_io_refuses_a_malformed_table_in_one_line(profiled, mutate, needle):
    doc = copy.deepcopy(profiled.doc)
    mutate(doc["blocks"]["tables"][0])
    with pytest.raises(HardwareError) as e:
        profile_from_doc(json.loads(json.dumps(doc)), "hardware profile p.json")
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and msg.startswith("hardware profile p.json: blocks.tables[0]")


def test_one_table_per_model_and_scale(profiled):
    from profiler.model import merge_table
    doc = copy.deepcopy(profiled.doc)
    [table] = doc["blocks"]["tables"]
    twice = copy.deepcopy(doc)
    twice["blocks"]["tables"].append(copy.deepcopy(table))
    with pytest.raises(HardwareError, match="given twice"):
        profile_from_doc(twice)
    small = table | {"scale": "small"}
    merged = merge_table(merge_table(doc, small), table | {"config_hash": "sha256:new"})
    assert [(t["scale"], t["config_hash"][:10]) for t in merged["blocks"]["tables"]] == \
        [("small", table["config_hash"][:10]), ("tiny", "sha256:new")]
    profile_from_doc(merged)


def test_into_a_new_file_the_op_curves_are_measured_first(tmp_path):
    """Where --out does not exist, the op curves are measured (preset tiny here) before the model."""
    from profiler.model_cli import profile_model
    from profiler.run import ProfileOptions
    out = tmp_path / "new.json"
    args = SimpleNamespace(model="pixart-alpha", scale="tiny", weights=None, height=None, width=None, frames=None,
                           batch=None, text_tokens=None)
    opts = ProfileOptions(device="cpu", preset="tiny", nproc=1, progress=False, name="new")
    doc, table, spec, ops = profile_model(args, opts, out)
    assert ops and doc["comm"]["skipped"] and set(doc["compute"]["curves"]) == {"gemm", "conv", "attn", "mem"}
    save_profile(doc, out)
    _, prof = load_profile_doc(out)
    sc = Scenario("pixart-alpha", 128, 128, 1, 2, 1, True, table["shape"]["text_tokens"], "fp32")
    m = measured.match(spec, prof, CPU, sc)
    assert m is not None and m.measured == len(spec.blocks)


def test_plain_profile_keeps_the_tables_of_the_same_device(profiled):
    """`profile` without --model over a profile of the same device, dtype and threads keeps
    its block tables (cli._same_device_doc); of another dtype it is overwritten whole."""
    from profiler.cli import _same_device_doc
    from profiler.run import ProfileOptions
    kept = _same_device_doc(profiled.path, ProfileOptions(device="cpu"))
    assert kept is not None and kept["blocks"] == profiled.doc["blocks"]
    assert _same_device_doc(profiled.path, ProfileOptions(device="cpu", dtype="bf16")) is None
