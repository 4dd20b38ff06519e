"""Inference engines (planner/engines): what each runs, its launch line checked against the
engine's own rules, the strategy-key table, the search filter, and bad input.

The launch checks re-read the emitted command or config the way the engine would
(degree products against the world size, head and sequence divisibility, supported
strategies) with rules written out here from the engines' sources, not with the engine
module's own refusals."""
import ast
import os
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from planner import zoo
from planner.cluster import build_cluster
from planner.engines import ENGINES, accepts
from planner.engines.models import DIFFUSERS
from planner.engines.output import best_per_engine
from planner.hardware import default_profile
from planner.legality import plan_errors
from planner.plan import parse_plan
from planner.search import candidates, eligible, search
from planner.spec import Scenario
from planner.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parent.parent
PROFILE = default_profile()


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def plan_out(*args) -> str:
    """`cli.py plan ARGS` in this process (its stdout); exit code 0 asserted."""
    import contextlib
    import io
    sys.path.insert(0, str(ROOT))
    import cli as cli_module
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli_module.main(["plan", *args]) == 0
    return buf.getvalue()


def scenario(mid: str, **kw):
    f = zoo.facts(mid)
    sc = Scenario(model=mid, height=kw.get("height", f.default_height), width=kw.get("width", f.default_width),
                  frames=f.default_frames, steps=f.default_steps, cfg=f.cfg_default,
                  text_tokens=kw.get("text_tokens"))
    return zoo.build(mid, sc.height, sc.width, sc.frames, sc.text_tokens), sc


def flags(cmd: str) -> dict:
    """--name value / --name (True) of a command line, later ones winning."""
    toks, out = shlex.split(cmd), {}
    for i, t in enumerate(toks):
        if t.startswith("--"):
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            out[t] = True if nxt is None or nxt.startswith("--") else nxt
    return out


def call_kwargs(script: str, name: str) -> dict:
    """The keyword arguments of the call `name(...)` in a Python script."""
    for node in ast.walk(ast.parse(script)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
            return {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    raise AssertionError(f"no {name}(...) call in the script")


def world(cmd: str) -> int:
    f = flags(cmd)
    return int(f["--nproc-per-node"]) * int(f.get("--nnodes", 1))


# ---------------------------------------------------------------- the rules, re-read per engine
def check_xdit(cmd, model, sc, n):
    f = flags(cmd)
    d = {k: int(f[f"--{k}_degree"]) for k in ("data_parallel", "ulysses", "ring", "tensor_parallel")}
    pp, cfg = int(f["--pipefusion_parallel_degree"]), 2 if "--use_cfg_parallel" in f else 1
    # dp x cfg x ulysses x ring x pp x tp must equal the world size (xdit.md (a))
    assert d["data_parallel"] * d["ulysses"] * d["ring"] * pp * d["tensor_parallel"] * cfg == world(cmd) == n
    assert d["tensor_parallel"] == 1                                   # README: TP for no zoo model
    assert all(h % d["ulysses"] == 0 for h in model.attention_heads())  # heads % ulysses
    patches = int(f["--num_pipeline_patch"]) if pp > 1 else 1
    assert model.latent_rows() % (d["ulysses"] * d["ring"] * patches) == 0   # latent height % sp
    assert cfg == 1 or sc.cfg
    assert f["--model"] == DIFFUSERS[model.id].repo and Path(shlex.split(cmd)[4]).parent.name == "examples"
    if pp > 1:   # PipeFusion only for PixArt, SD3, HunyuanDiT, Flux (README)
        assert model.id.split("-")[0] in ("pixart", "sd3", "sd3.5", "hunyuandit", "flux.1") and "--warmup_steps" in f


def check_diffusers(launch, model, sc, n):
    script = launch["script"]
    compile(script, "run_diffusers.py", "exec")
    assert world(launch["launch"]) == n and f'"{DIFFUSERS[model.id].repo}"' in script
    cp = "ContextParallelConfig(" in script
    tp = "TensorParallelConfig(" in script
    assert not (cp and tp)                                              # ParallelConfig refuses both
    if tp:
        kw = call_kwargs(script, "TensorParallelConfig")
        assert kw["tp_degree"] == n and all(h % n == 0 for h in model.attention_heads())
        assert DIFFUSERS[model.id].denoiser == "FluxTransformer2DModel"     # the only `_tp_plan`
    if cp:
        kw = call_kwargs(script, "ContextParallelConfig")
        u, r = kw.get("ulysses_degree", 1), kw.get("ring_degree", 1)
        assert u * r == n                                                # mesh (ring, ulysses) over the world
        assert DIFFUSERS[model.id].denoiser in ("FluxTransformer2DModel", "WanTransformer3DModel")   # `_cp_plan`
        lengths = [model.tokens] + ([sc.text_tokens or model.facts.text_tokens]
                                    if DIFFUSERS[model.id].denoiser == "FluxTransformer2DModel" else [])
        anything = kw.get("ulysses_anything") or kw.get("ring_anything")
        assert anything or all(t % n == 0 for t in lengths)             # EquipartitionSharder
        assert not kw.get("ulysses_anything") or (u > 1 and r == 1)
        assert not kw.get("ring_anything") or (r > 1 and u == 1)
        assert anything or all(h % u == 0 for h in model.attention_heads())
        assert (r == 1) or '"_native_cudnn"' in script                  # ring needs the LSE
    assert cp or tp or n == 1


def check_sglang(launch, model, sc, n):
    f = flags(launch["launch"])
    u, r, cfg = int(f["--ulysses-degree"]), int(f["--ring-degree"]), 2 if "--enable-cfg-parallel" in f else 1
    assert int(f["--num-gpus"]) == n
    # server_args: sp_degree = num_gpus / (dp x tp x cfg) must equal ring x ulysses; DP and DiT TP absent
    assert n % cfg == 0 and n // cfg == u * r and "--tp-size" not in f and "--dp-size" not in f
    assert all(h % u == 0 for h in model.attention_heads()) and (cfg == 1 or sc.cfg)
    assert f["--model-path"] == DIFFUSERS[model.id].repo
    assert DIFFUSERS[model.id].pipeline in ("FluxPipeline", "StableDiffusion3Pipeline", "WanPipeline",
                                            "HunyuanVideoPipeline")


def check_vllm_omni(launch, model, sc, n):
    f = flags(launch["launch"])
    deg = {k: int(f.get(k, 1)) for k in ("--usp", "--ring", "--cfg-parallel-size", "--tensor-parallel-size")}
    prod = 1
    for v in deg.values():
        prod *= v
    assert prod == n and deg["--cfg-parallel-size"] in (1, 2) and "--omni" in f   # world = tp x sp x cfg
    rows = {"FluxPipeline": {"--cfg-parallel-size", "--tensor-parallel-size"},
            "StableDiffusion3Pipeline": {"--tensor-parallel-size"},
            "WanPipeline": {"--usp", "--ring", "--tensor-parallel-size"}}
    assert {k for k, v in deg.items() if v > 1} <= rows[DIFFUSERS[model.id].pipeline]
    assert all(h % (deg["--usp"] * deg["--tensor-parallel-size"]) == 0 for h in model.attention_heads())
    kw = call_kwargs(launch["script"], "DiffusionParallelConfig")
    assert kw == {k: v for k, v in launch["config"].items() if v > 1}


def check_cache_dit(launch, model, sc, n):
    compile(launch["script"], "run_cache_dit.py", "exec")
    sizes = launch["config"]["parallelism_config"]
    assert world(launch["launch"]) == n and len(sizes) == (0 if n == 1 else 1)   # one of ulysses/ring/tp
    assert all(v == n for v in sizes.values()) and set(sizes) <= {"ulysses_size", "ring_size", "tp_size"}
    for k, v in sizes.items():
        assert f"#     {k}: {v}" in launch["script"]


def check_paradiff(launch, model, sc, n):
    f = flags(launch["launch"])
    assert f["--model"] == model.id and parse_plan(f["--plan"]).gpus == n and int(f["--nproc"]) == n
    assert "--weights" in f


CHECKS = {"xdit": lambda l, m, s, n: check_xdit(l["launch"], m, s, n), "diffusers": check_diffusers,
          "sglang": check_sglang, "vllm-omni": check_vllm_omni, "cache-dit": check_cache_dit,
          "paradiff": check_paradiff}
# (model, GPUs, size): sizes whose latent rows divide by the sequence degrees the planner
# requires (HunyuanVideo's default 720p x 129 frames has 33 x 45 rows, odd: no SP plan is legal)
CASES = [("flux.1-dev", 8, {}), ("flux.1-schnell", 4, {}), ("wan2.1-t2v-1.3b", 2, {}), ("wan2.1-t2v-14b", 2, {}),
         ("pixart-alpha", 8, {}), ("sd3-medium", 8, {}), ("hunyuanvideo", 8, {"height": 768}),
         ("cogvideox-5b", 2, {}), ("sdxl", 2, {}), ("hunyuandit", 4, {}), ("mochi-1", 2, {})]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_launch_follows_the_engine_rules(engine):
    """Every legal candidate the engine accepts gets a launch its rules accept; the
    engine accepts some plan for each model it lists (the check is not vacuous)."""
    e, checked = ENGINES[engine], 0
    for mid, n, size in CASES:
        model, sc = scenario(mid, **size)
        cluster = build_cluster("h100-sxm5-80gb", n, 1, "nvswitch")
        ok = [p for p in candidates(model, sc, n, include_baselines=True)
              if not plan_errors(p, model, sc, n) and e.can_run(p, model, sc)]
        assert bool(ok) == (mid in e.models), (engine, mid)
        for plan in ok:
            doc = {"launch": (lc := e.launch(plan, model, sc, cluster)).command, "config": lc.config,
                   "script": lc.script}
            CHECKS[engine](doc, model, sc, n)
            checked += 1
    assert checked > 5


def test_refusals_name_their_rule_and_source():
    model, sc = scenario("flux.1-dev")
    for e in ENGINES.values():
        for plan in candidates(model, sc, 8, include_baselines=True):
            for r in e.refusals(plan, model, sc):
                assert r.rule and r.source and str(r).endswith("]"), (e.name, plan)


def test_every_strategy_key_is_supported_or_refused_with_a_source_by_every_engine():
    for e in ENGINES.values():
        assert set(e.keys) == set(STRATEGIES), e.name
        for key, s in e.keys.items():
            assert s.source and ("@" in s.source or s.source.startswith("paradiff")), (e.name, key)
            if not s.supported:
                assert len(s.note) > 10, (e.name, key)           # a reason, not a placeholder
            elif key != "serial":
                assert s.note, (e.name, key)                     # the flag or config field
                assert any(key in m.keys for m in e.models.values()), (e.name, key)
        for mid, m in e.models.items():
            assert m.keys <= set(e.supported_keys()) and m.source, (e.name, mid)
    paradiff = ENGINES["paradiff"]
    assert all(s.supported for s in paradiff.keys.values()) and paradiff.schedules.supported


def test_paradiff_runs_the_models_its_executor_has_adapters_for():
    """The engine's list of the executor's denoiser classes is the executor's (torch-free)."""
    from executor.diffusers.configs import model_ids
    from executor.diffusers.scale import FAMILY
    from planner.engines.paradiff import EXECUTOR_CLASSES
    assert set(EXECUTOR_CLASSES) == set(FAMILY)
    assert set(ENGINES["paradiff"].models) == set(model_ids())


def test_schedules_run_only_on_paradiff():
    model, sc = scenario("sdxl")
    plan = parse_plan("cfg=2 | 11-15: hybridiff=2 k=5")
    assert ENGINES["paradiff"].can_run(plan, model, sc)
    refused = ENGINES["xdit"].refusals(plan, model, sc)
    assert any("schedule" in r.rule for r in refused) and any("hybridiff" in r.rule for r in refused)


def test_diffusers_cannot_combine_context_and_tensor_parallelism():
    model, sc = scenario("flux.1-dev")
    refused = ENGINES["diffusers"].refusals(parse_plan("ulysses=2 tp=4"), model, sc)
    assert refused and "_modeling_parallel.py" in refused[0].source
    assert ENGINES["diffusers"].can_run(parse_plan("tp=8"), model, sc)
    assert not ENGINES["diffusers"].can_run(parse_plan("ulysses=8"), *scenario("sd3-medium"))   # no _cp_plan


def test_diffusers_uses_uneven_shards_when_the_text_does_not_divide():
    model, sc = scenario("flux.1-dev", text_tokens=77)      # 77 text tokens, split by Flux's _cp_plan
    e, cluster = ENGINES["diffusers"], build_cluster("h100-sxm5-80gb", 8, 1, "nvswitch")
    assert e.launch(parse_plan("ulysses=8"), model, sc, cluster).config["ulysses_anything"] is True
    assert e.launch(parse_plan("ring=8"), model, sc, cluster).config["ring_anything"] is True
    refused = e.refusals(parse_plan("ulysses=4 ring=2"), model, sc)
    assert refused and "77" in refused[0].rule


def test_cache_dit_runs_one_dimension_and_sglang_one_node():
    model, sc = scenario("flux.1-dev")
    assert not ENGINES["cache-dit"].can_run(parse_plan("ulysses=4 ring=2"), model, sc)
    assert ENGINES["cache-dit"].can_run(parse_plan("ring=8"), model, sc)
    assert ENGINES["sglang"].can_run(parse_plan("ulysses=8"), model, sc, nodes=1)
    assert not ENGINES["sglang"].can_run(parse_plan("ulysses=8"), model, sc, nodes=2)


def test_diffusers_class_table_matches_the_installed_diffusers():
    """Where diffusers is installed (not in CI's extras): the class names exist, the
    engine's CP models are exactly the zoo classes with a `_cp_plan`, TP ones with a
    `_tp_plan`, and the emitted ContextParallelConfig arguments pass its own checks."""
    diffusers = pytest.importorskip("diffusers")
    for c in DIFFUSERS.values():
        getattr(diffusers, c.pipeline), getattr(diffusers, c.denoiser)
    e = ENGINES["diffusers"]
    has_cp = {m for m, c in DIFFUSERS.items() if getattr(getattr(diffusers, c.denoiser), "_cp_plan", None)}
    has_tp = {m for m, c in DIFFUSERS.items() if getattr(getattr(diffusers, c.denoiser), "_tp_plan", None)}
    assert has_cp == {m for m, s in e.models.items() if "ulysses" in s.keys}
    assert has_tp == {m for m, s in e.models.items() if "tp" in s.keys}
    model, sc = scenario("flux.1-dev", text_tokens=77)
    cluster = build_cluster("h100-sxm5-80gb", 8, 1, "nvswitch")
    for text in ("ulysses=8", "ring=8", "ulysses=4 ring=2", "ulysses=2 ring=4"):
        conf = e.launch(parse_plan(text), model, scenario("flux.1-dev")[1], cluster).config
        conf.pop("class")
        diffusers.ContextParallelConfig(**conf)                   # __post_init__ validates
    diffusers.ContextParallelConfig(**{k: v for k, v in e.launch(parse_plan("ulysses=8"), model, sc, cluster)
                                       .config.items() if k != "class"})


@pytest.mark.parametrize("text_tokens", [12, 13])
def test_emitted_context_parallel_config_runs_in_diffusers(text_tokens):
    """Where diffusers is installed: the config the engine emits for ulysses=2 runs a tiny
    random Flux transformer on 2 gloo ranks and matches the serial output, also with 13
    text tokens (Flux's _cp_plan splits the text; the engine then emits ulysses_anything)."""
    pytest.importorskip("diffusers")
    model, sc = scenario("flux.1-dev", text_tokens=text_tokens)
    conf = ENGINES["diffusers"].launch(parse_plan("ulysses=2"), model, sc,
                                       build_cluster("h100-sxm5-80gb", 2, 1, "nvswitch")).config
    conf.pop("class")
    assert conf.get("ulysses_anything", False) == bool(text_tokens % 2)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(ROOT / "tests" / "engines_cp_check.py")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "CONF": json.dumps(conf), "TXT": str(text_tokens)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(re.search(r"max_abs_diff (\S+)", r.stdout).group(1)) < 1e-4


def test_search_with_an_engine_ranks_only_plans_it_runs():
    model, sc = scenario("flux.1-dev")
    cluster = build_cluster("h100-sxm5-80gb", 8, 1, "nvswitch")
    full = search(model, sc, cluster, PROFILE)
    for e in ENGINES.values():
        res = search(model, sc, cluster, PROFILE, accept=accepts(e, model, sc, cluster))
        assert res.ranked and all(e.can_run(p.plan, model, sc) for p in res.ranked), e.name
        assert len(res.ranked) <= len(full.ranked) and res.illegal > full.illegal or e.name == "paradiff"
        # one node, NVSwitch: the table of best plans per engine agrees with --engine's recommendation
        row = next(r for r in best_per_engine(full, model, sc, cluster, 5) if r["engine"] == e.name)
        assert row["plan"] == str(res.recommended.plan), e.name
    # search.eligible is the recommendation rule: the first eligible plan is the recommendation
    assert next(p for p in full.ranked if eligible(p, 5)).plan == full.recommended.plan


# ---------------------------------------------------------------- command line
@pytest.mark.parametrize("engine", ["sglang", "xdit", "diffusers"])
def test_flux_on_8_h100_gives_a_plan_the_engine_runs_and_its_launch(engine):
    out = json.loads(plan_out("--engine", engine, "--model", "flux.1-dev", "--gpu", "h100-sxm5-80gb", "--gpus", "8",
                              "--intra", "nvswitch", "--json"))
    model, sc = scenario("flux.1-dev")
    e = ENGINES[engine]
    assert e.can_run(parse_plan(out["recommended"]["plan"]), model, sc)
    assert all(e.can_run(parse_plan(p["plan"]), model, sc) for p in out["plans"])
    doc = out["engine"]
    assert doc["name"] == engine and doc["plan"] == out["recommended"]["plan"] and doc["launch"]
    CHECKS[engine](doc, model, sc, 8)
    text = plan_out("--engine", engine, "--model", "flux.1-dev", "--gpu", "h100-sxm5-80gb", "--gpus", "8",
                    "--intra", "nvswitch")
    assert doc["launch"] in text and f"launch for {doc['plan']}" in text


def test_plan_without_engine_says_who_runs_the_recommendation():
    out = json.loads(plan_out("--json", "--model", "flux.1-dev", "--gpu", "h100-sxm5-80gb", "--gpus", "8",
                              "--intra", "nvswitch"))
    model, sc = scenario("flux.1-dev")
    rec = parse_plan(out["recommended"]["plan"])
    assert out["engines"]["runs_recommended"] == [n for n, e in ENGINES.items() if e.can_run(rec, model, sc)]
    assert [row["engine"] for row in out["engines"]["best"]] == list(ENGINES)
    text = plan_out("--model", "flux.1-dev", "--gpu", "h100-sxm5-80gb", "--gpus", "8", "--intra", "nvswitch")
    assert f"engines: {out['recommended']['plan']} runs on" in text
    for row in out["engines"]["best"]:
        assert re.search(rf"^  {re.escape(row['engine'])} +{re.escape(row['plan'] or '-')}", text, re.M), row


@pytest.mark.parametrize("args, words", [
    (["--engine", "trt"], ["--engine trt", "accepted: paradiff, xdit"]),
    (["--engine", "sglang", "--model", "pixart-alpha"], ["no multi-GPU support for pixart-alpha", "flux.1-dev"]),
    (["--engine", "sglang", "--model", "flux.1-dev", "--gpus", "8", "--plan", "pipefusion=8"],
     ["cannot run 'pipefusion=8'", "server_args.py", "supports cfg x ulysses x ring on flux.1-dev"]),
    (["--engine", "xdit", "--model", "sdxl", "--gpus", "2", "--plan", "pipefusion=2"],
     ["supports pipefusion on other models, not on sdxl", "README.md"]),
    (["--engine", "xdit", "--model", "sdxl", "--gpus", "8"], ["no plan xDiT can run", "supports cfg on sdxl"]),
    (["--engine", "diffusers", "--model", "flux.1-dev", "--gpus", "8", "--plan", "ulysses=2 tp=4"],
     ["cannot combine context parallelism", "_modeling_parallel.py"]),
])
def test_bad_engine_input_is_one_line_and_exit_2(args, words):
    r = cli("plan", *args)
    assert r.returncode == 2 and r.stdout == "", r.stdout
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("error: ") and "Traceback" not in line
    for w in words:
        assert w in line, (w, line)


def test_xdit_flag_still_prints_flags_and_problems():
    x = json.loads(plan_out("--plan", "cfg=2 pipefusion=2 ulysses=2", "--xdit", "--json"))["xdit"]
    assert "--use_cfg_parallel" in x["flags"] and x["problems"] == []
    problems = json.loads(plan_out("--plan", "tp=8", "--xdit", "--json"))["xdit"]["problems"]
    assert any("has no tp" in p and "README.md" in p for p in problems)
