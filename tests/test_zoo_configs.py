"""The zoo's configs as data (planner/zoo/configs/), the facts they must agree with, and
`plan --model-dir` on diffusers folders: torch-free (tests/test_zoo_meta.py checks the same
configs against the real diffusers/transformers classes)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planner import zoo
from planner.zoo import pipelines
from planner.zoo.hub import CONFIGS, read_folder, zoo_folder

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _main(*args) -> tuple[int, str, str]:
    """cli.main in this process (fast): exit code, stdout, stderr."""
    import contextlib
    import importlib.util
    import io
    spec = importlib.util.spec_from_file_location("paradiff_cli", ROOT / "cli.py")
    cli = importlib.util.module_from_spec(spec)
    sys.modules["paradiff_cli"] = cli          # its parser registers the commands through sys.modules
    spec.loader.exec_module(cli)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- configs as data
@pytest.mark.parametrize("model", zoo.model_ids())
def test_every_component_has_config_and_source(model):
    root = CONFIGS / model
    index = json.loads((root / "model_index.json").read_text())
    sources = json.loads((root / "sources.json").read_text())
    assert isinstance(index["_class_name"], str) and "model_index.json" in sources
    pipe = zoo_folder(model)
    assert pipe.components, model
    for name in pipe.components:
        assert (root / name / "config.json").is_file()
        assert sources.get(name), f"{model}/{name} has no source"
    for name, label in sources.get("labels", {}).items():
        assert name in pipe.components and label


@pytest.mark.parametrize("model", zoo.model_ids())
def test_facts_agree_with_configs(model):
    """The facts the grid uses (latent channels, patch, VAE compression, default size) are
    what the shipped configs say."""
    f, pipe = zoo.facts(model), zoo_folder(model)
    kind = pipelines.kind_of(pipe)
    assert pipelines.latent_of(pipe, kind) == (f.latent_channels, f.patch)
    _, _, (spatial, temporal) = pipelines.vae_of(pipe)
    # Open-Sora 1.2 decodes 17-frame micro-batches: x4 in time within each (facts keep the 4)
    assert (spatial, temporal) == (f.vae_spatial, f.vae_temporal)
    sample = pipe.component(kind.denoiser).config.get("sample_size")
    if kind.size_from == "sample_size":
        assert (f.default_height, f.default_width) == (sample * spatial, sample * spatial)
    elif isinstance(kind.size_from, int):
        assert (f.default_height, f.default_width) == (kind.size_from * spatial,) * 2


def test_every_pipeline_kind_is_a_zoo_model():
    used = {pipelines.kind_of(zoo_folder(m)) for m in zoo.model_ids()}
    assert used == set(pipelines.PIPELINES.values())
    for kind in pipelines.PIPELINES.values():
        assert kind.zoo_id in zoo.model_ids()


def test_planner_imports_and_builds_without_torch():
    """torch, diffusers and transformers blocked: the zoo still imports and builds everything."""
    code = ("import sys\n"
            "for m in ('torch', 'diffusers', 'transformers', 'safetensors'):\n"
            "    sys.modules[m] = None\n"
            "from planner import zoo\n"
            "import planner.zoo.pipelines, planner.zoo.local, planner.search\n"
            "for m in zoo.model_ids():\n"
            "    f = zoo.facts(m)\n"
            "    zoo.build(m, f.default_height, f.default_width, f.default_frames)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'transformers')"
            " and sys.modules[m] is not None]\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# ---------------------------------------------------------------- model folders
def _copy(model: str, tmp_path: Path, name: str | None = None) -> Path:
    dst = tmp_path / (name or model)
    shutil.copytree(CONFIGS / model, dst)
    (dst / "sources.json").unlink()
    return dst


@pytest.mark.parametrize("model", ["sdxl", "pixart-alpha", "flux.1-dev", "wan2.1-t2v-1.3b", "animatediff"])
def test_model_dir_builds_the_zoo_spec(model, tmp_path):
    """A copy of a zoo folder plans as the zoo model: same blocks, ops, encoders and VAE."""
    local = zoo.load_model_dir(_copy(model, tmp_path))
    f = zoo.facts(model)
    assert (local.facts.default_height, local.facts.default_width) == (f.default_height, f.default_width)
    got = local.build(f.default_height, f.default_width, f.default_frames)
    want = zoo.build(model, f.default_height, f.default_width, f.default_frames)
    assert got.blocks == want.blocks and got.vae_decoder.ops == want.vae_decoder.ops
    assert [s.ops for s in got.text_encoders] == [s.ops for s in want.text_encoders]
    assert f"as zoo model {model}" in local.facts.name or model == "wan2.1-t2v-1.3b"


def test_model_dir_old_transformer2d_class_name(tmp_path):
    """PixArt/DiT folders saved before diffusers 0.28 name Transformer2DModel; the norm_type
    picks the class, as diffusers' _CLASS_REMAPPING_DICT does."""
    d = _copy("pixart-alpha", tmp_path)
    for path, key in ((d / "model_index.json", "transformer"), (d / "transformer" / "config.json", None)):
        doc = json.loads(path.read_text())
        if key:
            doc[key] = ["diffusers", "Transformer2DModel"]
        else:
            doc["_class_name"] = "Transformer2DModel"
        path.write_text(json.dumps(doc))
    assert zoo.load_model_dir(d).build(1024, 1024).blocks == zoo.build("pixart-alpha", 1024, 1024).blocks


def test_model_dir_unknown_pipeline_falls_back_to_the_denoiser_class(tmp_path):
    d = _copy("sd1.5", tmp_path, "my-sd")
    index = json.loads((d / "model_index.json").read_text())
    index["_class_name"] = "MyCustomPipeline"
    (d / "model_index.json").write_text(json.dumps(index))
    local = zoo.load_model_dir(d)
    assert "zoo model sd1.5 (same denoiser class)" in local.facts.name
    assert local.build(512, 512).blocks == zoo.build("sd1.5", 512, 512).blocks


def test_model_dir_cli_plans(tmp_path):
    d = _copy("dit-xl-2", tmp_path, "my-dit")
    out = _cli("plan", "--model-dir", str(d), "--gpus", "2", "--top", "2")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("my-dit (DiTPipeline; scenario defaults of DiTPipeline, as zoo model dit-xl-2)")
    assert "recommended:" in out.stdout


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("case, expect", [
    ("missing", "not a folder"),
    ("no_index", "no model_index.json"),
    ("bad_json", "not valid JSON"),
    ("unknown_pipeline", "'MyPipeline' is not one the zoo knows"),
    ("unknown_denoiser", "'MyTransformer' is not one the zoo builds"),
    ("unknown_vae", "'MyVAE' is not one the zoo builds"),
    ("no_component_config", "vae/config.json: not found"),
    ("unsupported_value", 'qk_norm="layer_norm" is not supported'),
    ("both", "give one of them, not both"),
])
def test_model_dir_bad_input(case, expect, tmp_path):
    d = _copy("sd3-medium", tmp_path)
    extra = []
    if case == "missing":
        d = tmp_path / "nope"
    elif case == "no_index":
        (d / "model_index.json").unlink()
    elif case == "bad_json":
        (d / "transformer" / "config.json").write_text("{not json")
    elif case == "unknown_pipeline":
        def change(doc):
            doc["_class_name"] = "MyPipeline"
            doc["transformer"] = ["diffusers", "MyTransformer"]
        _edit(d / "model_index.json", change)
    elif case == "unknown_denoiser":
        _edit(d / "model_index.json", lambda doc: doc.update(transformer=["diffusers", "MyTransformer"]))
    elif case == "unknown_vae":
        _edit(d / "model_index.json", lambda doc: doc.update(vae=["diffusers", "MyVAE"]))
    elif case == "no_component_config":
        shutil.rmtree(d / "vae")
    elif case == "unsupported_value":
        _edit(d / "transformer" / "config.json", lambda doc: doc.update(qk_norm="layer_norm"))
    elif case == "both":
        extra = ["--model", "sdxl"]
    with pytest.raises(zoo.ZooError, match=expect.replace("(", r"\(")):
        zoo.load_model_dir(d, extra[1] if extra else None)
    if case in ("missing", "unknown_pipeline", "both"):   # a few through a real process: exit code, no traceback
        out = _cli("plan", "--model-dir", str(d), *extra)
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        code, stdout, stderr = _main("plan", "--model-dir", str(d), *extra)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], stderr
    assert "Traceback" not in stderr


def test_read_folder_skips_tokenizers_and_null_components(tmp_path):
    d = _copy("sd2.1", tmp_path)      # model_index lists tokenizer, scheduler, safety_checker [null, null]
    pipe = read_folder(d)
    assert set(pipe.components) == {"text_encoder", "unet", "vae"}
