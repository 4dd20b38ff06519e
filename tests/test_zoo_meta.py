"""The zoo's ModelSpecs against the real classes: every zoo model's denoiser, text encoders and
VAE built by diffusers / transformers from the shipped configs on the meta device (no memory,
nothing downloaded), parameter for parameter; the builders' class defaults against the
installed classes; and `plan --model-dir` on a folder written by save_pretrained of a tiny
pipeline with random weights. Needs the test extra (torch, diffusers, transformers)."""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"          # configs only: nothing may be fetched
torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[test]')")
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (pip install -e '.[test]')")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install -e '.[test]')")

from planner import zoo                                    # noqa: E402
from planner.zoo import encoders, pipelines, unet, vae     # noqa: E402
from planner.zoo.hub import zoo_folder                      # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# classes defined in this project for Open-Sora (no diffusers class in diffusers 0.42.1):
# their configs are the original repository's, counted by the zoo only
CUSTOM = {"OpenSoraMMDiTModel", "OpenSoraSTDiT3Model", "OpenSoraVAE_V1_2"}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _quiet():
    warnings.filterwarnings("ignore")
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()


def _build(component, config: dict):
    """The real module of one component, on the meta device."""
    with torch.device("meta"):
        if component.library == "diffusers":
            cls = getattr(diffusers, pipelines.denoiser_class(component))
            return cls.from_config(config)
        cls = getattr(transformers, component.class_name)
        return cls(cls.config_class(**config))


def _decoder_params(model) -> int:
    """The VAE's decode path: decoder + post_quant_conv (the encoder is not run)."""
    post = getattr(model, "post_quant_conv", None)
    return _count(model.decoder) + (_count(post) if post is not None else 0)


@pytest.mark.parametrize("model", zoo.model_ids())
def test_params_match_the_real_classes(model):
    _quiet()
    f, pipe = zoo.facts(model), zoo_folder(model)
    spec = zoo.build(model, f.default_height, f.default_width, f.default_frames)
    kind = pipelines.kind_of(pipe)
    den = pipe.component(kind.denoiser)
    if den.class_name not in CUSTOM:
        if kind.motion_adapter:   # the pipeline turns unet + motion_adapter into a UNetMotionModel
            with torch.device("meta"):
                real = diffusers.UNetMotionModel.from_unet2d(
                    _build(den, den.config), _build(pipe.component("motion_adapter"),
                                                    pipe.component("motion_adapter").config))
        else:
            real = _build(den, den.config)
        assert spec.params == pytest.approx(_count(real), rel=1e-3), model
    for (name, _), stage in zip(kind.encoders, spec.text_encoders, strict=True):
        c = pipe.component(name)
        assert stage.params == pytest.approx(_count(_build(c, c.config)), rel=1e-2), (model, name)
    v = pipe.component("vae")
    if v.class_name not in CUSTOM:
        assert spec.vae_decoder.params == pytest.approx(_decoder_params(_build(v, v.config)), rel=1e-2), model


def _init_defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _same(a, b) -> bool:
    norm = (lambda v: list(v) if isinstance(v, (list, tuple)) else v)
    return norm(a) == norm(b)


def _diffusers_tables():
    for name, d in pipelines.DENOISERS.items():
        if name not in CUSTOM:
            yield name, d.defaults
    for name, (defaults, _, _) in vae.VAES.items():
        if name not in CUSTOM:
            yield name, defaults
    yield "MotionAdapter", unet.MOTION_DEFAULTS


@pytest.mark.parametrize("cls_name, defaults", list(_diffusers_tables()), ids=lambda v: v if isinstance(v, str) else "")
def test_builder_defaults_are_the_diffusers_class_defaults(cls_name, defaults):
    real = _init_defaults(getattr(diffusers, cls_name))
    wrong = {k: (v, real.get(k, "<no such argument>")) for k, v in defaults.items()
             if k not in real or not _same(real[k], v)}
    assert not wrong, f"{cls_name}: builder default vs diffusers 0.42.1 __init__: {wrong}"


@pytest.mark.parametrize("cls_name", sorted(encoders.ENCODERS))
def test_encoder_defaults_are_the_config_class_defaults(cls_name):
    defaults, _ = encoders.ENCODERS[cls_name]
    config = getattr(transformers, cls_name).config_class()
    # a None default means "derived" (Llama's kv heads and head_dim): the builder derives it too
    wrong = {k: (v, getattr(config, k, "<none>")) for k, v in defaults.items()
             if v is not None and not _same(getattr(config, k, None), v)}
    assert not wrong, f"{cls_name}: builder default vs transformers config default: {wrong}"


# ---------------------------------------------------------------- a tiny saved pipeline
def _tiny_pixart(path: Path):
    torch.manual_seed(0)
    transformer = diffusers.PixArtTransformer2DModel(
        sample_size=8, num_layers=2, num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
        cross_attention_dim=16, caption_channels=32, patch_size=2, use_additional_conditions=False)
    vae_model = diffusers.AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
                                        norm_num_groups=8, layers_per_block=1)
    text = transformers.T5EncoderModel(transformers.T5Config(
        vocab_size=100, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, feed_forward_proj="gated-gelu"))
    pipe = diffusers.PixArtAlphaPipeline(tokenizer=None, text_encoder=text, vae=vae_model, transformer=transformer,
                                         scheduler=diffusers.DPMSolverMultistepScheduler())
    pipe.save_pretrained(path)
    return pipe


def test_model_dir_of_a_saved_tiny_pipeline(tmp_path):
    """save_pretrained writes model_index.json, the configs and random weights; the planner
    reads only the configs, builds the ModelSpec with the real classes' parameter counts and
    plans it."""
    _quiet()
    pipe = _tiny_pixart(tmp_path / "tiny-pixart")
    local = zoo.load_model_dir(tmp_path / "tiny-pixart")
    f = local.facts
    assert (f.default_height, f.default_width, f.latent_channels, f.patch, f.vae_spatial) == (16, 16, 4, 2, 2)
    spec = local.build(f.default_height, f.default_width)
    assert spec.params == _count(pipe.transformer)
    assert spec.text_encoders[0].params == _count(pipe.text_encoder)
    assert spec.vae_decoder.params == _decoder_params(pipe.vae)
    out = subprocess.run([sys.executable, "cli.py", "plan", "--model-dir", str(tmp_path / "tiny-pixart"),
                          "--gpus", "2", "--top", "3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("tiny-pixart (PixArtAlphaPipeline; scenario defaults of PixArtAlphaPipeline, "
                                 "as zoo model pixart-alpha) at 16x16")
    assert "recommended:" in out.stdout


def test_tiny_unet_and_mmdit_configs_match_the_classes(tmp_path):
    """Non-default shapes through the U-Net and SD3 builders: two levels, other widths, heads,
    layer counts; the ModelSpec's parameters are the real modules'."""
    _quiet()
    torch.manual_seed(0)
    unet_model = diffusers.UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8, cross_attention_dim=24,
        attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    sd3_model = diffusers.SD3Transformer2DModel(
        sample_size=16, num_layers=3, attention_head_dim=8, num_attention_heads=4, joint_attention_dim=40,
        caption_projection_dim=32, pooled_projection_dim=24, qk_norm="rms_norm", pos_embed_max_size=16)
    for model, cls in ((unet_model, "UNet2DConditionModel"), (sd3_model, "SD3Transformer2DModel")):
        d = pipelines.DENOISERS[cls]
        from planner.zoo.hub import Cfg
        from planner.zoo.layers import Grid
        cfg = Cfg(cls, dict(model.config), cls, d.defaults)
        channels, patch = d.latent(cfg)
        g = Grid(height=128, width=128, frames=1, lf=1, lh=16, lw=16, patch=patch, text=90)
        assert sum(b.params for b in d.blocks(cfg, g)) == _count(model), cls
