"""The real diffusers configs of every pipeline `run --model` builds, in the layout of a
diffusers folder: model_index.json (pipeline class, component -> [library, class]) and
one config dict per component.

    pipeline_configs(model_id) -> PipelineConfigs

The model configs are the zoo's (planner/zoo/configs/<model-id>/model_index.json and
<component>/config.json, with their sources); the zoo ships no scheduler configs, so those
(the sampler's shift, prediction type) come from the table below, which also holds every
model config as the published config.json's fields that differ from the class defaults,
each row naming its repository (used where the zoo has no folder). A `--weights DIR`
folder brings its own configs (weights.py), which replace these.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ZOO_CONFIGS = Path(__file__).resolve().parents[2] / "planner" / "zoo" / "configs"


@dataclass(frozen=True)
class PipelineConfigs:
    """One pipeline: its class, and per component (library, class name, config dict)."""

    model_id: str
    pipeline: str                                   # e.g. StableDiffusionXLPipeline
    components: dict = field(default_factory=dict)  # name -> (library, class, config)
    source: str = ""

    def cls(self, name: str) -> str:
        return self.components[name][1]

    def config(self, name: str) -> dict:
        return dict(self.components[name][2])

    @property
    def denoiser(self) -> str:
        """The component that denoises: unet or transformer."""
        return "unet" if "unet" in self.components else "transformer"

    def text_encoders(self) -> list[str]:
        return sorted(n for n in self.components if n.startswith("text_encoder"))


# ---------------------------------------------------------------- text encoders
CLIP_L = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
          "projection_dim": 768, "hidden_act": "quick_gelu", "max_position_embeddings": 77,
          "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
CLIP_BIGG = {"hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
             "projection_dim": 1280, "hidden_act": "gelu", "max_position_embeddings": 77,
             "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
OPENCLIP_H = {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 23,
              "projection_dim": 512, "hidden_act": "gelu", "max_position_embeddings": 77,
              "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
T5_XXL = {"d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_heads": 64, "num_layers": 24,
          "feed_forward_proj": "gated-gelu", "vocab_size": 32128, "relative_attention_num_buckets": 32,
          "relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6, "is_encoder_decoder": True,
          "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0, "tie_word_embeddings": False}
UMT5_XXL = T5_XXL | {"vocab_size": 256384, "scalable_attention": True}

# ---------------------------------------------------------------- VAEs
SD_VAE = {"block_out_channels": [128, 256, 512, 512], "latent_channels": 4, "layers_per_block": 2,
          "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
          "norm_num_groups": 32, "sample_size": 512, "scaling_factor": 0.18215}
SDXL_VAE = SD_VAE | {"sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
SD3_VAE = SD_VAE | {"latent_channels": 16, "sample_size": 1024, "scaling_factor": 1.5305, "shift_factor": 0.0609,
                    "use_quant_conv": False, "use_post_quant_conv": False}
FLUX_VAE = SD3_VAE | {"scaling_factor": 0.3611, "shift_factor": 0.1159}
WAN_VAE = {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
           "temperal_downsample": [False, True, True]}
COG_VAE = {"block_out_channels": [128, 256, 256, 512], "latent_channels": 16, "layers_per_block": 3,
           "norm_num_groups": 32, "temporal_compression_ratio": 4, "scaling_factor": 1.15258426,
           "sample_height": 480, "sample_width": 720}

# ---------------------------------------------------------------- denoisers
SD15_UNET = {"block_out_channels": [320, 640, 1280, 1280], "attention_head_dim": 8, "cross_attention_dim": 768,
             "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
             "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, "layers_per_block": 2,
             "sample_size": 64, "in_channels": 4, "out_channels": 4, "norm_num_groups": 32}
SD21_UNET = SD15_UNET | {"attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
                         "use_linear_projection": True, "upcast_attention": True, "sample_size": 96}
SDXL_UNET = {"block_out_channels": [320, 640, 1280], "attention_head_dim": [5, 10, 20], "cross_attention_dim": 2048,
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 2,
             "transformer_layers_per_block": [1, 2, 10], "addition_embed_type": "text_time",
             "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
             "use_linear_projection": True, "sample_size": 128, "in_channels": 4, "out_channels": 4}
SD3_MEDIUM = {"sample_size": 128, "patch_size": 2, "in_channels": 16, "num_layers": 24, "attention_head_dim": 64,
              "num_attention_heads": 24, "joint_attention_dim": 4096, "caption_projection_dim": 1536,
              "pooled_projection_dim": 2048, "out_channels": 16, "pos_embed_max_size": 192}
SD35_LARGE = SD3_MEDIUM | {"num_layers": 38, "num_attention_heads": 38, "caption_projection_dim": 2432,
                           "qk_norm": "rms_norm"}
FLUX_DEV = {"patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128,
            "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
            "guidance_embeds": True, "axes_dims_rope": [16, 56, 56]}
PIXART_ALPHA = {"num_attention_heads": 16, "attention_head_dim": 72, "in_channels": 4, "out_channels": 8,
                "num_layers": 28, "cross_attention_dim": 1152, "attention_bias": True, "sample_size": 128,
                "patch_size": 2, "activation_fn": "gelu-approximate", "num_embeds_ada_norm": 1000,
                "norm_type": "ada_norm_single", "norm_elementwise_affine": False, "norm_eps": 1e-6,
                "caption_channels": 4096}
PIXART_SIGMA = PIXART_ALPHA | {"interpolation_scale": 2, "use_additional_conditions": False}
WAN_13B = {"patch_size": [1, 2, 2], "num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
           "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 8960, "num_layers": 30,
           "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024}
WAN_14B = WAN_13B | {"num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}
COG_2B = {"num_attention_heads": 30, "attention_head_dim": 64, "num_layers": 30, "time_embed_dim": 512,
          "text_embed_dim": 4096, "sample_width": 90, "sample_height": 60, "sample_frames": 49,
          "max_text_seq_length": 226, "use_rotary_positional_embeddings": False}
COG_5B = COG_2B | {"num_attention_heads": 48, "num_layers": 42, "use_rotary_positional_embeddings": True}
LATTE_1 = {"num_attention_heads": 16, "attention_head_dim": 72, "in_channels": 4, "out_channels": 8,
           "num_layers": 28, "cross_attention_dim": 1152, "attention_bias": True, "sample_size": 64,
           "patch_size": 2, "activation_fn": "gelu-approximate", "num_embeds_ada_norm": 1000,
           "norm_type": "ada_norm_single", "norm_elementwise_affine": False, "norm_eps": 1e-6,
           "caption_channels": 4096, "video_length": 16}

D, T = "diffusers", "transformers"


def _clip(cfg, proj: bool = False):
    return (T, "CLIPTextModelWithProjection" if proj else "CLIPTextModel", cfg)


def _tok(cls: str):
    return (T, cls, {})


_TABLE = {
    "sd1.5": ("StableDiffusionPipeline", {
        "unet": (D, "UNet2DConditionModel", SD15_UNET), "vae": (D, "AutoencoderKL", SD_VAE),
        "text_encoder": _clip(CLIP_L), "tokenizer": _tok("CLIPTokenizer"),
        "scheduler": (D, "PNDMScheduler", {"steps_offset": 1, "skip_prk_steps": True, "beta_schedule": "scaled_linear",
                                           "beta_start": 0.00085, "beta_end": 0.012})},
        "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    "sd2.1": ("StableDiffusionPipeline", {
        "unet": (D, "UNet2DConditionModel", SD21_UNET), "vae": (D, "AutoencoderKL", SD_VAE | {"sample_size": 768}),
        "text_encoder": _clip(OPENCLIP_H), "tokenizer": _tok("CLIPTokenizer"),
        "scheduler": (D, "DDIMScheduler", {"prediction_type": "v_prediction", "clip_sample": False,
                                           "set_alpha_to_one": False, "steps_offset": 1})},
        "stabilityai/stable-diffusion-2-1"),
    "sdxl": ("StableDiffusionXLPipeline", {
        "unet": (D, "UNet2DConditionModel", SDXL_UNET), "vae": (D, "AutoencoderKL", SDXL_VAE),
        "text_encoder": _clip(CLIP_L), "tokenizer": _tok("CLIPTokenizer"),
        "text_encoder_2": _clip(CLIP_BIGG, proj=True), "tokenizer_2": _tok("CLIPTokenizer"),
        "scheduler": (D, "EulerDiscreteScheduler", {})}, "stabilityai/stable-diffusion-xl-base-1.0"),
    "sd3-medium": ("StableDiffusion3Pipeline", {
        "transformer": (D, "SD3Transformer2DModel", SD3_MEDIUM), "vae": (D, "AutoencoderKL", SD3_VAE),
        "text_encoder": _clip(CLIP_L, proj=True), "tokenizer": _tok("CLIPTokenizer"),
        "text_encoder_2": _clip(CLIP_BIGG, proj=True), "tokenizer_2": _tok("CLIPTokenizer"),
        "text_encoder_3": (T, "T5EncoderModel", T5_XXL), "tokenizer_3": _tok("T5TokenizerFast"),
        "scheduler": (D, "FlowMatchEulerDiscreteScheduler", {"shift": 3.0})},
        "stabilityai/stable-diffusion-3-medium-diffusers"),
    "flux.1-dev": ("FluxPipeline", {
        "transformer": (D, "FluxTransformer2DModel", FLUX_DEV), "vae": (D, "AutoencoderKL", FLUX_VAE),
        "text_encoder": _clip(CLIP_L), "tokenizer": _tok("CLIPTokenizer"),
        "text_encoder_2": (T, "T5EncoderModel", T5_XXL), "tokenizer_2": _tok("T5TokenizerFast"),
        "scheduler": (D, "FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True, "shift": 3.0})},
        "black-forest-labs/FLUX.1-dev"),
    "pixart-alpha": ("PixArtAlphaPipeline", {
        "transformer": (D, "PixArtTransformer2DModel", PIXART_ALPHA), "vae": (D, "AutoencoderKL", SD_VAE),
        "text_encoder": (T, "T5EncoderModel", T5_XXL), "tokenizer": _tok("T5Tokenizer"),
        "scheduler": (D, "DPMSolverMultistepScheduler", {})}, "PixArt-alpha/PixArt-XL-2-1024-MS"),
    "pixart-sigma": ("PixArtSigmaPipeline", {
        "transformer": (D, "PixArtTransformer2DModel", PIXART_SIGMA), "vae": (D, "AutoencoderKL", SDXL_VAE),
        "text_encoder": (T, "T5EncoderModel", T5_XXL), "tokenizer": _tok("T5Tokenizer"),
        "scheduler": (D, "DPMSolverMultistepScheduler", {})}, "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"),
    "wan2.1-t2v-1.3b": ("WanPipeline", {
        "transformer": (D, "WanTransformer3DModel", WAN_13B), "vae": (D, "AutoencoderKLWan", WAN_VAE),
        "text_encoder": (T, "UMT5EncoderModel", UMT5_XXL), "tokenizer": _tok("T5TokenizerFast"),
        "scheduler": (D, "UniPCMultistepScheduler", {"flow_shift": 3.0, "prediction_type": "flow_prediction",
                                                     "use_flow_sigmas": True})}, "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
    "cogvideox-2b": ("CogVideoXPipeline", {
        "transformer": (D, "CogVideoXTransformer3DModel", COG_2B), "vae": (D, "AutoencoderKLCogVideoX", COG_VAE),
        "text_encoder": (T, "T5EncoderModel", T5_XXL), "tokenizer": _tok("T5Tokenizer"),
        "scheduler": (D, "CogVideoXDDIMScheduler", {"prediction_type": "v_prediction"})}, "THUDM/CogVideoX-2b"),
    "latte-1": ("LattePipeline", {
        "transformer": (D, "LatteTransformer3DModel", LATTE_1), "vae": (D, "AutoencoderKL", SD_VAE),
        "text_encoder": (T, "T5EncoderModel", T5_XXL), "tokenizer": _tok("T5Tokenizer"),
        "scheduler": (D, "DDIMScheduler", {})}, "maxin-cn/Latte-1"),
}
_TABLE["sd3.5-large"] = (_TABLE["sd3-medium"][0], _TABLE["sd3-medium"][1]
                         | {"transformer": (D, "SD3Transformer2DModel", SD35_LARGE)},
                         "stabilityai/stable-diffusion-3.5-large")
_TABLE["flux.1-schnell"] = (_TABLE["flux.1-dev"][0], _TABLE["flux.1-dev"][1]
                            | {"transformer": (D, "FluxTransformer2DModel", FLUX_DEV | {"guidance_embeds": False}),
                               "scheduler": (D, "FlowMatchEulerDiscreteScheduler", {"shift": 1.0})},
                            "black-forest-labs/FLUX.1-schnell")
_TABLE["wan2.1-t2v-14b"] = (_TABLE["wan2.1-t2v-1.3b"][0], _TABLE["wan2.1-t2v-1.3b"][1]
                            | {"transformer": (D, "WanTransformer3DModel", WAN_14B)}, "Wan-AI/Wan2.1-T2V-14B-Diffusers")
_TABLE["cogvideox-5b"] = (_TABLE["cogvideox-2b"][0], _TABLE["cogvideox-2b"][1]
                          | {"transformer": (D, "CogVideoXTransformer3DModel", COG_5B),
                             "vae": (D, "AutoencoderKLCogVideoX", COG_VAE | {"scaling_factor": 0.7})},
                          "THUDM/CogVideoX-5b")


def model_ids() -> tuple[str, ...]:
    return tuple(sorted(_TABLE))


def read_folder(folder: Path, model_id: str) -> PipelineConfigs:
    """A diffusers folder's configs: model_index.json and <component>/config.json (the
    tokenizers and the scheduler keep an empty dict when their files are absent)."""
    index = json.loads((folder / "model_index.json").read_text())
    comps = {}
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[1] is None:
            continue
        path = folder / name / ("scheduler_config.json" if name == "scheduler" else "config.json")
        cfg = json.loads(path.read_text()) if path.is_file() else {}
        comps[name] = (spec[0], spec[1], {k: v for k, v in cfg.items() if not k.startswith("_")})
    return PipelineConfigs(model_id, index.get("_class_name", ""), comps, str(folder))


def pipeline_configs(model_id: str) -> PipelineConfigs:
    """The configs of model_id: the repository's shipped HF files when present, else the table."""
    pipe, comps, repo = _TABLE[model_id]
    shipped = ZOO_CONFIGS / model_id
    if (shipped / "model_index.json").is_file():
        got = read_folder(shipped, model_id)
        if got.denoiser in got.components:
            # the zoo ships model configs only: schedulers come from the table
            merged = {n: (c if c[2] or n not in comps else comps[n]) for n, c in got.components.items()}
            return PipelineConfigs(model_id, got.pipeline, merged, got.source)
    return PipelineConfigs(model_id, pipe, dict(comps), f"published config.json of {repo} (executor table)")
