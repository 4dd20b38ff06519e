"""From a diffusers folder's configs to a ModelSpec: one builder per component class.

    DENOISERS   denoiser class -> defaults, latent (channels, patch), blocks(cfg, grid)
    ENCODERS    transformers class -> defaults, stage(cfg, tokens, name)     (encoders.py)
    VAES        VAE class -> defaults, (spatial, temporal) compression, decoder(cfg, grid)  (vae.py)
    PIPELINES   pipeline class -> which component denoises, which encode the prompt with how
                many tokens each, and the zoo model whose facts hold its __call__ defaults

`build_spec(facts, pipeline, grid)` is the one path: the zoo's own models (planner/zoo/
configs/<id>/) and `plan --model-dir` folders go through it alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from planner.spec import EagerInventory, ModelFacts, ModelSpec, SplitConvention
from planner.zoo import dit, encoders, mmdit, unet, vae, video
from planner.zoo.hub import CONFIGS, Cfg, Component, PipelineConfig, ZooError, cfg, read_json, zoo_folder
from planner.zoo.layers import Grid, spec

# StableDiffusion3Pipeline / FluxPipeline / HunyuanDiTPipeline: the CLIP tokenizers'
# model_max_length (tokenizer_max_length = 77); HunyuanVideoPipeline: the LLaMA prompt
# template's 95 tokens that are cropped after encoding (prompt_template_encode crop_start)
CLIP_TOKENS, LLAMA_TEMPLATE = 77, 95


@dataclass(frozen=True)
class Denoiser:
    defaults: dict
    latent: Callable[[Cfg], tuple[int, int]]
    blocks: Callable[[Cfg, Grid], list]
    split: SplitConvention = SplitConvention(source="xDiT: latent height per frame % sp (config/config.py "
                                             "input checks, models/transformers/*: local height // patch)")


# How the engines running each class split it (SplitConvention)
_UNET_SPLIT = SplitConvention("frame_rows", "uneven", "DistriFusion/PipeFusion patch split by latent rows; "
                              "distrifuser DistriAttentionTP: sliced_heads = heads // n, the first heads % n "
                              "ranks take one more")
_TOKEN_SPLIT_XDIT = SplitConvention("tokens", "even", "xDiT transformer_hunyuan_video.py @2e3d149: "
                                    "hidden_states.flatten(1, 3), then torch.chunk over sp (equal chunks)")
_TOKEN_SPLIT_CP = SplitConvention("tokens", "even", "diffusers 0.42.1 _cp_plan splits the flattened sequence "
                                  "(transformer_wan.py; hooks/context_parallel.py EquipartitionSharder asserts "
                                  "size % mesh == 0); ASSUMED for Mochi (ParaAttention's context parallel)")

DENOISERS = {
    "UNet2DConditionModel": Denoiser(unet.UNET2D_DEFAULTS, unet.latent, unet.unet2d, _UNET_SPLIT),
    "UNetSpatioTemporalConditionModel": Denoiser(unet.SVD_DEFAULTS, unet.latent, unet.spatio_temporal),
    "SD3Transformer2DModel": Denoiser(mmdit.SD3_DEFAULTS, mmdit.latent,
                                      lambda c, g: mmdit.sd3(c, g, CLIP_TOKENS)),
    "FluxTransformer2DModel": Denoiser(mmdit.FLUX_DEFAULTS, mmdit.packed_latent, mmdit.flux),
    "HunyuanVideoTransformer3DModel": Denoiser(mmdit.HUNYUANVIDEO_DEFAULTS, mmdit.latent, mmdit.hunyuanvideo,
                                               _TOKEN_SPLIT_XDIT),
    "MochiTransformer3DModel": Denoiser(mmdit.MOCHI_DEFAULTS, mmdit.latent, mmdit.mochi, _TOKEN_SPLIT_CP),
    "OpenSoraMMDiTModel": Denoiser(mmdit.OPENSORA2_DEFAULTS, mmdit.packed_latent, mmdit.opensora_mmdit),
    "PixArtTransformer2DModel": Denoiser(dit.PIXART_DEFAULTS, dit.latent, dit.pixart),
    "DiTTransformer2DModel": Denoiser(dit.DIT_DEFAULTS, dit.latent, dit.dit),
    "HunyuanDiT2DModel": Denoiser(dit.HUNYUANDIT_DEFAULTS, dit.latent, dit.hunyuandit),
    "LatteTransformer3DModel": Denoiser(dit.LATTE_DEFAULTS, dit.latent, dit.latte),
    "OpenSoraSTDiT3Model": Denoiser(dit.STDIT3_DEFAULTS, dit.stdit3_latent, dit.stdit3),
    "CogVideoXTransformer3DModel": Denoiser(video.COGVIDEOX_DEFAULTS, video.cog_latent, video.cogvideox),
    "WanTransformer3DModel": Denoiser(video.WAN_DEFAULTS, video.wan_latent, video.wan, _TOKEN_SPLIT_CP),
}
# diffusers' _CLASS_REMAPPING_DICT (models/model_loading_utils.py): PixArt and DiT repositories
# saved before diffusers 0.28 name the generic class
_REMAP = {"Transformer2DModel": ("norm_type", {"ada_norm_zero": "DiTTransformer2DModel",
                                               "ada_norm_single": "PixArtTransformer2DModel"})}


def _text(t: int) -> int:
    return t


def _clip(t: int) -> int:
    return CLIP_TOKENS


def _after_clip(t: int) -> int:
    return t - CLIP_TOKENS


def _llama(t: int) -> int:
    return t + LLAMA_TEMPLATE


@dataclass(frozen=True)
class PipelineKind:
    denoiser: str                       # the denoising component
    zoo_id: str                         # zoo model whose facts are this pipeline's __call__ defaults
    encoders: tuple = ()                # (component, tokens(text tokens)) in the order the pipeline runs them
    per_frame_vae: bool = False         # a 2D VAE decoding every pixel frame (Latte, AnimateDiff)
    size_from: object = None            # default size: "sample_size" (denoiser config x VAE scale),
                                        # an int (latent size x VAE scale), or None (the zoo model's)
    motion_adapter: bool = False        # AnimateDiff: the U-Net + the motion_adapter component
    exact_text: int = 0                 # tokens the denoiser must attend to (SVD: one image embedding)


PIPELINES = {
    "StableDiffusionPipeline": PipelineKind("unet", "sd1.5", (("text_encoder", _text),), size_from="sample_size"),
    "StableDiffusionXLPipeline": PipelineKind("unet", "sdxl", (("text_encoder", _text), ("text_encoder_2", _text)),
                                              size_from="sample_size"),
    "StableDiffusion3Pipeline": PipelineKind("transformer", "sd3-medium", (
        ("text_encoder", _clip), ("text_encoder_2", _clip), ("text_encoder_3", _after_clip)), size_from="sample_size"),
    # FluxPipeline: default_sample_size = 128 latent rows (before 2x2 packing)
    "FluxPipeline": PipelineKind("transformer", "flux.1-dev", (("text_encoder", _clip), ("text_encoder_2", _text)),
                                 size_from=128),
    "PixArtAlphaPipeline": PipelineKind("transformer", "pixart-alpha", (("text_encoder", _text),),
                                        size_from="sample_size"),
    "PixArtSigmaPipeline": PipelineKind("transformer", "pixart-sigma", (("text_encoder", _text),),
                                        size_from="sample_size"),
    "DiTPipeline": PipelineKind("transformer", "dit-xl-2", size_from="sample_size"),
    "HunyuanDiTPipeline": PipelineKind("transformer", "hunyuandit", (("text_encoder", _clip),
                                                                     ("text_encoder_2", _after_clip)),
                                       size_from="sample_size"),
    "LattePipeline": PipelineKind("transformer", "latte-1", (("text_encoder", _text),), per_frame_vae=True),
    "CogVideoXPipeline": PipelineKind("transformer", "cogvideox-2b", (("text_encoder", _text),)),
    "HunyuanVideoPipeline": PipelineKind("transformer", "hunyuanvideo", (("text_encoder", _llama),
                                                                         ("text_encoder_2", _clip))),
    "WanPipeline": PipelineKind("transformer", "wan2.1-t2v-1.3b", (("text_encoder", _text),)),
    "MochiPipeline": PipelineKind("transformer", "mochi-1", (("text_encoder", _text),)),
    "StableVideoDiffusionPipeline": PipelineKind("unet", "svd", (("image_encoder", _text),), exact_text=1),
    "AnimateDiffPipeline": PipelineKind("unet", "animatediff", (("text_encoder", _text),), per_frame_vae=True,
                                        motion_adapter=True),
    # pipelines defined in this project (no diffusers class): Open-Sora's own repositories
    "OpenSora2Pipeline": PipelineKind("transformer", "opensora-2.0", (("text_encoder", _text),
                                                                      ("text_encoder_2", _clip))),
    "OpenSora12Pipeline": PipelineKind("transformer", "opensora-1.2", (("text_encoder", _text),)),
}


def _accepted(table: dict) -> str:
    return ", ".join(sorted(table))


def denoiser_class(c: Component) -> str:
    """The class the denoiser builds as (old PixArt/DiT folders name Transformer2DModel)."""
    if c.class_name in _REMAP:
        key, table = _REMAP[c.class_name]
        return table.get(c.config.get(key), c.class_name)
    return c.class_name


def _denoiser(c: Component, where: str) -> tuple[Denoiser, Cfg]:
    name = denoiser_class(c)
    if name not in DENOISERS:
        raise ZooError(f"{where}/model_index.json: {c.name} class {c.class_name!r} is not one the zoo builds "
                       f"(accepted: {_accepted(DENOISERS)})")
    d = DENOISERS[name]
    return d, Cfg(name, c.config, f"{where}/{c.name}/config.json", d.defaults)


def _needs(kind: PipelineKind) -> set:
    return {kind.denoiser, "vae", *(e for e, _ in kind.encoders)} | ({"motion_adapter"} if kind.motion_adapter else set())


def kind_of(pipe: PipelineConfig) -> PipelineKind:
    """The pipeline's kind; an unknown pipeline class falls back to the zoo model whose denoiser
    has the same class and whose components the folder has (the most specific such, then the
    first in id order)."""
    if pipe.class_name in PIPELINES:
        return PIPELINES[pipe.class_name]
    for kind in sorted(PIPELINES.values(), key=lambda k: (-len(_needs(k)), k.zoo_id)):
        den = pipe.components.get(kind.denoiser)
        if (den is not None and _needs(kind) <= set(pipe.components)
                and denoiser_class(den) == denoiser_class(zoo_folder(kind.zoo_id).component(kind.denoiser))):
            return kind
    raise ZooError(f"{pipe.where}/model_index.json: pipeline class {pipe.class_name!r} is not one the zoo "
                   f"knows and no zoo model has its denoiser's class with these components (accepted pipelines: "
                   f"{_accepted(PIPELINES)})")


def latent_of(pipe: PipelineConfig, kind: PipelineKind) -> tuple[int, int]:
    d, c = _denoiser(pipe.component(kind.denoiser), pipe.where)
    return d.latent(c)


def vae_of(pipe: PipelineConfig) -> tuple[Callable, Cfg, tuple[int, int]]:
    """(decoder, config, (spatial, temporal) compression) of the pipeline's VAE."""
    c = pipe.component("vae")
    if c.class_name not in vae.VAES:
        raise ZooError(f"{pipe.where}/model_index.json: vae class {c.class_name!r} is not one the zoo builds "
                       f"(accepted: {_accepted(vae.VAES)})")
    defaults, compression, decoder = vae.VAES[c.class_name]
    vcfg = cfg(c, defaults, pipe.where)
    return decoder, vcfg, compression(vcfg)


def _encoder(pipe: PipelineConfig, name: str, tokens: int):
    c = pipe.component(name)
    if c.class_name not in encoders.ENCODERS:
        raise ZooError(f"{pipe.where}/model_index.json: {name} class {c.class_name!r} is not one the zoo builds "
                       f"(accepted: {_accepted(encoders.ENCODERS)})")
    defaults, stage = encoders.ENCODERS[c.class_name]
    return stage(cfg(c, defaults, pipe.where), tokens, pipe.labels.get(name) or f"{name} ({c.class_name})")


def _blocks(pipe: PipelineConfig, kind: PipelineKind, g: Grid) -> tuple[list, SplitConvention]:
    d, dcfg = _denoiser(pipe.component(kind.denoiser), pipe.where)
    if kind.motion_adapter:
        adapter = pipe.component("motion_adapter")
        return unet.motion(dcfg, cfg(adapter, unet.MOTION_DEFAULTS, pipe.where), g), SplitConvention()
    return d.blocks(dcfg, g), d.split


def eager_inventory(pipe: PipelineConfig, kind: PipelineKind) -> EagerInventory:
    """The folder's eager.json (tools/eager_inventory.py), else that of the zoo model whose
    pipeline class it has, else none measured (eager = the zoo's op list)."""
    from pathlib import Path
    for path in (Path(pipe.where) / "eager.json", CONFIGS / kind.zoo_id / "eager.json"):
        if path.is_file():
            d = read_json(path, f"eager inventory {path}", ZooError)
            try:
                return EagerInventory(float(d["kernels_per_op"]), float(d["mem_bytes_factor"]),
                                      f"{path.parent.name}/eager.json ({d.get('class', '?')}, diffusers "
                                      f"{d.get('diffusers', '?')}{', measured as ' + d['measured_as'] if 'measured_as' in d else ''})")
            except (KeyError, TypeError, ValueError) as e:
                raise ZooError(f"eager inventory {path} is malformed: {e!r}") from None
    return EagerInventory()


def build_spec(facts: ModelFacts, pipe: PipelineConfig, g: Grid) -> ModelSpec:
    """The ModelSpec of a pipeline folder at one scenario's sizes. Sizes the model cannot take
    are a ValueError naming the model; a folder the zoo cannot read is a ZooError."""
    kind = kind_of(pipe)
    try:
        if kind.exact_text and g.text != kind.exact_text:
            raise ValueError(f"text_tokens={g.text} but the denoiser attends to {kind.exact_text} image-embedding "
                             f"token (use {kind.exact_text})")
        blocks, split = _blocks(pipe, kind, g)
        stages = [_encoder(pipe, name, tokens(g.text)) for name, tokens in kind.encoders]
        decoder, vcfg, _ = vae_of(pipe)
        stage = decoder(vcfg, g, per_frame=True) if kind.per_frame_vae else decoder(vcfg, g)
    except ZooError:
        raise
    except ValueError as e:
        raise ValueError(f"{facts.id}: {e}") from None
    return spec(facts, g, blocks, stages, stage, split, eager_inventory(pipe, kind))
